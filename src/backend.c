/*
 * jemalloc: its compiled-in configuration, statistics and purging (for
 * mallinfo, malloc_trim and our own report).
 */
#include "backend.h"
#include "platform.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>
#include <sys/single_threaded.h>

/*
 * jemalloc's configuration for an embedding program: the global it reads
 * before /etc/malloc.conf and the MALLOC_CONF environment variable, which
 * therefore still override any of these settings (jemalloc's manual,
 * "malloc_conf"; its TUNING.md).  Renamed with the rest of jemalloc's
 * public names; jemalloc's own definition is weak, so this one wins.
 *
 * Chosen by scripts/bench --jeconf (docs/bench/jeconf.md): jemalloc's
 * defaults purge unused pages (MADV_DONTNEED after the dirty decay, its
 * muzzy_decay_ms is 0), so a program that keeps allocating and freeing
 * blocks of 64 KiB-8 MiB page-faults every page again: big took 6.2 s
 * there, 0.22 s with these settings, for a peak RSS 1.02x jemalloc's
 * (geometric mean over 8 workloads; at worst 1.05x).
 *  - muzzy_decay_ms:-1: pages leaving the dirty state are MADV_FREEd,
 *    never MADV_DONTNEEDed: the kernel takes them back under memory
 *    pressure, and reusing them before that costs no fault.
 *  - dirty_decay_ms:30000: pages freed stay dirty (reusable at no cost)
 *    30 s instead of 10.  With muzzy -1 alone, big's peak RSS was 1.17x
 *    (pages decayed to MADV_FREE early were not the ones reused).
 * Trimming a thread's cache less often (tcache_gc_incr_bytes:1048576,
 * once per MiB it allocates instead of per 64 KiB) saves 4-5% of the
 * instructions of the 2-thread churns (larson, request) and 1% of
 * python3's with PYTHONMALLOC=malloc, but request's peak RSS grew from
 * 7.1 to 7.6 MiB (jemalloc alone: 6.1), over the RSS target: not taken
 * (it is in the --jeconf study).
 * Background purging threads (background_thread:true) measured no better,
 * and would start a thread in every process that uses jemalloc; fewer
 * arenas (narenas:2) no better either.
 */
FB_HIDDEN const char *fb_jemalloc_malloc_conf =
    "dirty_decay_ms:30000,muzzy_decay_ms:-1";

/* Before fb_je_mark_init (frees during start-up): any constant but 0. */
FB_HIDDEN uint64_t fb_je_mark = 0xfb0dead0fb0dead1ull;

void fb_je_mark_init(void)
{
    /* The kernel's 16 random bytes for this process (no system call, no
     * allocation); a program cannot forge the mark by accident. */
    const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
    uint64_t v = 0;
    if (r)
        memcpy(&v, r + 8, sizeof v);
    v ^= 0xfb0dead0fb0dead1ull;
    fb_je_mark = v ? v : 1;
}

/* ---------------------------------------------------------------------- */
/* The early arena's requests (backend.h)                                  */

/*
 * jemalloc starts on its first call, which with the early arena may come
 * while other threads run: one of them may fork() while this one is in
 * jemalloc's initialisation, holding jemalloc's locks before jemalloc has
 * registered its fork handlers (fb_jemalloc_pthread_atfork), and the
 * child would wait on them for ever.  So the call that starts it is made
 * under je_start_lock, which fb_je_fork_prepare takes too, and the arena
 * closes only once jemalloc has started: until then every other thread's
 * request still comes here, and waits for the lock if the arena refuses
 * it.
 */
static atomic_flag je_start_lock = ATOMIC_FLAG_INIT;

static void start_lock(void)
{
    while (atomic_flag_test_and_set_explicit(&je_start_lock, memory_order_acquire))
        sched_yield();
}

static void *je_first(size_t align, size_t n, int zero)
{
    void *p;
    if (zero) {
        p = fb_jemalloc_calloc(1, fb_je_size(n));
        if (p)
            fb_je_started(p);
    } else if (align <= FB_ALIGN) {
        p = fb_je_fresh(fb_jemalloc_malloc(fb_je_size(n)));
    } else {
        p = fb_je_fresh(fb_jemalloc_mallocx(n ? n : 1, MALLOCX_LG_ALIGN(__builtin_ctzl(align))));
    }
    return p;
}

