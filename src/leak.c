/*
 * The leak check's entry points, on top of its parts:
 *
 *   leakroots   thread registry, stopping threads, stacks, TLS, segments,
 *               readable mappings: the roots;
 *   leakscan    the block table, marking from the roots, classification
 *               into reachable, direct and indirect;
 *   leaksupp    suppressions;
 *   leakreport  grouping by call site and the text, JSON, folded and
 *               pprof writers.
 *
 * A check (fb_leak_check, at exit or on demand) runs them in that order;
 * snapshots and scopes (below) list live blocks without marking.  Every
 * check, snapshot, scope end or walk runs alone, under the check lock,
 * with the recursion guard set: the symboliser's and libc's allocations
 * go to jemalloc untracked, and the lists are on mmap.
 */
#define _GNU_SOURCE
#include "leak.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "canary.h"
#include "epoch.h"
#include "fb.h"
#include "leakreport.h"
#include "leakroots.h"
#include "leakscan.h"
#include "leaksupp.h"
#include "options.h"
#include "platform.h"
#include "symbolize.h"
#include "track.h"

/* Looked up once at start-up: any dlsym() during a check would run
 * glibc's _dlerror_run, which frees the program's pending dlerror()
 * message, i.e. change the heap being checked (leakroots.c). */
void fb_leak_init(void)
{
    fb_leakroots_init();
}

void fb_leak_register_thread(void)
{
    fb_leakroots_register_thread();
}

void fb_leak_unregister_thread(void)
{
    fb_leakroots_unregister_thread();
}

int fb_leak_on_a_stack(uintptr_t a)
{
    return fb_leakroots_on_a_stack(a);
}

void fb_leak_fork_child(void)
{
    fb_leakroots_fork_child();
}

static pthread_mutex_t check_lock = PTHREAD_MUTEX_INITIALIZER;

/* Every check, snapshot or walk runs alone, with the recursion guard set
 * (its own allocations go to jemalloc untracked) and errno kept. */
struct guard {
    uint8_t was_busy;
    int saved_errno;
};

static void enter(struct guard *g)
{
    pthread_mutex_lock(&check_lock);
    g->was_busy = fb_t.busy;
    fb_t.busy = 1;
    g->saved_errno = errno;
}

static void leave(const struct guard *g)
{
    errno = g->saved_errno;
    fb_t.busy = g->was_busy;
    pthread_mutex_unlock(&check_lock);
}

/*
 * FBMALLOC_CANARY's check at exit, of every collected block still live,
 * with the other threads stopped as the leak check stops them (in the
 * leak check's own stop when there is one: a second stop right after the
 * first found threads still in the first one's handler, with the signal
 * blocked, and scanned them running).  A walk over a list collected while
 * they run read blocks freed and reused under it: the header of a block
 * freed since, and the front pad of the block allocated in its place,
 * made a false "heap underrun ... found at exit" (issue 13, item 6).  The
 * list is collected first (that takes tracking's locks); once the threads
 * are stopped each entry is checked to be live still, without locks.
 * The canary check takes no lock and does not allocate (a stopped thread
 * may hold any): it notes damage for fb_canary_exit_report, called once
 * the threads run again.  A thread that blocks the signal, or never
 * allocated (it is not registered), is not stopped: the canary check
 * still expects a block to change under it.
 */
static void canary_walk(int stopped)
{
    for (size_t i = 0; i < fb_leakscan_blocks.n; i++) {
        const struct fb_leakscan_block *b = fb_leakscan_blk(i);
        if (fb_leakscan_still_live(b, stopped))
            fb_canary_check_block(NULL, b->addr, b->usable, b->site);
    }
}

