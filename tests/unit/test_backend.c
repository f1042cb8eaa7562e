/* src/backend.c: the embedded jemalloc's stand-ins for libm (exp, log
 * and round against libm's own, which this test, not the library,
 * links), and the map of jemalloc's memory that fb_je_foreign reads,
 * driven through the renamed system calls jemalloc makes. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

#include "backend.h"
#include "check.h"

#define MiB ((uintptr_t)1 << 20)

void *fb_jemalloc_sys_mmap(void *a, size_t n, int prot, int flags, int fd, off_t off);
int fb_jemalloc_sys_munmap(void *a, size_t n);
int fb_jemalloc_sys_madvise(void *a, size_t n, int advice);

static int foreign(uintptr_t a)
{
    return fb_je_foreign((const void *)a);
}

/* Address space nobody uses, 2 MiB-aligned, for mappings at chosen
 * offsets (MAP_FIXED inside it). */
static uintptr_t hole(size_t len)
{
    char *p = mmap(NULL, len + 2 * MiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uintptr_t a = ((uintptr_t)p + 2 * MiB - 1) & ~(2 * MiB - 1);
    munmap(p, len + 2 * MiB);
    return a;
}

static void *je_map(uintptr_t at, size_t len)
{
    return fb_jemalloc_sys_mmap((void *)at, len, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

static void test_map(void)
{
    uintptr_t h = hole(16 * MiB);
    /* Only what jemalloc mapped is jemalloc's. */
    CHECK(foreign(h + 3 * MiB));
    /* A range from the middle of one granule (64 KiB) to the end of
     * another, whole granules between: [h + 1 MiB + 12 KiB, h + 7 MiB). */
    uintptr_t lo = h + MiB + 12 * 1024, hi = h + 7 * MiB;
    CHECK(je_map(lo, hi - lo) == (void *)lo);
    CHECK(!foreign(lo));                          /* its first block */
    CHECK(!foreign(lo + 4096));
    CHECK(!foreign(h + 3 * MiB));                 /* a whole granule */
    CHECK(!foreign(hi - 16));                     /* its last 16 bytes */
    CHECK(foreign(lo - 16));                      /* same granule, outside */
    CHECK(foreign(h));
    CHECK(foreign(hi));
    CHECK(foreign(hi + MiB - 16));
    CHECK(foreign(lo + 8));                       /* misaligned */
    CHECK(foreign(((uintptr_t)1 << 47) + 4096));  /* no user address */
    /* A second range touching the first merges with it. */
    CHECK(je_map(hi, MiB) == (void *)hi);
    CHECK(!foreign(hi) && !foreign(hi + MiB - 16) && foreign(hi + MiB));
    /* Unmapping a piece out of the middle splits it; the rest stays. */
    CHECK(fb_jemalloc_sys_munmap((void *)(h + 3 * MiB), 2 * MiB + 4096) == 0);
    CHECK(foreign(h + 3 * MiB) && foreign(h + 5 * MiB));
    CHECK(!foreign(h + 3 * MiB - 16) && !foreign(h + 5 * MiB + 4096));
    CHECK(!foreign(lo) && !foreign(hi + 4096));
    CHECK(fb_jemalloc_sys_munmap((void *)lo, h + 8 * MiB - lo) == 0);
    CHECK(foreign(lo) && foreign(h + 5 * MiB + 4096) && foreign(hi));
}

/* Start maps: which pointers in jemalloc's memory a free may take.  A
 * block handed out (fb_je_fresh) is taken once; a second free is told
 * apart from a pointer that never started a block; pages jemalloc purges
 * or unmaps forget their starts. */
static void test_starts(void)
{
    uintptr_t h = hole(4 * MiB);
    CHECK(je_map(h, 4 * MiB) == (void *)h);
    char *p = (char *)h + MiB + 2048, *q = p + 48, *edge = (char *)h + 16;
    CHECK(fb_je_fresh(p) == p && fb_je_fresh(q) == q);
    CHECK(fb_je_live(p) && fb_je_live(q));
    CHECK(!fb_je_live(p + 16) && !fb_je_live(p + 4096));
    CHECK_EQ_U(fb_je_take(p + 16), 1);            /* interior */
    CHECK(!fb_je_was_freed(p + 16));
    CHECK_EQ_U(fb_je_take(p + 8), 2);             /* misaligned */
    CHECK_EQ_U(fb_je_take(p), 0);
    CHECK(!fb_je_live(p) && fb_je_was_freed(p));
    CHECK_EQ_U(fb_je_take(p), 1);                 /* double */
    CHECK(fb_je_live(q));                         /* its neighbour stays */
    CHECK_EQ_U(fb_je_take(q), 0);
    /* Handed out again: live again (the secret cleared). */
    CHECK(fb_je_fresh(p) == p && fb_je_live(p));
    CHECK_EQ_U(fb_je_take(p), 0);
    /* The inline test of a granule wholly jemalloc's. */
    CHECK(fb_je_in_full(p));
    CHECK(!fb_je_in_full(p + 8));
    CHECK(!fb_je_in_full((char *)h + 8 * MiB));
    /* Purged pages forget their starts, the page beside keeps its own. */
    char *r = (char *)h + 2 * MiB, *s = r + 4096;
    fb_je_fresh(r);
    fb_je_fresh(s);
    *(uint64_t *)r = 1;                           /* no secret: only the bit */
    CHECK(fb_jemalloc_sys_madvise(r, 4096, MADV_DONTNEED) == 0);
    CHECK(!fb_je_live(r) && fb_je_live(s));
    CHECK_EQ_U(fb_je_take(r), 1);
    /* An edge granule's blocks are checked the same way. */
    CHECK(fb_jemalloc_sys_munmap((void *)h, 32 * 1024) == 0);
    edge = (char *)h + 32 * 1024;
    fb_je_fresh(edge);
    CHECK(!fb_je_in_full(edge));
    CHECK_EQ_U(fb_je_take(edge + 16), 1);
    CHECK_EQ_U(fb_je_take(edge), 0);
    CHECK_EQ_U(fb_je_take(edge), 1);
    CHECK_EQ_U(fb_je_take((char *)h + 16), 2);   /* unmapped part */
    /* Unmapped and mapped again: no start survives. */
    CHECK(fb_jemalloc_sys_munmap((void *)(h + 32 * 1024), 4 * MiB - 32 * 1024) == 0);
    CHECK(je_map(h, 4 * MiB) == (void *)h);
    CHECK_EQ_U(fb_je_take(s), 1);
    CHECK(!fb_je_live(q));
    fb_jemalloc_sys_munmap((void *)h, 4 * MiB);
}

/* The lock-free reader against a writer changing the list: a range that
 * stays mapped is never called foreign, whatever changes beside it.  An
 * address outside is called foreign but while the reader gives up on a
 * writer that does not finish (preempted here, on a loaded machine: the
 * reader then lets the pointer by to jemalloc, as without the map). */
static _Atomic int stop;
static uintptr_t churn_at;

static void *churn(void *arg)
{
    (void)arg;
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        uintptr_t a = churn_at + (i % 7) * 8192;
        je_map(a, 4096 * (1 + i % 3));
        fb_jemalloc_sys_munmap((void *)a, 4096 * (1 + i % 3));
    }
    return NULL;
}

static void test_readers(void)
{
    uintptr_t h = hole(8 * MiB);
    /* The stable range ends 20 KiB into a 64 KiB granule that the churn
     * shares. */
    uintptr_t lo = h + 512 * 1024, hi = h + 2 * MiB + 20 * 1024;
    CHECK(je_map(lo, hi - lo) == (void *)lo);
    churn_at = hi + 8 * 1024;
    pthread_t t;
    pthread_create(&t, NULL, churn, NULL);
    long wrong = 0, missed = 0, n = 3000000;
    for (long i = 0; i < n; i++) {
        wrong += foreign(hi - 16 - (uintptr_t)(i % 4) * 4096);   /* 2 granules */
        missed += !foreign(hi + 16);
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    CHECK_EQ_U(wrong, 0);
    CHECK(missed * 1000 < n);
    fb_jemalloc_sys_munmap((void *)lo, hi - lo);
}

double fb_jemalloc_sys_exp(double x);
double fb_jemalloc_sys_log(double x);
double fb_jemalloc_sys_round(double x);

static int close_to(double got, double want)
{
    if (isnan(want))
        return isnan(got);
    if (isinf(want) || want == 0)
        return got == want;
    return fabs(got - want) <= 4e-15 * fabs(want);
}

int main(void)
{
    int bad_exp = 0, bad_log = 0, bad_round = 0;
    uint64_t s = 12345;
    for (int i = 0; i < 200000; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(s >> 11) / 9007199254740992.0;   /* [0, 1) */
        double xe = (u - 0.5) * 1400;                        /* exp's range */
        double xl = ldexp(u + 0.5, (int)(s % 2000) - 1000);  /* log's */
        double xr = (u - 0.5) * ldexp(1, (int)(s % 60));     /* round's */
        bad_exp += !close_to(fb_jemalloc_sys_exp(xe), exp(xe));
        bad_log += !close_to(fb_jemalloc_sys_log(xl), log(xl));
        bad_round += fb_jemalloc_sys_round(xr) != round(xr);
    }
    CHECK_EQ_U(bad_exp, 0);
    CHECK_EQ_U(bad_log, 0);
    CHECK_EQ_U(bad_round, 0);
    /* What jemalloc computes: 1 - exp(-size / 2^19), and log(u) of a
     * uniform sample in (0, 1]. */
    CHECK(close_to(fb_jemalloc_sys_exp(-16.0 / 524288), exp(-16.0 / 524288)));
    CHECK(close_to(fb_jemalloc_sys_log(1e-300), log(1e-300)));
    CHECK(close_to(fb_jemalloc_sys_log(5e-324), log(5e-324)));   /* subnormal */
    CHECK(fb_jemalloc_sys_log(1.0) == 0.0);
    CHECK(isinf(fb_jemalloc_sys_log(0.0)) && fb_jemalloc_sys_log(0.0) < 0);
    CHECK(isnan(fb_jemalloc_sys_log(-1.0)));
    CHECK(isnan(fb_jemalloc_sys_exp(NAN)));
    CHECK(isinf(fb_jemalloc_sys_exp(1000)) && fb_jemalloc_sys_exp(-1000) == 0);
    CHECK(fb_jemalloc_sys_round(2.5) == 3 && fb_jemalloc_sys_round(-2.5) == -3);
    CHECK(fb_jemalloc_sys_round(0.49999999999999994) == 0);
    CHECK(signbit(fb_jemalloc_sys_round(-0.3)));
    CHECK(fb_jemalloc_sys_round(0x1p60) == 0x1p60);
    test_map();
    test_starts();
    test_readers();
    return check_done("backend");
}