/*
 * Under an address-space limit (ulimit -v, -d) every byte of the arena
 * would count against the program's budget, touched or not: there it is
 * given back to the kernel at the first request, before any block is in
 * it, and jemalloc serves from the start.  early_state: 0 before that
 * first look, 1 while one thread looks (the others go to jemalloc) or
 * for good once the arena is gone, 2 when it may serve.
 */
static int early_state;

static FB_COLD int early_check(void)
{
    int expect = 0;
    if (!__atomic_compare_exchange_n(&early_state, &expect, 1, 0, __ATOMIC_ACQUIRE,
                                     __ATOMIC_ACQUIRE))
        return expect;
    if (fb_plat_as_limited()) {
        fb_early_unmap();
        return 1;
    }
    __atomic_store_n(&early_state, 2, __ATOMIC_RELEASE);
    return 2;
}

void *fb_je_early(size_t align, size_t n, int zero)
{
    /* More than the user address space: jemalloc would refuse it too (its
     * mmap fails), and the arena stays open.  errno as jemalloc's malloc
     * sets it (the doors return its NULL as it is: alloc.c). */
    if (n >> 47) {
        errno = ENOMEM;
        return NULL;
    }
    int st = __atomic_load_n(&early_state, __ATOMIC_ACQUIRE);
    if (fb_unlikely(st != 2))
        st = early_check();
    void *p = st == 2 ? fb_early_alloc(align, n, zero) : NULL;
    if (p)
        return p;
    /* The first request that does not fit (or that met another thread in
     * the arena): jemalloc starts here and serves every new one. */
    start_lock();
    p = je_first(align, n, zero);
    if (!p)
        errno = ENOMEM;
    if (fb_early_open) {
        fb_early_close();
        __atomic_store_n(&fb_early_open, 0, __ATOMIC_RELAXED);
    }
    atomic_flag_clear_explicit(&je_start_lock, memory_order_release);
    return p;
}

/* fb_je_realloc of p, a live block of the early arena: in place if it can
 * be, else moved (to the arena while it is open) and p freed. */
void *fb_je_early_realloc(void *p, size_t n)
{
    if (fb_early_resize(p, fb_je_size(n)))
        return p;
    void *q = fb_je_malloc(n);
    if (q) {
        size_t old = fb_early_usable(p);
        memcpy(q, p, old < n ? old : n);   /* the first word: never the secret */
        fb_je_free(p);
    }
    return q;
}

/* ---------------------------------------------------------------------- */
/* Where jemalloc's memory is (backend.h's fb_je_foreign)                  */

/*
 * Every range jemalloc has mapped (mmap, or sbrk for its "dss") and not
 * unmapped, exactly, and the granule map fb_je_foreign reads.  Written
 * only by jemalloc's mmap, munmap and sbrk (below), which are rare (tens
 * of calls in a process: jemalloc maps in growing steps and keeps what it
 * mapped), under je_space_lock; jemalloc may hold its own locks then, and
 * nothing here calls jemalloc or takes another lock.  fb_je_foreign reads
 * the granule map without a lock: a granule changes from NONE to FULL or
 * EDGE before jemalloc can hand out a block in it, and from FULL only
 * when jemalloc unmaps it, when no block lives there any more.  The exact
 * list is read for EDGE granules under a sequence lock (odd while a
 * writer changes it): readers never block a writer, a reader in a
 * signal handler never waits for the thread it interrupted for ever.
 *
 * Leaves cover 4 GiB each (512 KiB, an entry of 8 bytes per 64 KiB
 * granule), made by mmap on first use (a process uses a few, and touches
 * a page of one per 32 MiB that jemalloc maps).  If a leaf cannot be
 * mapped (an address-space limit), the map is marked broken and
 * fb_je_foreign trusts only FULL: an address it cannot place goes to
 * jemalloc, as without the map.
 *
 * Start maps (backend.h) are carved from chunks mapped here, one per
 * granule when jemalloc first maps part of it, and kept for good: a
 * granule jemalloc unmaps keeps its start map (cleared) for when jemalloc
 * maps it again, so an entry's start map never changes once set and a
 * lock-free reader always finds the right one.  Their memory is 1/128 of
 * the most jemalloc had mapped, and a page of it is touched only where
 * blocks start.
 */
