/*
 * Shared helpers for the benchmark workloads in tests/bench/.
 *
 * Every workload takes its iteration counts on the command line (so that
 * `scripts/bench --quick` can shrink them), prints one summary line, writes
 * a tag into each object and checks it before freeing, and exits with
 * status 3 if an allocator handed out memory that was overwritten (two live
 * objects overlapping).  A non-zero exit or a signal is recorded by the
 * harness as a failure of that allocator.
 */
#ifndef FB_BENCH_H
#define FB_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Stores through this pointer keep the compiler from proving that an
 * allocated block is never used, so malloc/free pairs cannot be elided even
 * if a future compiler ignores -fno-builtin-malloc. */
static void *volatile bench_sink;

static inline void bench_keep(void *p)
{
    bench_sink = p;
}

/* argv[i] as a non-negative integer (suffixes k, m accepted), or def.
 * Zero iterations is allowed: scripts/bench uses it to measure start-up. */
static inline long bench_arg(int argc, char **argv, int i, long def)
{
    if (i >= argc)
        return def;
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*end == 'k' || *end == 'K')
        v *= 1000;
    else if (*end == 'm' || *end == 'M')
        v *= 1000000;
    if (v < 0 || end == argv[i]) {
        fprintf(stderr, "bad argument %d: '%s' (expected a number >= 0)\n",
                i, argv[i]);
        exit(2);
    }
    return v;
}

/* xorshift64*: deterministic and cheap, one per thread. */
static inline uint64_t bench_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform-ish integer in [lo, hi]. */
static inline size_t bench_range(uint64_t *s, size_t lo, size_t hi)
{
    return lo + (size_t)(bench_rand(s) % (hi - lo + 1));
}

static inline void *bench_malloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL) {
        fprintf(stderr, "malloc(%zu) returned NULL\n", n);
        exit(4);
    }
    return p;
}

/* Tag the first and (from 16 bytes on) the last 8 bytes of an object of
 * size n >= 8; bench_check() verifies them. */
static inline void bench_tag(void *p, size_t n, uint64_t tag)
{
    memcpy(p, &tag, sizeof tag);
    if (n >= 2 * sizeof tag)
        memcpy((char *)p + n - sizeof tag, &tag, sizeof tag);
}

static inline void bench_check(const void *p, size_t n, uint64_t tag,
                               const char *who)
{
    uint64_t a, b;
    memcpy(&a, p, sizeof a);
    if (n >= 2 * sizeof b)
        memcpy(&b, (const char *)p + n - sizeof b, sizeof b);
    else
        b = a;
    if (a != tag || b != tag) {
        fprintf(stderr, "%s: object %p (size %zu) corrupted: "
                "tag %#llx, found %#llx / %#llx\n", who, p, n,
                (unsigned long long)tag, (unsigned long long)a,
                (unsigned long long)b);
        exit(3);
    }
}

#endif
