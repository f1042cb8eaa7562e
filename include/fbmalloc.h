/*
 * fbmalloc public API.
 *
 * The library is normally loaded with LD_PRELOAD into an unmodified
 * program; these functions are for programs that want to ask it questions.
 * A program that must also run without fbmalloc can look them up with
 * dlsym(RTLD_DEFAULT, "fbmalloc_stats_get") instead of linking to it.
 */
#ifndef FBMALLOC_H
#define FBMALLOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Request sizes are counted in power-of-two buckets: bucket 0 holds size 0,
 * bucket i (i >= 1) holds sizes in [2^(i-1), 2^i - 1] ... i.e. the number of
 * significant bits of the size. */
#define FBMALLOC_HIST_BUCKETS 48

struct fbmalloc_stats {
    /* Allocations served from the per-thread buffers (the fast path). */
    uint64_t fast_mallocs;
    uint64_t fast_bytes;          /* requested bytes */
    uint64_t fast_frees;
    /* Allocations served by jemalloc (large, aligned, or buffer full). */
    uint64_t backend_mallocs;
    uint64_t backend_bytes;
    uint64_t backend_frees;
    /* Frees of buffer objects by a thread other than the buffer's owner. */
    uint64_t remote_frees;
    /* Epochs recycled as a whole after their last object was freed. */
    uint64_t epochs_reset;
    /* Epochs that hold live objects right now (at exit: "pinned"). */
    uint64_t epochs_pinned;
    /* Small requests sent to jemalloc because the buffer had no free epoch. */
    uint64_t buffer_full;
    /* Threads that owned a buffer, over the process lifetime. */
    uint64_t threads;
    /* Double or invalid frees detected. */
    uint64_t bad_frees;
    /* Allocations made to fail on purpose (FBMALLOC_FAIL_*). */
    uint64_t injected_failures;
    uint64_t live_bytes;          /* usable bytes currently allocated */
    /* Highest live_bytes seen; threads add to it every 64 KiB of change,
     * so it may be low by up to 64 KiB per thread. */
    uint64_t peak_live_bytes;
    uint64_t size_hist[FBMALLOC_HIST_BUCKETS];
    /* Non-zero when per-call counters are maintained (FBMALLOC_STATS set).
     * Without it, only the epoch, thread and bad-free counters are filled:
     * counting every call would cost the fast path. */
    int counting;
    /* Lifetime routing (FBMALLOC_LIFETIME): small requests sent to
     * jemalloc because their call site (or, for an allocation wrapper, its
     * caller) was learned long-lived; sites long
     * now; verdicts learned and revised back to short; sampled epochs
     * judged; objects of sites predicted short that pinned a judged
     * epoch.  Appended last: the layout above is unchanged. */
    uint64_t routed_long;
    uint64_t sites_long;
    uint64_t sites_learned;
    uint64_t sites_forgotten;
    uint64_t epochs_judged;
    uint64_t mispredicted;
    /* Epochs reused around a few survivors (their free runs, "holes")
     * instead of waiting for their last free.  Appended last. */
    uint64_t epochs_holes;
    /* Buffers committed so far (one per thread that allocated, and those
     * left by threads that moved away from a full one).  Appended last. */
    uint64_t buffers;
    /* Bytes of those buffers ever used: a thread cycles through as many
     * of its buffer's epochs as its objects' lifetimes need, and the rest
     * is never touched (no memory).  Appended last. */
    uint64_t buffer_bytes;
};

/* Library version, e.g. "0.1.0". */
const char *fbmalloc_version(void);

/* Fills *st with a snapshot. Returns 0, or -1 if st is NULL. */
int fbmalloc_stats_get(struct fbmalloc_stats *st);

/* Writes the human-readable statistics to fd (as FBMALLOC_STATS=1 does at
 * exit). Returns 0 on success, -1 on a write error. */
int fbmalloc_stats_print(int fd);

/* With leak tracking on (FBMALLOC_LEAKS), checks for leaks now and writes
 * the report to FBMALLOC_OUTPUT, as at exit.  Returns the number of leaked
 * blocks (direct and indirect, not suppressed), or -1 if tracking is off. */
long fbmalloc_leak_check(void);

/* With tracking on, writes the live heap grouped by call site to fd (as
 * the snapshot signal, FBMALLOC_SNAPSHOT_SIGNAL, does to FBMALLOC_OUTPUT),
 * in FBMALLOC_REPORT_FORMAT.  Returns 0, or -1 if tracking is off. */
int fbmalloc_snapshot(int fd);

/* Scoped leak checks (Zig's testing.allocator idea), with tracking on:
 * fbmalloc_scope_end() reports, to FBMALLOC_OUTPUT, the blocks this
 * thread allocated since the matching fbmalloc_scope_begin() that are
 * still live, grouped by call site, and returns their number (0: the
 * scope cleaned up after itself).  Scopes nest (up to 32).  Both return
 * -1 when tracking is off (FBMALLOC_LEAKS unset). */
int fbmalloc_scope_begin(void);
long fbmalloc_scope_end(void);

#ifdef __cplusplus
}
#endif

#endif /* FBMALLOC_H */