long fb_leak_check(int at_exit, const struct fb_leak_caller *caller)
{
    if (!fb_track_on)
        return -1;
    struct guard g;
    enter(&g);

    fb_leakroots_begin();
    fb_leakscan_collect();
    fb_leakscan_sort();
    fb_leakroots_mark(at_exit, caller);
    if (at_exit && fb_canary_on)
        canary_walk(fb_leakroots_stopped());
    fb_leakscan_classify();
    fb_leakscan_drop_freed(fb_leakroots_stopped());
    fb_leakroots_end();
    if (at_exit && fb_canary_on)
        fb_canary_exit_report();     /* before the leaks, as without them */
    fb_leakreport_build_groups();

    /* Symbolisation loads libdw with dlopen(), which (like any dl*
     * call) clears the program's pending dlerror() message: only when
     * there is something to name. */
    int printable = fb_leaksupp_load() > 0;
    for (size_t i = 0; i < fb_leakreport_groups.n && !printable; i++) {
        const struct fb_leakreport_group *g = fb_leakreport_group(i);
        printable = g->kind != FB_LEAKSCAN_REACHABLE || fb_opt.leaks == FB_LEAKS_ALL;
    }
    if (printable)
        fb_sym_open();
    struct fb_leakreport_totals t;
    memset(&t, 0, sizeof t);
    for (size_t i = 0; i < fb_leakreport_groups.n; i++) {
        struct fb_leakreport_group *g = fb_leakreport_group(i);
        if (g->kind == FB_LEAKSCAN_REACHABLE) {
            t.reach_bytes += g->bytes;
            t.reach_blocks += g->blocks;
            continue;
        }
        if (fb_leaksupp_match(fb_track_site(g->site))) {
            g->suppressed = 1;
            t.supp_bytes += g->bytes;
            t.supp_blocks += g->blocks;
            continue;
        }
        t.groups++;
        t.bytes += g->bytes;
        t.blocks += g->blocks;
        if (g->kind == FB_LEAKSCAN_DIRECT) {
            t.direct_bytes += g->bytes;
            t.direct_blocks += g->blocks;
        } else {
            t.indirect_bytes += g->bytes;
            t.indirect_blocks += g->blocks;
        }
    }
    /* At exit, nothing to say is said by nothing (as LeakSanitizer does):
     * a program whose stderr is part of its output must not change under
     * tracking.  FBMALLOC_LEAKS=all and FBMALLOC_VERBOSE ask for the
     * report anyway; a check on demand was asked for. */
    if (!at_exit || t.groups || fb_opt.leaks == FB_LEAKS_ALL || fb_opt.verbose) {
        int fd = fb_plat_output_fd();
        fb_leakreport_write(fd, &t, FB_LEAKREPORT_LEAKS);
        fb_plat_output_done();
    }
    fb_sym_close();

    fb_leakscan_free();
    fb_leakreport_free();
    long leaked = (long)t.blocks;
    leave(&g);
    return leaked;
}

/* At exit without a leak check: the canary walk alone, then its report
 * (outside the lock, as any report). */
void fb_leak_canary_at_exit(void)
{
    if (!fb_track_on)
        return;
    struct guard g;
    enter(&g);
    fb_leakscan_collect();           /* takes tracking's locks: first */
    fb_leakroots_pause_others();
    canary_walk(fb_leakroots_stopped());
    fb_leakroots_end();
    fb_leakscan_free();
    leave(&g);
    fb_canary_exit_report();
}

/* Groups the collected live blocks by site and writes them to fd (-1:
 * FBMALLOC_OUTPUT); with nothing to report, writes only if always.
 * Returns the number of blocks.  Frees the block and group lists. */
static long write_live(int fd, enum fb_leakreport_mode mode, int always)
{
    fb_leakreport_build_groups();
    struct fb_leakreport_totals t;
    memset(&t, 0, sizeof t);
    for (size_t i = 0; i < fb_leakreport_groups.n; i++) {
        const struct fb_leakreport_group *g = fb_leakreport_group(i);
        t.groups++;
        t.bytes += g->bytes;
        t.blocks += g->blocks;
    }
    if (fb_leakreport_groups.n || always) {
        if (fb_leakreport_groups.n)
            fb_sym_open();
        int out = fd >= 0 ? fd : fb_plat_output_fd();
        fb_leakreport_write(out, &t, mode);
        if (fd < 0)
            fb_plat_output_done();
        fb_sym_close();
    }
    fb_leakscan_free();
    fb_leakreport_free();
    return (long)t.blocks;
}

/*
 * Heap snapshot: every tracked live block, grouped by call site, largest
 * first; no reachability scan, so other threads are not stopped and the
 * program is held up only for the collection and the writing.
 */
int fb_leak_snapshot(int fd)
{
    if (!fb_track_on)
        return -1;
    struct guard g;
    enter(&g);
    fb_leakscan_collect();
    for (size_t i = 0; i < fb_leakscan_blocks.n; i++)
        fb_leakscan_blk(i)->state = FB_LEAKSCAN_LIVE;
    write_live(fd, FB_LEAKREPORT_SNAPSHOT, 1);
    leave(&g);
    return 0;
}

