/*
 * Statistics: counting (only with FBMALLOC_STATS) and the exit report.
 */
#include "stats.h"

#include <string.h>
#include <unistd.h>

#include "epoch.h"
#include "fb.h"
#include "fmt.h"
#include "options.h"
#include "platform.h"
#include "route.h"

int fb_stats_on;
struct fb_stats_global fb_stats_g;
/* Threads without a slot count here, atomically. */
static struct fb_stats_block fb_stats_shared;


static unsigned bucket(size_t n)
{
    unsigned b = n ? 64u - (unsigned)__builtin_clzll(n) : 0;
    return b < FBMALLOC_HIST_BUCKETS ? b : FBMALLOC_HIST_BUCKETS - 1;
}

static inline void add(struct fb_stats_block *b, uint64_t *field, uint64_t v)
{
    if (b)
        *field += v;
    else
        __atomic_fetch_add(field, v, __ATOMIC_RELAXED);
}

#define FIELD(b, f) ((b) ? &(b)->f : &fb_stats_shared.f)

static void live_flush(int64_t d)
{
    int64_t now = atomic_fetch_add_explicit(&fb_stats_g.live_bytes, d,
                                            memory_order_relaxed) + d;
    uint64_t peak = atomic_load_explicit(&fb_stats_g.peak_live_bytes,
                                         memory_order_relaxed);
    while (now > 0 && (uint64_t)now > peak &&
           !atomic_compare_exchange_weak_explicit(&fb_stats_g.peak_live_bytes, &peak,
                                                  (uint64_t)now, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

#define FB_LIVE_FLUSH (64 << 10)

static void live_add(struct fb_stats_block *b, int64_t d)
{
    if (!b) {
        live_flush(d);
        return;
    }
    b->live_pending += d;
    if (b->live_pending > FB_LIVE_FLUSH || b->live_pending < -FB_LIVE_FLUSH) {
        live_flush(b->live_pending);
        b->live_pending = 0;
    }
}

void fb_stats_malloc(struct fb_stats_block *b, size_t request, size_t usable,
                     enum fb_stats_kind kind)
{
    if (kind == FB_ST_FAST) {
        add(b, FIELD(b, fast_mallocs), 1);
        add(b, FIELD(b, fast_bytes), request);
    } else {
        add(b, FIELD(b, backend_mallocs), 1);
        add(b, FIELD(b, backend_bytes), request);
    }
    add(b, FIELD(b, hist[bucket(request)]), 1);
    live_add(b, (int64_t)usable);
}

void fb_stats_free(struct fb_stats_block *b, size_t usable,
                   enum fb_stats_kind kind)
{
    switch (kind) {
    case FB_ST_FAST:
        add(b, FIELD(b, fast_frees), 1);
        break;
    case FB_ST_REMOTE:
        add(b, FIELD(b, fast_frees), 1);
        add(b, FIELD(b, remote_frees), 1);
        break;
    case FB_ST_BACKEND:
        add(b, FIELD(b, backend_frees), 1);
        break;
    }
    live_add(b, -(int64_t)usable);
}

void fb_stats_resize(struct fb_stats_block *b, size_t old_usable,
                     size_t new_usable)
{
    live_add(b, (int64_t)new_usable - (int64_t)old_usable);
}

void fb_stats_collect(struct fbmalloc_stats *st)
{
    struct fb_stats_block sum;
    memset(st, 0, sizeof *st);
    memset(&sum, 0, sizeof sum);
    fb_epoch_sum_stats(&sum);
    const uint64_t *src = (const uint64_t *)&fb_stats_shared;
    uint64_t *dst = (uint64_t *)&sum;
    for (size_t i = 0; i < sizeof sum / sizeof(uint64_t); i++)
        dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);

    st->fast_mallocs = sum.fast_mallocs;
    st->fast_bytes = sum.fast_bytes;
    st->fast_frees = sum.fast_frees;
    st->backend_mallocs = sum.backend_mallocs;
    st->backend_bytes = sum.backend_bytes;
    st->backend_frees = sum.backend_frees;
    st->remote_frees = sum.remote_frees;
    memcpy(st->size_hist, sum.hist, sizeof st->size_hist);
    st->epochs_reset = sum.epochs_reset;
    st->epochs_holes = sum.epochs_holes;
    st->buffer_full = sum.buffer_full;
    st->routed_long = sum.routed_long;
    struct fb_route_counts rc;
    fb_route_counts(&rc);
    st->sites_long = rc.sites_long;
    st->sites_learned = rc.learned;
    st->sites_forgotten = rc.forgotten;
    st->epochs_judged = rc.epochs_judged;
    st->mispredicted = rc.mispredicted;
    st->threads = atomic_load(&fb_stats_g.threads);
    st->buffers = fb_epoch_slots_used();
    st->buffer_bytes = fb_epoch_warm_bytes();
    st->bad_frees = atomic_load(&fb_stats_g.bad_frees);
    st->injected_failures = atomic_load(&fb_stats_g.injected_failures);
    /* sum includes every slot's pending live bytes */
    int64_t live = atomic_load(&fb_stats_g.live_bytes) + sum.live_pending;
    st->live_bytes = live > 0 ? (uint64_t)live : 0;
    /* The global peak only sees flushed changes; the live figure also
     * holds every thread's pending part, so it can be the higher one.  It
     * is a moment of the run too: the peak is at least that. */
    uint64_t peak = atomic_load(&fb_stats_g.peak_live_bytes);
    while (st->live_bytes > peak &&
           !atomic_compare_exchange_weak(&fb_stats_g.peak_live_bytes, &peak,
                                         st->live_bytes))
        ;
    st->peak_live_bytes = peak > st->live_bytes ? peak : st->live_bytes;
    st->epochs_pinned = fb_epoch_count_pinned();
    st->counting = fb_stats_on;
}

static void pct(struct fb_buf *b, uint64_t part, uint64_t whole)
{
    if (!whole) {
        fb_fmt_puts(b, "  -  ");
        return;
    }
    uint64_t tenths = (part * 1000 + whole / 2) / whole;
    fb_fmt_append(b, "%3lu.%lu%%", (unsigned long)(tenths / 10),
                  (unsigned long)(tenths % 10));
}

static void write_text(struct fb_buf *b, const struct fbmalloc_stats *st)
{
    uint64_t calls = st->fast_mallocs + st->backend_mallocs;
    fb_fmt_append(b, "fbmalloc %s statistics (pid %d)\n", FB_VERSION, (int)getpid());
    if (!st->counting)
        fb_fmt_puts(b, "  (per-call counters are off: set FBMALLOC_STATS)\n");
    fb_fmt_append(b, "  allocations   %'14lu  ", (unsigned long)calls);
    fb_fmt_puts(b, "\n");
    fb_fmt_append(b, "    buffers     %'14lu  ", (unsigned long)st->fast_mallocs);
    pct(b, st->fast_mallocs, calls);
    fb_fmt_append(b, "  %'lu bytes\n", (unsigned long)st->fast_bytes);
    fb_fmt_append(b, "    jemalloc    %'14lu  ", (unsigned long)st->backend_mallocs);
    pct(b, st->backend_mallocs, calls);
    fb_fmt_append(b, "  %'lu bytes\n", (unsigned long)st->backend_bytes);
    fb_fmt_append(b, "  frees         %'14lu\n",
                  (unsigned long)(st->fast_frees + st->backend_frees));
    fb_fmt_append(b, "    buffers     %'14lu  (cross-thread %'lu)\n",
                  (unsigned long)st->fast_frees, (unsigned long)st->remote_frees);
    fb_fmt_append(b, "    jemalloc    %'14lu\n", (unsigned long)st->backend_frees);
    fb_fmt_append(b, "  epochs reset  %'14lu  (reused around survivors %'lu)\n",
                  (unsigned long)st->epochs_reset, (unsigned long)st->epochs_holes);
    fb_fmt_append(b, "  epochs pinned %'14lu  (holding live objects now)\n",
                  (unsigned long)st->epochs_pinned);
    fb_fmt_append(b, "  buffer full   %'14lu  (small requests sent to jemalloc)\n",
                  (unsigned long)st->buffer_full);
    if (fb_route_on) {
        struct fb_route_counts rc;
        fb_route_counts(&rc);
        fb_fmt_append(b, "  by lifetime   %'14lu  (small requests of %lu long-lived sites "
                         "and %lu wrappers' callers sent to jemalloc; %lu wrappers routed "
                         "by their callers; learned %lu, revised %lu; %'lu epochs judged, "
                         "%'lu objects predicted short pinned one)\n",
                      (unsigned long)st->routed_long, (unsigned long)st->sites_long,
                      (unsigned long)rc.ctx_long, (unsigned long)rc.wrappers,
                      (unsigned long)st->sites_learned, (unsigned long)st->sites_forgotten,
                      (unsigned long)st->epochs_judged, (unsigned long)st->mispredicted);
    }
    fb_fmt_append(b, "  threads       %'14lu  (that owned a buffer; %'lu buffers committed, "
                     "%'lu KiB of them used)\n",
                  (unsigned long)st->threads, (unsigned long)st->buffers,
                  (unsigned long)(st->buffer_bytes >> 10));
    fb_fmt_append(b, "  bad frees     %'14lu\n", (unsigned long)st->bad_frees);
    if (st->injected_failures)
        fb_fmt_append(b, "  injected failures %'10lu  (FBMALLOC_FAIL_*)\n",
                      (unsigned long)st->injected_failures);
    fb_fmt_append(b, "  live bytes    %'14lu  (peak %'lu)\n",
                  (unsigned long)st->live_bytes, (unsigned long)st->peak_live_bytes);

    uint64_t max = 0;
    int last = -1;
    for (int i = 0; i < FBMALLOC_HIST_BUCKETS; i++) {
        if (st->size_hist[i] > max)
            max = st->size_hist[i];
        if (st->size_hist[i])
            last = i;
    }
    if (last < 0)
        return;
    fb_fmt_puts(b, "  request sizes\n");
    for (int i = 0; i <= last; i++) {
        uint64_t lo = i ? (uint64_t)1 << (i - 1) : 0;
        uint64_t hi = i ? ((uint64_t)1 << i) - 1 : 0;
        fb_fmt_append(b, "    %'12lu - %'12lu", (unsigned long)lo, (unsigned long)hi);
        fb_fmt_append(b, " %'14lu ", (unsigned long)st->size_hist[i]);
        int bar = max ? (int)((st->size_hist[i] * 40 + max - 1) / max) : 0;
        for (int k = 0; k < bar; k++)
            fb_fmt_puts(b, "#");
        fb_fmt_puts(b, "\n");
    }
}

static void write_json(struct fb_buf *b, const struct fbmalloc_stats *st)
{
    fb_fmt_append(b, "{\"fbmalloc\":\"%s\",\"pid\":%d", FB_VERSION, (int)getpid());
#define J(f) fb_fmt_append(b, ",\"" #f "\":%lu", (unsigned long)st->f)
    J(fast_mallocs); J(fast_bytes); J(fast_frees);
    J(backend_mallocs); J(backend_bytes); J(backend_frees);
    J(remote_frees); J(epochs_reset); J(epochs_holes); J(epochs_pinned); J(buffer_full);
    J(threads); J(buffers); J(buffer_bytes); J(bad_frees); J(injected_failures); J(live_bytes); J(peak_live_bytes);
    J(routed_long); J(sites_long); J(sites_learned); J(sites_forgotten); J(epochs_judged);
    J(mispredicted);
#undef J
    struct fb_route_counts rc;
    fb_route_counts(&rc);
    fb_fmt_append(b, ",\"sites_wrapper\":%lu,\"callers_long\":%lu",
                  (unsigned long)rc.wrappers, (unsigned long)rc.ctx_long);
    fb_fmt_append(b, ",\"counting\":%s,\"size_hist\":[", st->counting ? "true" : "false");
    for (int i = 0; i < FBMALLOC_HIST_BUCKETS; i++)
        fb_fmt_append(b, "%s%lu", i ? "," : "", (unsigned long)st->size_hist[i]);
    fb_fmt_puts(b, "]}\n");
}

int fb_stats_write(int fd, int json)
{
    struct fbmalloc_stats st;
    char mem[8192];
    struct fb_buf b;
    fb_stats_collect(&st);
    fb_fmt_buf_init(&b, mem, sizeof mem, fd);
    if (json)
        write_json(&b, &st);
    else
        write_text(&b, &st);
    return fb_fmt_flush(&b);
}

void fb_stats_at_exit(void)
{
    if (fb_opt.stats == FB_STATS_OFF)
        return;
    int fd = fb_plat_output_fd();
    fb_stats_write(fd, fb_opt.stats == FB_STATS_JSON);
    fb_plat_output_done();
}
