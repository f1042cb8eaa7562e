/*
 * nullalloc: a do-nothing stand-in allocator, used only as the baseline for
 * the instruction counts (scripts/bench runs the pair and window workloads
 * under callgrind once with each allocator and once with this library, and
 * subtracts: what remains is the allocator's own cost per malloc+free).
 *
 * malloc of up to SLOT_SIZE bytes returns the next slot of a static ring of
 * RING_SLOTS slots (one atomic increment and a mask); free does nothing.
 * Larger or aligned requests bump through a static arena (with a small size
 * header) and are never reused; when the arena is exhausted malloc returns
 * NULL.  A slot is reused after RING_SLOTS further small allocations, so
 * the stand-in is only correct for programs that keep fewer than RING_SLOTS
 * small objects alive (the window workload keeps at most 1000).  Not a
 * general-purpose allocator: do not preload it into anything else.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

#define SLOT_SIZE 512
#define RING_SLOTS 4096                  /* power of two */
#define ARENA_SIZE (64u << 20)
#define HEADER 16

static _Alignas(64) char ring[RING_SLOTS][SLOT_SIZE];
static _Alignas(4096) char arena[ARENA_SIZE];
static size_t ring_next;
static size_t arena_used;

static int in_ring(const void *p)
{
    return (uintptr_t)p - (uintptr_t)ring < sizeof ring;
}

static int in_arena(const void *p)
{
    return (uintptr_t)p - (uintptr_t)arena < sizeof arena;
}

/* align: a power of two >= 16.  Returns a block preceded by its size. */
static void *arena_alloc(size_t n, size_t align)
{
    size_t used = __atomic_load_n(&arena_used, __ATOMIC_RELAXED), start;
    do {
        start = (used + HEADER + align - 1) & ~(align - 1);
        if (n > ARENA_SIZE || start + n > ARENA_SIZE) {
            errno = ENOMEM;
            return NULL;
        }
    } while (!__atomic_compare_exchange_n(&arena_used, &used, start + n, 1,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    memcpy(arena + start - sizeof(size_t), &n, sizeof n);
    return arena + start;
}

static size_t block_size(const void *p)
{
    if (in_ring(p))
        return SLOT_SIZE;
    if (in_arena(p)) {
        size_t n;
        memcpy(&n, (const char *)p - sizeof n, sizeof n);
        return n;
    }
    return 0;
}

EXPORT void *malloc(size_t n)
{
    if (__builtin_expect(n <= SLOT_SIZE, 1))
        return ring[__atomic_fetch_add(&ring_next, 1, __ATOMIC_RELAXED) &
                    (RING_SLOTS - 1)];
    return arena_alloc(n, 16);
}

EXPORT void free(void *p)
{
    (void)p;
}

EXPORT void cfree(void *p)
{
    (void)p;
}

EXPORT void *calloc(size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = malloc(n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

EXPORT void *realloc(void *old, size_t n)
{
    void *p = malloc(n);
    if (p != NULL && old != NULL) {
        size_t m = block_size(old);
        memcpy(p, old, m < n ? m : n);
    }
    return p;
}

EXPORT void *memalign(size_t align, size_t n)
{
    if (align <= 16)
        return arena_alloc(n, 16);
    if (align & (align - 1)) {
        size_t a = 16;
        while (a < align)
            a *= 2;
        align = a;
    }
    return arena_alloc(n, align);
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
    return memalign(align, n);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    void *p = memalign(align, n);
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

EXPORT void *valloc(size_t n)
{
    return arena_alloc(n, 4096);
}

EXPORT void *pvalloc(size_t n)
{
    return arena_alloc((n + 4095) & ~(size_t)4095, 4096);
}

EXPORT size_t malloc_usable_size(void *p)
{
    return p == NULL ? 0 : block_size(p);
}