/* The snapshot signal only raises this flag (a handler may neither lock
 * nor allocate); the next allocation, which with tracking on always takes
 * the slow path, writes the snapshot. */
_Atomic int fb_leak_snapshot_pending;

static void snapshot_signal(int sig)
{
    (void)sig;
    atomic_store(&fb_leak_snapshot_pending, 1);
}

void fb_leak_snapshot_pending_run(void)
{
    if (atomic_exchange(&fb_leak_snapshot_pending, 0))
        fb_leak_snapshot(-1);
}

void fb_leak_install_snapshot_signal(void)
{
    int sig = fb_opt.snapshot_signal == FB_SNAP_USR2   ? SIGUSR2
              : fb_opt.snapshot_signal == FB_SNAP_USR1 ? SIGUSR1
                                                       : 0;
    struct sigaction sa, old;
    if (!sig || sigaction(sig, NULL, &old) != 0 || old.sa_handler != SIG_DFL)
        return;                      /* the program's own handler wins */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = snapshot_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/*
 * Scoped leak checks (fbmalloc_scope_begin/end): while a scope is open on
 * a thread, each block that thread allocates is noted; at the end, the
 * noted blocks still live are reported, grouped by call site.  Scopes
 * nest.  The list lives in mmap'd memory of the thread's own.
 */
#define FB_SCOPE_DEPTH 32

struct scope_state {
    uintptr_t *v;
    size_t n, cap;
    unsigned depth;
    size_t marks[FB_SCOPE_DEPTH];
};

static __thread struct scope_state *fb_scope __attribute__((tls_model("initial-exec")));

/* Set by the first fb_leak_scope_begin of any thread, before that thread
 * allocates in its scope; a thread with no scope open notes nothing. */
_Atomic int fb_leak_scopes_used;

void fb_leak_scope_note_slow(const void *p)
{
    struct scope_state *s = fb_scope;
    if (fb_likely(!s || !s->depth))
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        void *v = s->v ? mremap(s->v, s->cap * sizeof *s->v, cap * sizeof *s->v, MREMAP_MAYMOVE)
                       : mmap(NULL, cap * sizeof *s->v, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (v == MAP_FAILED)
            return;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (uintptr_t)p;
}

int fb_leak_scope_begin(void)
{
    if (!fb_track_on)
        return -1;
    struct scope_state *s = fb_scope;
    if (!s) {
        s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (s == MAP_FAILED)
            return -1;
        fb_scope = s;
    }
    if (s->depth == FB_SCOPE_DEPTH)
        return -1;
    atomic_store_explicit(&fb_leak_scopes_used, 1, memory_order_relaxed);
    s->marks[s->depth++] = s->n;
    return (int)s->depth;
}

static int cmp_uintptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

long fb_leak_scope_end(void)
{
    struct scope_state *s = fb_scope;
    if (!fb_track_on || !s || !s->depth)
        return -1;
    size_t from = s->marks[--s->depth];
    struct guard g;
    enter(&g);
    /* One entry per address (a block freed and another allocated at the
     * same place inside the scope was noted twice). */
    uintptr_t *v = s->v + from;
    size_t n = s->n - from;
    qsort(v, n, sizeof *v, cmp_uintptr);
    fb_leakscan_blocks.n = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && v[i] == v[i - 1])
            continue;
        void *p = (void *)v[i];
        size_t usable, request = 0;
        uint32_t site;
        if (fb_epoch_owns(p)) {
            usable = fb_epoch_usable(p);
            if (!usable)
                continue;
            site = fb_track_buffer_site(p, usable, &request);
        } else if (fb_track_big_lookup(v[i], &request, &site)) {
            usable = request;
        } else {
            continue;
        }
        /* ld.so's bookkeeping (a thread's DTV) is not the scope's. */
        if (fb_leakscan_from_dynamic_linker(site))
            continue;
        if (fb_canary_on) {
            size_t inner = fb_canary_request(v[i]);
            if (inner)
                request = inner;
        }
        struct fb_leakscan_block *b = fb_leakscan_vec_push(&fb_leakscan_blocks);
        if (b)
            *b = (struct fb_leakscan_block){v[i], usable, request, site, FB_LEAKSCAN_LIVE};
    }
    s->n = from;
    long live = write_live(-1, FB_LEAKREPORT_SCOPE, 0);
    leave(&g);
    return live;
}
