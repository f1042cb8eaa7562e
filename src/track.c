/*
 * Allocation tracking: stack capture, call-site table, per-object sites.
 *
 * Capturing a stack is what makes leak tracking expensive: a DWARF unwind
 * costs microseconds.  Most allocations repeat a stack the thread has
 * seen before, at the same depth, so each thread keeps a small
 * set-associative cache keyed by (return address, CFA) of the entry point
 * that captures (fb_track_buffer, fb_track_big, fb_track_capture).
 * Within our library every path from the program's call to those entry
 * points has a fixed frame layout, so that key pins down the program's
 * stack pointer.  A hit is confirmed by re-reading, at the stack
 * addresses recorded by the unwinder, the return address of every cached
 * frame: if they all still hold the cached values, the program is in the
 * same call chain, and the site is known without unwinding.  Anything else
 * (a different caller at the same depth, a signal frame) fails that check
 * and unwinds for real.  This is the same observation that lets
 * frame-pointer unwinders (LeakSanitizer's fast unwinder) be cheap, made
 * safe for code compiled without frame pointers.
 *
 * The hit path is inlined into those entry points and makes no call
 * (tests/bench/request: 120 instructions an allocation with the capture
 * a function of its own, 74 so); a miss is a tail call.
 *
 * Nothing here allocates with malloc: tables live in mmap'd memory, and
 * the capture runs with the thread's recursion guard set.
 */
#define _GNU_SOURCE
#include "track.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>


#include "cfi.h"
#include "epoch.h"
#include "options.h"
#include "platform.h"

int fb_track_on;
size_t fb_track_gap;

static unsigned fb_track_depth;
static uintptr_t own_lo, own_hi;           /* our library's mapping */

/* ---------------------------------------------------------------------- */
/* mmap-backed storage                                                     */

