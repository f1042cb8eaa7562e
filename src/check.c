/*
 * FBMALLOC_CHECK: bad frees with stacks, and the quarantine; see check.h.
 */
#define _GNU_SOURCE
#include "check.h"

#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "epoch.h"
#include "fmt.h"
#include "options.h"
#include "report.h"
#include "stats.h"
#include "symbolize.h"
#include "track.h"

int fb_check_on;

/* The quarantine: the most recent frees, by count and by bytes.  Holding
 * bytes back is the price of catching a double free that comes late. */
#define FB_QUARANTINE 16384
#define FB_QUARANTINE_BYTES (64u << 20)

struct qent {
    uintptr_t addr;
    uint64_t size;
    uint32_t alloc_site, free_site;
    uint8_t buffer;               /* 1: buffer block, 0: jemalloc block */
};

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
FB_BIG_BSS static struct qent quarantine[FB_QUARANTINE];
static unsigned q_head, q_count;
static uint64_t q_bytes;

/* The leak check's thread registry, handed down by init.c (it sits
 * above us): is an address on a live thread's stack? */
static int (*stack_test)(uintptr_t a);

int fb_check_init(int (*on_a_stack)(uintptr_t a))
{
    stack_test = on_a_stack;
    fb_check_on = fb_opt.check != 0 && fb_track_on;
    return fb_check_on;
}

/* fork: the quarantine lock is held across it, so the child inherits a
 * consistent ring (a thread freeing at that moment could otherwise leave
 * it locked forever in the child); the child, alone, starts with a fresh
 * lock.  q_lock is a leaf (nothing else is taken under it), so taking it
 * after the other modules' locks cannot invert an order. */
void fb_check_fork_prepare(void)
{
    pthread_mutex_lock(&q_lock);
}

void fb_check_fork_parent(void)
{
    pthread_mutex_unlock(&q_lock);
}

void fb_check_fork_child(void)
{
    pthread_mutex_init(&q_lock, NULL);
}

/* Really releases a block leaving the quarantine. */
static void release(const struct qent *q)
{
    if (q->buffer)
        fb_epoch_release_marked((void *)q->addr);
    else
        fb_je_free((void *)q->addr);
}

static void quarantine_push(uintptr_t addr, uint64_t size, uint32_t alloc_site,
                            uint32_t free_site, int buffer)
{
    struct qent out[8];
    unsigned nout = 0;
    pthread_mutex_lock(&q_lock);
    /* Make room: the slot we reuse, and the oldest while over budget. */
    while (q_count && (q_count == FB_QUARANTINE ||
                       q_bytes + size > FB_QUARANTINE_BYTES) && nout < 8) {
        unsigned oldest = (q_head + FB_QUARANTINE - q_count) % FB_QUARANTINE;
        out[nout++] = quarantine[oldest];
        q_bytes -= quarantine[oldest].size;
        q_count--;
    }
    quarantine[q_head] = (struct qent){addr, size, alloc_site, free_site,
                                       (uint8_t)buffer};
    q_head = (q_head + 1) % FB_QUARANTINE;
    q_count++;
    q_bytes += size;
    pthread_mutex_unlock(&q_lock);
    /* Outside the lock: jemalloc's free may take its own locks. */
    for (unsigned i = 0; i < nout; i++)
        release(&out[i]);
}

/* The quarantined free of addr, if it is still there. */
static int quarantine_find(uintptr_t addr, struct qent *found)
{
    int hit = 0;
    pthread_mutex_lock(&q_lock);
    for (unsigned i = 0; i < q_count && !hit; i++) {
        unsigned k = (q_head + FB_QUARANTINE - 1 - i) % FB_QUARANTINE;
        if (quarantine[k].addr == addr) {
            *found = quarantine[k];
            hit = 1;
        }
    }
    pthread_mutex_unlock(&q_lock);
    return hit;
}

/* ---- reports ---------------------------------------------------------- */

struct bad {
    const void *ptr;
    const char *op;
    const char *what;             /* "double free", "invalid pointer", ... */
    uint32_t now_site;            /* the bad call */
    uint32_t free_site;           /* first free, if known */
    uint32_t alloc_site;          /* the block's allocation, if known */
    const void *block;            /* the block (for interior pointers) */
    uint64_t size;
};

static FB_COLD void report(const struct bad *b)
{
    struct fb_report_ctx r;
    fb_report_begin(&r);
    fb_fmt_append(&r.out, "fbmalloc: %s: %p passed to %s()", b->what, b->ptr, b->op);
    if (b->block && b->block != b->ptr)
        fb_fmt_append(&r.out, " is %lu bytes inside a %'lu-byte block at %p",
                      (unsigned long)((uintptr_t)b->ptr - (uintptr_t)b->block),
                      (unsigned long)b->size, b->block);
    else if (b->size)
        fb_fmt_append(&r.out, " (a %'lu-byte block)", (unsigned long)b->size);
    fb_fmt_puts(&r.out, "\n");
    char title[32];
    fb_fmt_snprintf(title, sizeof title, "%s called at", b->op);
    fb_report_section(&r, title, b->now_site);
    fb_report_section(&r, "first freed at", b->free_site);
    fb_report_section(&r, "allocated at", b->alloc_site);
    fb_report_end(&r);
}