FB_BIG_BSS FB_HIDDEN struct fb_je_space fb_je_space;
FB_HIDDEN struct fb_je_shadow fb_je_sh;
static int shadow_tried;

#define JE_RANGES 1024
FB_BIG_BSS static struct fb_plat_range je_r[JE_RANGES];
static struct fb_plat_rangeset je_set = {je_r, 0, JE_RANGES, 0};
static atomic_flag je_space_lock = ATOMIC_FLAG_INIT;
static _Atomic unsigned je_seq;
static _Atomic int je_broken;
static _Atomic uintptr_t je_writer;  /* &je_me of the thread changing them */
static __thread char je_me __attribute__((tls_model("initial-exec")));

static void space_lock(void)
{
    while (atomic_flag_test_and_set_explicit(&je_space_lock, memory_order_acquire))
        __builtin_ia32_pause();
}

static void space_unlock(void)
{
    atomic_flag_clear_explicit(&je_space_lock, memory_order_release);
}

static uintptr_t pages_up(uintptr_t a);

static uint64_t *leaf_of(uintptr_t a, int make)
{
    _Atomic uintptr_t *slot = &fb_je_space.root[a >> FB_JE_LEAF_SHIFT];
    uintptr_t d = atomic_load_explicit(slot, memory_order_relaxed);
    if (d || !make)
        return d ? (uint64_t *)((char *)fb_je_space.zero + d) : NULL;
    void *m = mmap(NULL, FB_JE_LEAF_SIZE * sizeof(uint64_t), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        atomic_store_explicit(&je_broken, 1, memory_order_relaxed);
        return NULL;
    }
    /* Release: a reader that finds the leaf finds it zeroed. */
    atomic_store_explicit(slot, (uintptr_t)m - (uintptr_t)fb_je_space.zero,
                          memory_order_release);
    return m;
}

/* A zeroed start map for one granule (under the lock); NULL when no
 * memory is left for one. */
static uint64_t *starts_new(void)
{
    static char *chunk;
    static size_t left;
    if (left < FB_JE_STARTS_BYTES) {
        /* 256 KiB: the start maps of 32 MiB of jemalloc's memory. */
        size_t len = (size_t)256 << 10;
        void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        chunk = m;
        left = len;
    }
    uint64_t *r = (uint64_t *)chunk;
    chunk += FB_JE_STARTS_BYTES;
    left -= FB_JE_STARTS_BYTES;
    return r;
}

/* The start shadow (backend.h), tried once, at jemalloc's first mapping
 * at (under the lock): before jemalloc has a block, so every block's bit
 * is in the same place for good.  The window is centred on that mapping
 * (the kernel places mappings near each other, top-down). */