static void *map_rw(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* A bump arena for site frames and module paths (never freed: sites live
 * as long as the process).  Callers hold arena_lock. */
static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static char *arena_cur, *arena_end;

static void *arena_alloc(size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if ((size_t)(arena_end - arena_cur) < n) {
        size_t chunk = n > (1u << 20) ? n : (1u << 20);
        char *p = map_rw(chunk);
        if (!p)
            return NULL;
        arena_cur = p;
        arena_end = p + chunk;
    }
    void *r = arena_cur;
    arena_cur += n;
    return r;
}

/* ---------------------------------------------------------------------- */
/* Modules                                                                 */

#define FB_MAX_MODULES 4096
FB_BIG_BSS static struct fb_track_module modules[FB_MAX_MODULES];
static uint32_t nmodules = 1;              /* 0: unknown */

/*
 * Which module a frame belongs to.  This runs for every frame of every new
 * stack, so it must not depend on the binary's size: dladdr1() would
 * search the module's dynamic symbols linearly (node, cc1: 150-340x
 * slowdowns) and the main program's name needs a readlink().  Instead
 * glibc's _dl_find_object (2.35+; lock-free, no allocation, a binary
 * search over the loaded objects; what libgcc's unwinder uses) gives the
 * link map, and a small cache keyed by the link map pointer gives our
 * module id.  An entry is trusted only while the link map still has the
 * load bias and name it had when cached, so a library dlclose()d and
 * another loaded in its place (even into the same link map memory) is
 * interned afresh.  The main program's path is read once per process.
 * Before ld.so has set _dl_find_object up (allocations during start-up)
 * or if it fails, dladdr1 answers (rare: not per frame of a big binary).
 */
#define FB_LM_CACHE 64
static struct lm_cache {
    const struct link_map *lm;
    uintptr_t bias;
    const char *name;          /* lm->l_name when cached */
    uint32_t id;
} lm_cache[FB_LM_CACHE];
static char *exe_path;          /* the main program, resolved once */

/* Interns (path, bias); callers hold arena_lock. */
static uint32_t module_intern(const char *name, uintptr_t bias)
{
    for (uint32_t i = 1; i < nmodules; i++)
        if (modules[i].bias == bias && strcmp(modules[i].path, name) == 0)
            return i;
    if (nmodules >= FB_MAX_MODULES)
        return 0;
    size_t len = strlen(name) + 1;
    char *copy = arena_alloc(len);
    if (!copy)
        return 0;
    memcpy(copy, name, len);
    modules[nmodules].path = copy;
    modules[nmodules].bias = bias;
    return nmodules++;
}

/* The main program's path; callers hold arena_lock. */
static const char *main_path(void)
{
    if (!exe_path) {
        char buf[4096];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
        size_t len = n > 0 ? (size_t)n : 0;
        buf[len] = '\0';
        exe_path = arena_alloc(len + 1);
        if (exe_path)
            memcpy(exe_path, buf, len + 1);
    }
    return exe_path ? exe_path : "";
}

static uint32_t module_of_map(const struct link_map *lm)
{
    const char *name = lm->l_name ? lm->l_name : "";
    unsigned h = (unsigned)(((uintptr_t)lm >> 4) % FB_LM_CACHE);
    pthread_mutex_lock(&arena_lock);
    struct lm_cache *c = &lm_cache[h];
    uint32_t id;
    if (c->lm == lm && c->bias == lm->l_addr && c->name == name) {
        id = c->id;
    } else {
        /* The main program: ld.so names it "". */
        id = module_intern(name[0] ? name : main_path(), lm->l_addr);
        if (id)
            *c = (struct lm_cache){lm, lm->l_addr, name, id};
    }
    pthread_mutex_unlock(&arena_lock);
    return id;
}

/* The last module found for a stack: its mapping and id.  The frames of
 * one stack mostly run in a few modules, often the same one back to back
 * (python3's start-up: 9 of 10), and a frame inside the previous frame's
 * mapping is in the same module without a lookup or arena_lock. */
struct module_memo {
    uintptr_t lo, hi;
    uint32_t id;
};

/* Interns the module holding ip (called without the site lock held:
 * dladdr1, the fallback, takes the loader's lock). */
static uint32_t module_of(uintptr_t ip, struct module_memo *memo)
{
    if (memo->id && ip - memo->lo < memo->hi - memo->lo)
        return memo->id;
    struct dl_find_object dlfo;
    if (_dl_find_object((void *)ip, &dlfo) == 0 && dlfo.dlfo_link_map) {
        uint32_t id = module_of_map(dlfo.dlfo_link_map);
        *memo = (struct module_memo){(uintptr_t)dlfo.dlfo_map_start,
                                     (uintptr_t)dlfo.dlfo_map_end, id};
        return id;
    }
    Dl_info info;
    struct link_map *lm = NULL;
    if (!dladdr1((void *)ip, &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm)
        return 0;
    return module_of_map(lm);
}

const struct fb_track_module *fb_track_module(uint32_t id)
{
    return id && id < nmodules ? &modules[id] : NULL;
}

/* ---------------------------------------------------------------------- */
/* Sites                                                                   */

#define FB_SITE_BUCKETS (1u << 16)
#define FB_MAX_SITES ((1u << 27) - 1)      /* 27 bits in the site map */
#define FB_SITES_RESERVED (1u << 22)       /* table entries reserved */

static pthread_mutex_t site_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t *site_buckets;
static struct fb_track_site *sites;
static _Atomic uint32_t nsites = 1;        /* 0: untracked */

static uint64_t hash_frames(const uintptr_t *f, unsigned n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (unsigned i = 0; i < n; i++) {
        h ^= f[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h;
}

static uint32_t site_find(const uintptr_t *f, unsigned n, uint64_t h)
{
    for (uint32_t id = site_buckets[h & (FB_SITE_BUCKETS - 1)]; id;
         id = sites[id].next) {
        struct fb_track_site *s = &sites[id];
        if (s->hash == h && s->depth == n &&
            memcmp(s->frames, f, n * sizeof *f) == 0)
            return id;
    }
    return 0;
}

static uint32_t site_intern(const uintptr_t *f, unsigned n)
{
    uint64_t h = hash_frames(f, n);
    pthread_mutex_lock(&site_lock);
    uint32_t id = site_find(f, n, h);
    pthread_mutex_unlock(&site_lock);
    if (id)
        return id;

    /* New stack: find its modules first, outside our locks. */
    uint32_t mods[FB_TRACK_MAX_DEPTH];
    struct module_memo memo = {0, 0, 0};
    for (unsigned i = 0; i < n; i++)
        mods[i] = module_of(f[i], &memo);

    pthread_mutex_lock(&site_lock);
    id = site_find(f, n, h);
    if (!id) {
        uint32_t next = atomic_load_explicit(&nsites, memory_order_relaxed);
        if (next < FB_SITES_RESERVED) {
            pthread_mutex_lock(&arena_lock);
            uintptr_t *frames = arena_alloc(n * sizeof *frames);
            uint32_t *mcopy = arena_alloc(n * sizeof *mcopy);
            pthread_mutex_unlock(&arena_lock);
            if (frames && mcopy) {
                memcpy(frames, f, n * sizeof *frames);
                memcpy(mcopy, mods, n * sizeof *mcopy);
                struct fb_track_site *s = &sites[next];
                s->hash = h;
                s->depth = n;
                s->frames = frames;
                s->modules = mcopy;
                s->next = site_buckets[h & (FB_SITE_BUCKETS - 1)];
                site_buckets[h & (FB_SITE_BUCKETS - 1)] = next;
                id = next;
                atomic_store_explicit(&nsites, next + 1, memory_order_release);
            }
        }
    }
    pthread_mutex_unlock(&site_lock);
    return id;
}

const struct fb_track_site *fb_track_site(uint32_t id)
{
    return id && id < atomic_load_explicit(&nsites, memory_order_acquire)
               ? &sites[id]
               : NULL;
}

uint32_t fb_track_site_count(void)
{
    return atomic_load_explicit(&nsites, memory_order_acquire);
}

int fb_track_is_own(uintptr_t ip)
{
    return ip - own_lo < own_hi - own_lo;
}

/* ---------------------------------------------------------------------- */
/* Capture, with the per-thread verified cache                             */

/* Set-associative: one key (one stack pointer at our entry) is shared by
 * every call chain that reaches malloc at that depth, e.g. a function
 * that calls malloc from two places in a loop (OpenSSL's alg_copy: a
 * direct-mapped cache missed on half of node's 456k captures, each a full
 * unwind).  Ways of a set may hold the same key with different chains;
 * the re-read of the return addresses tells them apart, and a wrong way
 * fails on its first frame. */
#define FB_CACHE_WAYS 8
#define FB_CACHE_SETS 128
#define FB_CACHE_ENTRIES (FB_CACHE_WAYS * FB_CACHE_SETS)

struct cache_entry {
    uintptr_t key_ra, key_cfa;       /* key_cfa 0: an empty way */
    uint32_t site, pad;
    intptr_t negk;                   /* -2 n for n frames */
    /* Per frame: the stack address its return address was read from,
     * and that return address; side by side, and the n frames at the end
     * of the entry's fb_track_depth, so the check counts up to the next
     * entry. */
    struct { uintptr_t slot, ra; } f[];
};

static __thread char *fb_track_cache __attribute__((tls_model("initial-exec")));
static size_t cache_stride;
/* The cache is FB_CACHE_ENTRIES entries, then one round-robin victim
 * counter per set. */
static size_t cache_size;

static inline struct cache_entry *cache_at(char *cache, unsigned i)
{
    return (struct cache_entry *)(cache + (size_t)i * cache_stride);
}

/*
 * The key of a capture is taken in the entry point itself (fb_track_buffer,
 * fb_track_big, fb_track_capture; each noinline): where it returns to in
 * our library, mixed with the program's call site when the dispatch knows
 * it (caller, else 0: a function that allocates from several places at one
 * depth then finds its way at the first try instead of verifying each),
 * and its CFA, which is the stack pointer of its caller.  The CFA costs
 * one instruction, where the frame address forced a frame pointer.
 */
#define CAPTURE_KEY_RA(caller)                                                 \
    ((uintptr_t)__builtin_return_address(0) ^ ((caller) * 0x9e3779b97f4a7c15ull))
#define CAPTURE_KEY_CFA() ((uintptr_t)__builtin_dwarf_cfa())

/* ra's low bits are the program's call site's (times an odd constant). */
static inline unsigned cache_set(uintptr_t ra, uintptr_t cfa)
{
    return (unsigned)(((cfa >> 4) ^ ra) % FB_CACHE_SETS);
}

/*
 * Full unwind: frames outside our library, and the stack address each
 * frame's return address was read from (the callee's CFA - 8 on x86-64).
 *
 * With libgcc's unwinder, not libunwind's: in glibc 2.35+ it finds each
 * frame's FDE through _dl_find_object (lock-free, no system call, no
 * allocation), while libunwind's local unwinder blocks every signal
 * around a dl_iterate_phdr per rule-cache miss and, past a frame without
 * unwind information (node's JIT code), checks every read with mincore:
 * 72 us per stack in node against a few here.
 */
/* libgcc's unwinder, linked statically (libgcc_eh.a) and referenced
 * hidden, so the static link resolves it: the libunwind we also link
 * exports the same _Unwind_* names, and our private copy never touches
 * the program's exception handling.  Declared here, from the Itanium C++
 * ABI's unwind interface, because <unwind.h> forces default visibility. */
struct _Unwind_Context;
typedef enum { FB_URC_NO_REASON = 0, FB_URC_END_OF_STACK = 5 } fb_urc;
typedef fb_urc (*fb_trace_fn)(struct _Unwind_Context *, void *);
fb_urc _Unwind_Backtrace(fb_trace_fn, void *);
uintptr_t _Unwind_GetIP(struct _Unwind_Context *);
uintptr_t _Unwind_GetCFA(struct _Unwind_Context *);
__asm__(".hidden _Unwind_Backtrace\n.hidden _Unwind_GetIP\n.hidden _Unwind_GetCFA");

struct unwind_state {
    uintptr_t *frames, *slots;
    unsigned n;
};

/* libgcc calls back with the context of each caller in turn: its return
 * address, and the CFA of the frame that returns there, just above which
 * that return address is stored. */
static fb_urc unwind_frame(struct _Unwind_Context *ctx, void *arg)
{
    struct unwind_state *u = arg;
    uintptr_t ip = _Unwind_GetIP(ctx);
    if (!ip)
        return FB_URC_END_OF_STACK;
    if (u->n == 0 && fb_track_is_own(ip))
        return FB_URC_NO_REASON;     /* our own frames */
    u->frames[u->n] = ip;
    u->slots[u->n] = _Unwind_GetCFA(ctx) - sizeof(uintptr_t);
    return ++u->n < fb_track_depth ? FB_URC_NO_REASON : FB_URC_END_OF_STACK;
}

static int own_frame(uintptr_t ip)
{
    return fb_track_is_own(ip);
}

/* The cached-rule walker first (cfi.h: a few loads a frame), libgcc's
 * unwinder for stacks it cannot walk (signal frames, CFA expressions). */
static unsigned unwind(uintptr_t *frames, uintptr_t *slots)
{
    int n = fb_cfi_backtrace(frames, slots, fb_track_depth, own_frame);
    if (n >= 0)
        return (unsigned)n;
    struct unwind_state u = {frames, slots, 0};
    _Unwind_Backtrace(unwind_frame, &u);
    return u.n;
}

/*
 * The hit path, inlined into each entry point, which holds the recursion
 * guard around it (a signal handler's allocation in the middle of it must
 * not rewrite the entry being read): the way whose key matches and whose
 * return addresses are all still where the unwinder found them.  0 on a
 * miss.  No call, so that the entry points save no registers for it.
 */
FB_INLINE uint32_t cache_hit(uintptr_t ra, uintptr_t cfa)
{
    char *cache = fb_track_cache;
    if (fb_unlikely(!cache))
        return 0;
    size_t stride = cache_stride;
    const char *e = (const char *)cache_at(cache, cache_set(ra, cfa) * FB_CACHE_WAYS);
    for (unsigned w = FB_CACHE_WAYS; w; w--, e += stride) {
        const struct cache_entry *c = (const struct cache_entry *)e;
        if (c->key_ra != ra || c->key_cfa != cfa)
            continue;
        /* n >= 1 (a stored way has a site); counting up to the end
         * (slot and return address of frame k/2, k = -2n, ..., -2) keeps
         * the loop at six instructions a frame. */
        const uintptr_t *end = (const uintptr_t *)(e + stride);
        intptr_t k = c->negk;
        while (*(const uintptr_t *)end[k] == end[k + 1])
            if ((k += 2) == 0) {
                uint32_t site = c->site;
                if (!site)
                    __builtin_unreachable();   /* stored with a site */
                return site;
            }
    }
    return 0;
}

/* cache_hit under the recursion guard (see above), which it leaves as it
 * found it. */
FB_INLINE uint32_t guarded_hit(struct fb_tls *t, uintptr_t kra, uintptr_t kcfa)
{
    uint8_t was = t->busy;
    t->busy = 1;
    atomic_signal_fence(memory_order_seq_cst);   /* the guard is set first */
    uint32_t site = cache_hit(kra, kcfa);
    atomic_signal_fence(memory_order_seq_cst);
    t->busy = was;
    return site;
}

/* A cache miss (or no cache yet): unwind for real, intern the stack,
 * remember where its return addresses were found, in an empty way of the
 * set or else the next in turn.  With the recursion guard set: the
 * unwinder and the module lookup must not re-enter tracking. */
static FB_NOINLINE uint32_t capture_miss(uintptr_t ra, uintptr_t cfa)
{
    uint8_t was = fb_t.busy;
    fb_t.busy = 1;
    char *cache = fb_track_cache;
    if (!cache && fb_t.state != FB_T_DEAD)
        cache = fb_track_cache = map_rw(cache_size);
    uintptr_t frames[FB_TRACK_MAX_DEPTH], slots[FB_TRACK_MAX_DEPTH];
    unsigned n = unwind(frames, slots);
    uint32_t site = n ? site_intern(frames, n) : 0;
    if (cache && site) {
        unsigned set = cache_set(ra, cfa);
        uint8_t *turn = (uint8_t *)cache_at(cache, FB_CACHE_ENTRIES) + set;
        unsigned w = 0;
        while (w < FB_CACHE_WAYS && cache_at(cache, set * FB_CACHE_WAYS + w)->key_cfa)
            w++;
        if (w == FB_CACHE_WAYS)
            w = (*turn)++ % FB_CACHE_WAYS;
        struct cache_entry *e = cache_at(cache, set * FB_CACHE_WAYS + w);
        e->key_ra = ra;
        e->key_cfa = cfa;
        e->site = site;
        e->negk = -2 * (intptr_t)n;
        for (unsigned k = 0, at = fb_track_depth - n; k < n; k++, at++) {
            e->f[at].slot = slots[k];
            e->f[at].ra = frames[k];
        }
    }
    fb_t.busy = was;
    return site;
}

/* ---------------------------------------------------------------------- */
/* Buffer objects: the site map                                            */

#define FB_SITE_BITS 27
#define FB_SITE_MASK ((1u << FB_SITE_BITS) - 1)

static uint32_t *site_map;                 /* one word per granule */

FB_COLD int fb_track_commit_slot(uintptr_t slot_base, size_t slot_size)
{
    if (!fb_track_on || !site_map)
        return 0;
    size_t first = (slot_base - fb_g.base) >> FB_GRANULE_SHIFT;
    size_t count = slot_size >> FB_GRANULE_SHIFT;
    return fb_plat_commit(&site_map[first], count * sizeof *site_map);
}

/* The site word of buffer object p: its site and the slack between its
 * usable size (the map's) and the request (0..16). */
static inline void buffer_note(void *p, size_t request, uint32_t site)
{
    size_t g = ((uintptr_t)p - fb_g.base) >> FB_GRANULE_SHIFT;
    size_t usable = (size_t)fb_g.map[g] << FB_GRANULE_SHIFT;
    uint32_t slack = (uint32_t)(usable - request);
    site_map[g] = site | (slack << FB_SITE_BITS);
}

static FB_NOINLINE uint32_t buffer_miss(void *p, size_t request, uintptr_t ra,
                                        uintptr_t cfa)
{
    uint32_t site = capture_miss(ra, cfa);
    buffer_note(p, request, site);
    return site;
}

FB_NOINLINE uint32_t fb_track_buffer(void *p, size_t request, uintptr_t ra)
{
    struct fb_tls *t = &fb_t;
    if (t->busy)
        return 0;
    uintptr_t kra = CAPTURE_KEY_RA(ra), kcfa = CAPTURE_KEY_CFA();
    uint32_t site = guarded_hit(t, kra, kcfa);
    if (fb_unlikely(!site))
        return buffer_miss(p, request, kra, kcfa);
    buffer_note(p, request, site);
    return site;
}

uint32_t fb_track_buffer_site(const void *p, size_t usable, size_t *request)
{
    uint32_t w = site_map[((uintptr_t)p - fb_g.base) >> FB_GRANULE_SHIFT];
    *request = usable - (w >> FB_SITE_BITS);
    return w & FB_SITE_MASK;
}

/* ---------------------------------------------------------------------- */
/* jemalloc objects: a sharded open-addressing table                       */

#define FB_SHARDS 64
#define FB_EMPTY ((uintptr_t)0)

/*
 * Linear probing with backward-shift deletion (Knuth 6.4, algorithm R):
 * a removal moves the later entries of its run back instead of leaving a
 * tombstone, so a run is never longer than its live entries make it.
 * With tombstones, a churn of frees and mallocs (tests/bench/request)
 * walked over about 1.3 of them per insert, and the runs only grew until
 * the next rehash.  Every state a removal passes through keeps each live
 * entry on its probe path (an entry is copied back before its old place
 * is reused), so the lock-free lookup of a stopped process
 * (fb_track_big_present_stopped) still finds it.
 */
struct big_entry {
    uintptr_t addr;
    uint64_t size;
    uint32_t site, pad;
};

struct shard {
    atomic_flag lock;
    uint32_t cap, used;
    uint32_t limit;                /* grow when used reaches it (70%) */
    struct big_entry *e;
} __attribute__((aligned(64)));

FB_BIG_BSS static struct shard shards[FB_SHARDS];

static void shard_lock(struct shard *s)
{
    while (atomic_flag_test_and_set_explicit(&s->lock, memory_order_acquire))
        __builtin_ia32_pause();
}
static void shard_unlock(struct shard *s)
{
    atomic_flag_clear_explicit(&s->lock, memory_order_release);
}

static inline uint64_t addr_hash(uintptr_t a)
{
    return (a >> 4) * 0x9e3779b97f4a7c15ull;
}

static struct shard *shard_of(uintptr_t a)
{
    return &shards[(addr_hash(a) >> 58) & (FB_SHARDS - 1)];
}

static FB_NOINLINE int shard_grow(struct shard *s)
{
    uint32_t cap = s->cap ? s->cap : 1024;
    while (s->used * 2 >= cap)
        cap *= 2;
    struct big_entry *e = map_rw((size_t)cap * sizeof *e);
    if (!e)
        return -1;
    for (uint32_t i = 0; i < s->cap; i++) {
        uintptr_t a = s->e[i].addr;
        if (a == FB_EMPTY)
            continue;
        uint32_t j = (uint32_t)addr_hash(a) & (cap - 1);
        while (e[j].addr != FB_EMPTY)
            j = (j + 1) & (cap - 1);
        e[j] = s->e[i];
    }
    /* The new table is published before the old one is unmapped, the
     * pointer before the size: a thread stopped anywhere in here leaves
     * tables that fb_track_big_present_stopped can read without the lock
     * (a stop signal is delivered right as munmap returns). */
    struct big_entry *old = s->e;
    size_t old_bytes = (size_t)s->cap * sizeof *s->e;
    __atomic_store_n(&s->e, e, __ATOMIC_RELEASE);
    __atomic_store_n(&s->cap, cap, __ATOMIC_RELEASE);
    s->limit = (uint32_t)((uint64_t)cap * 7 / 10);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (old)
        munmap(old, old_bytes);
    return 0;
}

/* a's entry in a table of cap entries, or NULL. */
static struct big_entry *probe(struct big_entry *e, uint32_t cap, uintptr_t a)
{
    if (!cap || !e)
        return NULL;
    for (uint32_t j = (uint32_t)addr_hash(a) & (cap - 1), k = 0; k < cap;
         j = (j + 1) & (cap - 1), k++) {
        if (e[j].addr == a)
            return &e[j];
        if (e[j].addr == FB_EMPTY)
            return NULL;
    }
    return NULL;
}

/* Empties entry i of s: each later entry of the run that may sit at i
 * (its home is not in (i, j]) moves back into the hole. */
static void shard_remove(struct shard *s, uint32_t i)
{
    uint32_t mask = s->cap - 1;
    for (uint32_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        uintptr_t a = s->e[j].addr;
        if (a == FB_EMPTY)
            break;
        uint32_t home = (uint32_t)addr_hash(a) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            s->e[i] = s->e[j];
            i = j;
        }
    }
    s->e[i].addr = FB_EMPTY;
    s->used--;
}

static inline uint32_t big_insert(uintptr_t a, size_t request, uint32_t site)
{
    struct shard *s = shard_of(a);
    shard_lock(s);
    if (fb_unlikely(s->used + 1 >= s->limit) && shard_grow(s) != 0) {
        shard_unlock(s);
        return site;
    }
    uint32_t mask = s->cap - 1, j = (uint32_t)addr_hash(a) & mask;
    while (s->e[j].addr != FB_EMPTY && s->e[j].addr != a)
        j = (j + 1) & mask;
    if (s->e[j].addr == FB_EMPTY)
        s->used++;
    s->e[j].addr = a;
    s->e[j].size = request;
    s->e[j].site = site;
    shard_unlock(s);
    return site;
}

static FB_NOINLINE uint32_t big_miss(void *p, size_t request, uintptr_t ra, uintptr_t cfa)
{
    return big_insert((uintptr_t)p, request, capture_miss(ra, cfa));
}

FB_NOINLINE uint32_t fb_track_big(void *p, size_t request, uintptr_t ra)
{
    struct fb_tls *t = &fb_t;
    if (t->busy || !p)
        return 0;
    uintptr_t kra = CAPTURE_KEY_RA(ra), kcfa = CAPTURE_KEY_CFA();
    uint32_t site = guarded_hit(t, kra, kcfa);
    if (fb_unlikely(!site))
        return big_miss(p, request, kra, kcfa);
    return big_insert((uintptr_t)p, request, site);
}

/* Looks a up (size and site may be NULL); with take, removes it.  Returns
 * 0 if a is not a tracked block start. */
static inline int lookup(uintptr_t a, size_t *size, uint32_t *site, int take)
{
    struct shard *s = shard_of(a);
    shard_lock(s);
    struct big_entry *e = probe(s->e, s->cap, a);
    if (e) {
        if (size)
            *size = e->size;
        if (site)
            *site = e->site;
        if (take)
            shard_remove(s, (uint32_t)(e - s->e));
    }
    shard_unlock(s);
    return e != NULL;
}

void fb_track_big_free(void *p)
{
    lookup((uintptr_t)p, NULL, NULL, 1);
}

int fb_track_big_take(uintptr_t a, size_t *size, uint32_t *site)
{
    return lookup(a, size, site, 1);
}

int fb_track_big_lookup(uintptr_t a, size_t *size, uint32_t *site)
{
    return lookup(a, size, site, 0);
}

/* The tracked block containing a (a inside, not at its start): a scan of
 * every shard, for bad-free reports only. */
uintptr_t fb_track_big_containing(uintptr_t a, size_t *size, uint32_t *site)
{
    uintptr_t best = 0;
    for (int i = 0; i < FB_SHARDS && !best; i++) {
        struct shard *s = &shards[i];
        shard_lock(s);
        for (uint32_t j = 0; j < s->cap; j++) {
            uintptr_t b = s->e[j].addr;
            if (b != FB_EMPTY && a > b && a < b + s->e[j].size) {
                best = b;
                *size = s->e[j].size;
                *site = s->e[j].site;
                break;
            }
        }
        shard_unlock(s);
    }
    return best;
}

FB_NOINLINE uint32_t fb_track_capture(void)
{
    struct fb_tls *t = &fb_t;
    uintptr_t kra = CAPTURE_KEY_RA(0), kcfa = CAPTURE_KEY_CFA();
    uint32_t site = guarded_hit(t, kra, kcfa);
    return site ? site : capture_miss(kra, kcfa);
}

/* Without the shard lock, for the exit check while every other thread is
 * stopped (one may be stopped holding it; none can grow a table under
 * us).  Anywhere else use fb_track_big_lookup: a growing table is
 * unmapped. */
int fb_track_big_present_stopped(uintptr_t a)
{
    struct shard *s = shard_of(a);
    return probe(s->e, s->cap, a) != NULL;
}

void fb_track_big_each(void (*fn)(void *ctx, uintptr_t addr, size_t size,
                                  uint32_t site),
                       void *ctx)
{
    for (int i = 0; i < FB_SHARDS; i++) {
        struct shard *s = &shards[i];
        shard_lock(s);
        for (uint32_t j = 0; j < s->cap; j++) {
            uintptr_t a = s->e[j].addr;
            if (a != FB_EMPTY)
                fn(ctx, a, s->e[j].size, s->e[j].site);
        }
        shard_unlock(s);
    }
}

/* ---------------------------------------------------------------------- */
/* Lifecycle                                                               */

static int find_own(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uintptr_t me = (uintptr_t)arg;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t s = info->dlpi_addr + ph->p_vaddr;
        if (s < lo)
            lo = s;
        if (s + ph->p_memsz > hi)
            hi = s + ph->p_memsz;
    }
    if (me >= lo && me < hi) {
        own_lo = lo;
        own_hi = hi;
        return 1;
    }
    return 0;
}

FB_COLD int fb_track_init(int for_trace)
{
    if (fb_opt.leaks == FB_LEAKS_OFF && !for_trace && !fb_opt.check &&
        !fb_opt.canary)
        return 0;
    fb_track_depth = (unsigned)fb_opt.stack_depth;
    /* No padding: an entry's frames end where the next entry starts. */
    cache_stride = sizeof(struct cache_entry) + fb_track_depth * 2 * sizeof(uintptr_t);
    cache_size = cache_stride * FB_CACHE_ENTRIES + FB_CACHE_SETS;
    dl_iterate_phdr(find_own, (void *)(uintptr_t)fb_track_init);
    site_buckets = map_rw(FB_SITE_BUCKETS * sizeof *site_buckets);
    sites = map_rw((size_t)FB_SITES_RESERVED * sizeof *sites);
    if (fb_g.size)
        site_map = fb_plat_reserve(fb_g.size / FB_ALIGN * sizeof *site_map,
                                   fb_plat_page_size());
    if (!site_buckets || !sites || (fb_g.size && !site_map))
        return 0;
    fb_track_on = 1;
    fb_track_gap = fb_opt.leaks != FB_LEAKS_OFF;
    return 1;
}

void fb_track_thread_exit(void)
{
    char *cache = fb_track_cache;
    if (cache) {
        fb_track_cache = NULL;
        munmap(cache, cache_size);
    }
}

void fb_track_fork_prepare(void)
{
    pthread_mutex_lock(&site_lock);
    pthread_mutex_lock(&arena_lock);
    for (int i = 0; i < FB_SHARDS; i++)
        shard_lock(&shards[i]);
}

void fb_track_fork_parent(void)
{
    for (int i = 0; i < FB_SHARDS; i++)
        shard_unlock(&shards[i]);
    pthread_mutex_unlock(&arena_lock);
    pthread_mutex_unlock(&site_lock);
}

void fb_track_fork_child(void)
{
    for (int i = 0; i < FB_SHARDS; i++)
        shard_unlock(&shards[i]);
    pthread_mutex_init(&arena_lock, NULL);
    pthread_mutex_init(&site_lock, NULL);
}