/* Is p inside a loaded object (a string literal, a global)? */
static int in_object_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uintptr_t p = *(uintptr_t *)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && p >= lo && p < lo + ph->p_memsz)
            return 1;
    }
    return 0;
}

static int in_loaded_object(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    return dl_iterate_phdr(in_object_cb, &a) != 0;
}

/* On a live thread's stack?  The thread registry knows each one's exact
 * bounds.  (A guess from the distance to a local misfired: thread stacks
 * are mapped among jemalloc's own mappings.) */
static int on_a_stack(const void *p)
{
    /* Anything outside jemalloc's memory (backend.h) is no block either,
     * for a thread not registered. */
    return fb_je_foreign(p) || (stack_test && stack_test((uintptr_t)p));
}

/* Classifies a bad pointer not found live, and reports it. */
static void report_bad(const void *ptr, const char *op, uint32_t now_site,
                       int map_says_freed)
{
    struct bad b = {ptr, op, "invalid pointer", now_site, 0, 0, NULL, 0};
    struct qent q;
    size_t usable;
    uint32_t site;
    if (quarantine_find((uintptr_t)ptr, &q)) {
        b.what = strcmp(op, "free") == 0 ? "double free" : "use of a freed block";
        b.free_site = q.free_site;
        b.alloc_site = q.alloc_site;
        b.size = q.size;
    } else if (map_says_freed) {
        /* A buffer block's map says so, or a guarded block's header (then
         * ptr may be a jemalloc block's interior: no buffer lookup). */
        b.what = strcmp(op, "free") == 0 ? "double free" : "use of a freed block";
        size_t request;
        if (fb_epoch_owns(ptr))
            b.alloc_site = fb_track_buffer_site(ptr, 16, &request);
    } else if ((b.block = fb_epoch_block_containing(ptr, &usable))) {
        b.what = "interior pointer";
        b.size = usable;
        size_t request;
        b.alloc_site = fb_track_buffer_site(b.block, usable, &request);
    } else if ((b.block = (const void *)fb_track_big_containing((uintptr_t)ptr, &usable, &site))) {
        b.what = "interior pointer";
        b.size = usable;
        b.alloc_site = site;
    }
    report(&b);
}

void fb_check_report_inner(const void *ptr, const void *block, uint64_t size,
                           const char *op)
{
    struct bad b = {ptr, op, strcmp(op, "free") == 0 ? "double free" : "use of a freed block",
                    fb_track_capture(), 0, 0, NULL, 0};
    struct qent q;
    if (quarantine_find((uintptr_t)block, &q)) {
        b.free_site = q.free_site;
        b.alloc_site = q.alloc_site;
        b.size = size;
    }
    report(&b);
}

void fb_check_report(const void *ptr, int is_double, const char *op)
{
    /* Without checking, or for our own calls (libdw's realloc while a
     * report is written): the one-line report, no stacks. */
    if (!fb_check_on || fb_t.busy) {
        fb_report_bad_free(ptr, is_double ? FB_BAD_DOUBLE : FB_BAD_INVALID, op);
        return;
    }
    report_bad(ptr, op, fb_track_capture(), is_double);
}

void fb_check_free(void *ptr)
{
    uint32_t now = fb_track_capture();
    if (fb_epoch_owns(ptr)) {
        long usable = fb_epoch_mark_freed(ptr);
        if (usable > 0) {
            size_t request;
            uint32_t site = fb_track_buffer_site(ptr, (size_t)usable, &request);
            quarantine_push((uintptr_t)ptr, (uint64_t)usable, site, now, 1);
            /* Freed for the program (and the statistics) now, however
             * long the quarantine keeps its memory. */
            if (fb_stats_on)
                fb_stats_free(fb_t.stats, (size_t)usable, FB_ST_FAST);
            return;
        }
        report_bad(ptr, "free", now, usable == 0);
        return;
    }
    size_t size;
    uint32_t site;
    if (fb_track_big_take((uintptr_t)ptr, &size, &site)) {
        if (fb_stats_on)
            fb_stats_free(fb_t.stats, fb_je_usable(ptr), FB_ST_BACKEND);
        quarantine_push((uintptr_t)ptr, size, site, now, 0);
        return;
    }
    /* Not a tracked block.  What we can prove is reported; anything else
     * may be a block allocated before tracking started: jemalloc's. */
    struct qent q;
    size_t usable;
    if (quarantine_find((uintptr_t)ptr, &q) ||
        fb_track_big_containing((uintptr_t)ptr, &usable, &site) ||
        in_loaded_object(ptr) || on_a_stack(ptr)) {
        report_bad(ptr, "free", now, 0);
        return;
    }
    if (!fb_je_live(ptr)) {          /* freed again after the quarantine */
        report_bad(ptr, "free", now, fb_je_was_freed(ptr));
        return;
    }
    int saved = errno;
    fb_je_free(ptr);
    errno = saved;
}

int fb_check_realloc(void *ptr)
{
    if (fb_track_big_lookup((uintptr_t)ptr, NULL, NULL))
        return 0;
    struct qent q;
    size_t usable;
    uint32_t site;
    if (quarantine_find((uintptr_t)ptr, &q) ||
        fb_track_big_containing((uintptr_t)ptr, &usable, &site) ||
        in_loaded_object(ptr) || on_a_stack(ptr)) {
        report_bad(ptr, "realloc", fb_track_capture(), 0);
        return -1;
    }
    return 0;
}