static void shadow_make(uintptr_t at)
{
    shadow_tried = 1;
    /* Under a limit, 32 GiB of it would be the shadow's (the kernel counts
     * MAP_NORESERVE mappings too): the per-granule maps, 1/128 of what
     * jemalloc maps, serve instead. */
    if (fb_plat_as_limited())
        return;
    const uintptr_t size = (uintptr_t)1 << FB_JE_WINDOW_SHIFT, top = (uintptr_t)1 << 47;
    uintptr_t lo = at > size / 2 ? (at - size / 2) & ~(((uintptr_t)1 << 30) - 1) : 0;
    if (lo > top - size)
        lo = top - size;
    void *m = mmap(NULL, size >> 7, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return;
    fb_je_sh.lo = lo;
    fb_je_sh.map = m;
    __atomic_store_n(&fb_je_sh.bits, size >> 4, __ATOMIC_RELEASE);
}

static int in_window(uintptr_t a)
{
    return fb_je_shadow_index(a & ~(uintptr_t)15) < fb_je_sh.bits;
}

/* Zeroes the shadow's words [w, end), page by page, skipping pages never
 * written: mincore tells without touching them (a page never written
 * holds only zeros, and a store would fault it in for nothing: jemalloc's
 * first mappings, trimmed to alignment at start-up, cost six page faults
 * so). */
static void shadow_zero(uint64_t *w, uint64_t *end)
{
    while (w < end) {
        uintptr_t page = (uintptr_t)w & ~(uintptr_t)4095;
        uint64_t *stop = (uint64_t *)(page + 4096) < end ? (uint64_t *)(page + 4096) : end;
        unsigned char in = 1;
        if (mincore((void *)page, 4096, &in) != 0 || (in & 1))
            for (; w < stop; w++)
                __atomic_store_n(w, 0, __ATOMIC_RELAXED);
        w = stop;
    }
}

/* Clears the shadow's bits of [lo, hi) (page-aligned: whole words, a
 * page's bits being 4 words, none of them another range's); whole pages
 * of bits are given back to the kernel. */
static void shadow_clear(uintptr_t lo, uintptr_t hi)
{
    uintptr_t wlo_a = fb_je_sh.lo, whi_a = wlo_a + (fb_je_sh.bits << 4);
    if (!fb_je_sh.bits || hi <= wlo_a || lo >= whi_a)
        return;
    if (lo < wlo_a)
        lo = wlo_a;
    if (hi > whi_a)
        hi = whi_a;
    uint64_t *sh = fb_je_sh.map;
    uint64_t *w = sh + ((lo - wlo_a) >> 10), *end = sh + ((hi - wlo_a) >> 10);
    uint64_t *plo = (uint64_t *)pages_up((uintptr_t)w);
    uint64_t *phi = (uint64_t *)((uintptr_t)end & ~(uintptr_t)4095);
    if (phi <= plo) {
        shadow_zero(w, end);
        return;
    }
    madvise(plo, (uintptr_t)phi - (uintptr_t)plo, MADV_DONTNEED);  /* zeros */
    shadow_zero(w, plo);
    shadow_zero(phi, end);
}

/* Clears the bits of [lo, hi) (whole pages: whole words) in granule g's
 * start map. */
static void starts_clear(uint64_t e, uintptr_t g, uintptr_t lo, uintptr_t hi)
{
    uintptr_t base = g << FB_JE_GRAN_SHIFT, end = base + ((uintptr_t)1 << FB_JE_GRAN_SHIFT);
    if (lo < base)
        lo = base;
    if (hi > end)
        hi = end;
    uint64_t *m = fb_je_starts(e);
    for (uintptr_t a = lo; a < hi; a += (uintptr_t)1 << 10)
        __atomic_store_n(&m[fb_je_start_index(a) >> 6], 0, __ATOMIC_RELAXED);
}

/* Granule g's state from the exact list (under the lock). */
static uint8_t granule_state(uintptr_t g)
{
    uintptr_t lo = g << FB_JE_GRAN_SHIFT, hi = lo + ((uintptr_t)1 << FB_JE_GRAN_SHIFT);
    size_t i = fb_plat_set_find(&je_set, lo + 1);
    if (i == je_set.n || je_r[i].lo >= hi)
        return FB_JE_NONE;
    return je_r[i].lo <= lo && je_r[i].hi >= hi ? FB_JE_FULL : FB_JE_EDGE;
}

/* Records that jemalloc mapped (add) or is about to unmap [lo, hi). */
static void space_change(uintptr_t lo, uintptr_t hi, int add)
{
    if (lo >= hi || hi > ((uintptr_t)1 << 47))
        return;
    space_lock();
    atomic_store_explicit(&je_writer, (uintptr_t)&je_me, memory_order_relaxed);
    atomic_fetch_add_explicit(&je_seq, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    if (add && !shadow_tried)
        shadow_make(lo);
    if (add)
        fb_plat_set_add(&je_set, lo, hi);
    else if (!je_set.overflow)
        fb_plat_set_remove(&je_set, lo, hi);
    if (!add && !je_set.overflow)
        shadow_clear(lo, hi);
    /* Most ranges lie wholly in the shadow's window: one test for all. */
    int all_shadowed = in_window(lo) && in_window(hi - 16);
    uintptr_t g_lo = lo >> FB_JE_GRAN_SHIFT, g_hi = (hi - 1) >> FB_JE_GRAN_SHIFT;
    for (uintptr_t g = g_lo; g <= g_hi; g++) {
        uint64_t *leaf = leaf_of(g << FB_JE_GRAN_SHIFT, add);
        if (!leaf)
            continue;                /* remove: nothing recorded there */
        uint64_t *ent = &leaf[g & (FB_JE_LEAF_SIZE - 1)];
        uint64_t e = *ent, map = e & ~(uint64_t)FB_JE_STATE;
        int shadowed = all_shadowed || (in_window(g << FB_JE_GRAN_SHIFT) &&
                                        in_window(((g + 1) << FB_JE_GRAN_SHIFT) - 16));
        if (add && !map && !shadowed)
            map = (uint64_t)(uintptr_t)starts_new();
        else if (!add && map && !je_set.overflow)
            starts_clear(e, g, lo, hi);
        /* A granule strictly between the range's two ends is wholly in it
         * (added: FULL) or wholly out of every range (removed: NONE, as
         * ranges never overlap); only the ends need the exact list. */
        uint64_t now = g == g_lo || g == g_hi ? granule_state(g) : add ? FB_JE_FULL : FB_JE_NONE;
        uint64_t was = e & FB_JE_STATE;
        /* Once the list overflowed it is incomplete: granules only gain
         * (an unmapped range stays "jemalloc's": never a false report). */
        if (je_set.overflow && now < was)
            now = was;
        __atomic_store_n(ent, map | now, __ATOMIC_RELAXED);
    }
    atomic_store_explicit(&je_seq, atomic_load_explicit(&je_seq, memory_order_relaxed) + 1,
                          memory_order_release);
    space_unlock();
}

FB_NOINLINE void fb_je_shadow_set(uintptr_t i)
{
    __atomic_fetch_or(&fb_je_sh.map[i >> 6], (uint64_t)1 << (i & 63), __ATOMIC_RELAXED);
}

int fb_je_foreign_slow(uintptr_t a)
{
    if (a & (~(((uintptr_t)1 << 47) - 1) | (FB_ALIGN - 1)))
        return 1;                    /* misaligned, or no user address */
    /* The early arena's: only its blocks' starts are read (the arena may
     * have been given back: early_check). */
    if (fb_early_owns((const void *)a))
        return !fb_early_is_start(a);
    if (atomic_load_explicit(&je_broken, memory_order_relaxed))
        return 0;
    const uint64_t *leaf = (const uint64_t *)((const char *)fb_je_space.zero +
        atomic_load_explicit(&fb_je_space.root[a >> FB_JE_LEAF_SHIFT], memory_order_acquire));
    uint64_t st = __atomic_load_n(&leaf[(a >> FB_JE_GRAN_SHIFT) & (FB_JE_LEAF_SIZE - 1)],
                                  __ATOMIC_RELAXED) & FB_JE_STATE;
    if (st != FB_JE_EDGE)
        return st == FB_JE_NONE;
    for (int tries = 0; tries < 100000; tries++) {
        unsigned s1 = atomic_load_explicit(&je_seq, memory_order_acquire);
        if (s1 & 1) {
            /* A writer is at work: never wait for our own thread (a
             * handler that interrupted it), and let a preempted writer
             * run; one stopped for good (a leak check stops threads) is
             * let by after that many rounds, as if jemalloc's. */
            if (atomic_load_explicit(&je_writer, memory_order_relaxed) == (uintptr_t)&je_me)
                return 0;
            if (tries % 64 == 63)
                sched_yield();
            else
                __builtin_ia32_pause();
            continue;
        }
        size_t n = je_set.n < JE_RANGES ? je_set.n : JE_RANGES;
        struct fb_plat_rangeset view = {je_r, n, JE_RANGES, 0};
        size_t i = fb_plat_set_find(&view, a + 1);
        int inside = i < n && je_r[i].lo <= a && a < je_r[i].hi;
        int overflow = je_set.overflow;
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&je_seq, memory_order_relaxed) == s1)
            return !inside && !overflow;
    }
    return 0;                        /* a writer stopped under us: let it by */
}

/*
 * jemalloc's system calls that change memory, renamed to these at build
 * time (src/tools/jemalloc-embed.sh), record where jemalloc's memory is
 * (above) and keep errno: free must leave errno
 * alone (glibc guarantees it, POSIX 2024 requires it), and jemalloc's free
 * may purge (madvise) or unmap pages.  A successful call never touches
 * errno, so the save matters only when the kernel refuses; jemalloc reads
 * only the return values of these calls (and errno in a diagnostic it
 * prints before aborting on a failed munmap, which then names the wrong
 * cause).  A failed allocation still reports ENOMEM: jemalloc's malloc
 * sets it itself, and our callers set it on NULL.  With this, the free
 * path calls jemalloc's free as a tail call, with no errno save around it
 * (about 12 instructions per free less: alloc.c).
 */
FB_HIDDEN void *fb_jemalloc_sys_mmap(void *a, size_t n, int prot, int flags, int fd, off_t off);
FB_HIDDEN int fb_jemalloc_sys_munmap(void *a, size_t n);
FB_HIDDEN int fb_jemalloc_sys_madvise(void *a, size_t n, int advice);
FB_HIDDEN int fb_jemalloc_sys_mprotect(void *a, size_t n, int prot);
FB_HIDDEN void *fb_jemalloc_sys_sbrk(intptr_t incr);

static uintptr_t pages_up(uintptr_t a)
{
    return (a + 4095) & ~(uintptr_t)4095;
}

void *fb_jemalloc_sys_mmap(void *a, size_t n, int prot, int flags, int fd, off_t off)
{
    int saved = errno;
    void *r = mmap(a, n, prot, flags, fd, off);
    if (r != MAP_FAILED)
        space_change((uintptr_t)r, pages_up((uintptr_t)r + n), 1);
    errno = saved;
    return r;
}

int fb_jemalloc_sys_munmap(void *a, size_t n)
{
    int saved = errno;
    /* Forgotten first: once munmap returns, another thread's mmap may be
     * given these addresses, and its record must not be undone by ours. */
    space_change((uintptr_t)a, pages_up((uintptr_t)a + n), 0);
    int r = munmap(a, n);
    errno = saved;
    return r;
}

/* Pages jemalloc gives back hold no block (it purges only extents it
 * has no blocks in): their start bits go, so that an interior pointer of
 * a block later carved there at other offsets is not taken for a start.
 * No lock: an entry's start map never changes once set (space_change),
 * and these words are no live block's (pages are whole words). */
static void starts_forget(uintptr_t lo, uintptr_t hi)
{
    if (lo >= hi || hi > ((uintptr_t)1 << 47))
        return;
    shadow_clear(lo, hi);
    for (uintptr_t g = lo >> FB_JE_GRAN_SHIFT; g <= (hi - 1) >> FB_JE_GRAN_SHIFT; g++) {
        uint64_t e = fb_je_entry(g << FB_JE_GRAN_SHIFT);
        if (e >= FB_JE_STARTS_BYTES)
            starts_clear(e, g, lo, hi);
    }
}

int fb_jemalloc_sys_madvise(void *a, size_t n, int advice)
{
    if (advice == MADV_DONTNEED || advice == MADV_FREE)
        starts_forget((uintptr_t)a, pages_up((uintptr_t)a + n));
    int saved = errno, r = madvise(a, n, advice);
    errno = saved;
    return r;
}

int fb_jemalloc_sys_mprotect(void *a, size_t n, int prot)
{
    int saved = errno, r = mprotect(a, n, prot);
    errno = saved;
    return r;
}

/* jemalloc's "dss": memory from the program break, when mmap fails. */
void *fb_jemalloc_sys_sbrk(intptr_t incr)
{
    int saved = errno;
    void *r;
    if (incr < 0) {
        uintptr_t top = (uintptr_t)sbrk(0);
        space_change(pages_up(top + (uintptr_t)incr), pages_up(top), 0);
    }
    r = sbrk(incr);
    if (r != (void *)-1 && incr > 0)
        space_change((uintptr_t)r & ~(uintptr_t)4095,
                     pages_up((uintptr_t)r + (uintptr_t)incr), 1);
    errno = saved;
    return r;
}

/*
 * The three functions of libm that jemalloc calls (its heap profiler's
 * sampling interval and the unbiasing of its counts, computed once per
 * size class when jemalloc initialises), renamed to these at build time,
 * so that libfbmalloc.so needs no libm: a library less to open, map and
 * relocate in every process that inherits LD_PRELOAD.  They cannot be
 * looked up lazily (dlopen would allocate inside jemalloc's start-up).
 * Accurate to about 1e-15 relative, far more than a statistical sample
 * interval needs; NaN, infinities and out-of-range arguments as C says.
 */
FB_HIDDEN double fb_jemalloc_sys_exp(double x);
FB_HIDDEN double fb_jemalloc_sys_log(double x);
FB_HIDDEN double fb_jemalloc_sys_round(double x);

static const double fb_ln2 = 0.69314718055994530942;

static double with_exponent(double m, int64_t e)   /* m * 2^e, m normal */
{
    uint64_t b;
    memcpy(&b, &m, sizeof b);
    b += (uint64_t)e << 52;
    memcpy(&m, &b, sizeof m);
    return m;
}

double fb_jemalloc_sys_exp(double x)
{
    if (x != x)
        return x;
    if (x > 709.78)
        return __builtin_inf();
    if (x < -708.39)
        return 0.0;                  /* below the smallest normal */
    /* x = k ln2 + r, |r| <= ln2 / 2; e^r by its series to r^17/17!. */
    double kd = x / fb_ln2;
    int64_t k = (int64_t)(kd < 0 ? kd - 0.5 : kd + 0.5);
    /* ln2 in two parts (the high one with its low bits zero, so k times
     * it is exact): r keeps its precision for large k. */
    double r = (x - (double)k * 6.93147180369123816490e-01) -
               (double)k * 1.90821492927058770002e-10;
    double term = 1.0, sum = 1.0;
    for (int i = 1; i <= 17; i++) {
        term *= r / i;
        sum += term;
    }
    return with_exponent(sum, k);
}

double fb_jemalloc_sys_log(double x)
{
    if (x != x || x < 0)
        return __builtin_nan("");
    if (x == 0)
        return -__builtin_inf();
    if (x == __builtin_inf())
        return x;
    int64_t e = 0;
    if (x < 0x1p-1022) {             /* subnormal: make it normal first */
        x *= 0x1p54;
        e = -54;
    }
    /* x = m 2^e with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(s),
     * s = (m - 1) / (m + 1), |s| < 0.172: its series to s^29. */
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    e += (int64_t)((b >> 52) & 0x7ff) - 1023;
    double m = with_exponent(x, -((int64_t)((b >> 52) & 0x7ff) - 1023));
    if (m > 1.4142135623730951) {
        m *= 0.5;
        e++;
    }
    double sv = (m - 1) / (m + 1), s2 = sv * sv, pw = sv, sum = 0;
    for (int i = 1; i <= 29; i += 2) {
        sum += pw / i;
        pw *= s2;
    }
    return 2 * sum + (double)e * fb_ln2;
}

double fb_jemalloc_sys_round(double x)
{
    /* Every double of magnitude 2^52 or more (and NaN, inf) is whole. */
    if (!(x > -0x1p52 && x < 0x1p52))
        return x;
    double t = (double)(int64_t)x;   /* toward zero */
    double f = x - t;
    if (f >= 0.5)
        t += 1;
    else if (f <= -0.5)
        t -= 1;
    return t == 0 && x < 0 ? -0.0 : t;
}

/*
 * jemalloc's fork handlers.  jemalloc registers them with pthread_atfork
 * when it initialises; the build renames that call to this function
 * (src/tools/jemalloc-embed.sh), and init.c's handlers run them, so the
 * order is fixed: our locks are taken first and jemalloc's after them
 * (we call jemalloc while holding ours, never the reverse), and released
 * in the opposite order.  With pthread_atfork's own ordering (prepare
 * handlers in reverse order of registration) that would depend on which
 * of us initialised first, and jemalloc initialises lazily, on its first
 * call, which may come long after ours.  Until then there is nothing of
 * jemalloc's to lock.
 */
static void (*je_prepare)(void), (*je_parent)(void), (*je_child)(void);
static _Atomic int je_forks;

FB_HIDDEN int fb_jemalloc_pthread_atfork(void (*prepare)(void),
                                         void (*parent)(void),
                                         void (*child)(void));
int fb_jemalloc_pthread_atfork(void (*prepare)(void), void (*parent)(void),
                               void (*child)(void))
{
    je_prepare = prepare;
    je_parent = parent;
    je_child = child;
    atomic_store_explicit(&je_forks, 1, memory_order_release);
    return 0;
}

/*
 * Whether jemalloc's handlers run is decided once, in prepare (parent and
 * child must match it): only if jemalloc is initialised, and only if the
 * process has ever had a second thread (glibc's __libc_single_threaded
 * stays true until the first pthread_create).  jemalloc's handlers lock
 * and unlock every mutex of every arena and bin, so after a fork parent
 * and child each take a copy-on-write fault on every page holding one:
 * a shell's fork+exec loop took ~45 more page faults per command under
 * jemalloc than under glibc.  In a process that never had another thread
 * no jemalloc lock can be held by anyone else at fork, and the rest of
 * jemalloc's child handler (the thread list, arena thread counts) leaves
 * things as they are when the forking thread is the only one.
 */
static int je_forking;

/* The same decision for the map of jemalloc's memory: its lock is taken
 * after jemalloc's (jemalloc's mmap calls take it under jemalloc's own
 * locks), and only where another thread may hold it. */
static int space_forking;

void fb_je_fork_prepare(void)
{
    space_forking = !__libc_single_threaded;
    if (space_forking)
        start_lock();                /* jemalloc is started, or not yet */
    je_forking = atomic_load_explicit(&je_forks, memory_order_acquire) && space_forking;
    if (je_forking && je_prepare)
        je_prepare();
    if (space_forking)
        space_lock();
}

void fb_je_fork_parent(void)
{
    if (space_forking)
        space_unlock();
    if (je_forking && je_parent)
        je_parent();
    if (space_forking)
        atomic_flag_clear_explicit(&je_start_lock, memory_order_release);
}

void fb_je_fork_child(void)
{
    if (space_forking)
        atomic_flag_clear(&je_space_lock);   /* the child's only thread */
    if (je_forking && je_child)
        je_child();
    if (space_forking)
        atomic_flag_clear(&je_start_lock);
}

static size_t read_stat(const char *name)
{
    size_t v = 0, len = sizeof v;
    if (fb_jemalloc_mallctl(name, &v, &len, NULL, 0) != 0)
        return 0;
    return v;
}

void fb_je_info(struct fb_je_info *out)
{
    if (fb_early_on()) {
        /* jemalloc has not started (a mallctl would start it). */
        size_t used = fb_early_used();
        *out = (struct fb_je_info){used, used, used, used};
        return;
    }
    /* Statistics are cached per "epoch" in jemalloc; bump it to refresh. */
    uint64_t epoch = 1;
    size_t len = sizeof epoch;
    fb_jemalloc_mallctl("epoch", &epoch, &len, &epoch, len);
    out->allocated = read_stat("stats.allocated");
    out->active = read_stat("stats.active");
    out->resident = read_stat("stats.resident");
    out->mapped = read_stat("stats.mapped");
}

int fb_je_trim(void)
{
    char name[64];
    if (fb_early_on())
        return 0;                    /* nothing of jemalloc's to give back */
    /* MALLCTL_ARENAS_ALL: purge every arena. */
    memset(name, 0, sizeof name);
    strcpy(name, "arena.4096.purge");
    return fb_jemalloc_mallctl(name, NULL, NULL, NULL, 0) == 0;
}
