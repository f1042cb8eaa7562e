/*
 * Semantics of every exported function, run under LD_PRELOAD with
 * FBMALLOC_STATS=json FBMALLOC_OUTPUT=/dev/null FBMALLOC_ON_BAD_FREE=ignore
 * (counters on; a deliberate bad free must not abort).  Expectations are
 * glibc 2.36's documented behaviour.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../unit/check.h"
#include "fbmalloc.h"
#include "pattern.h"

static int (*stats_get)(struct fbmalloc_stats *);

static struct fbmalloc_stats snap(void)
{
    struct fbmalloc_stats st;
    memset(&st, 0, sizeof st);
    stats_get(&st);
    return st;
}

/* Defeat the compiler's knowledge of malloc: sizes come from here. */
static volatile size_t vsize;
static size_t sz(size_t n) { vsize = n; return vsize; }

static int aligned_to(void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* Every entry point a program can reach must resolve to our library. */
static void test_symbols(void)
{
    static const char *const names[] = {
        "malloc", "free", "calloc", "realloc", "reallocarray",
        "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
        "malloc_usable_size", "cfree", "__libc_malloc", "__libc_free",
        "__libc_calloc", "__libc_realloc", "__libc_memalign", "__libc_valloc",
        "__libc_pvalloc", "__posix_memalign", "malloc_trim", "mallopt",
        "mallinfo", "mallinfo2", "malloc_stats", "malloc_info",
        "_Znwm", "_Znam", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZnwmSt11align_val_t",
        "_ZdlPvSt11align_val_t", "_ZnwmRKSt9nothrow_t",
        "fbmalloc_version", "fbmalloc_stats_get", "fbmalloc_stats_print", NULL};
    for (int i = 0; names[i]; i++) {
        void *f = dlsym(RTLD_DEFAULT, names[i]);
        Dl_info info;
        int ok = f && dladdr(f, &info) && info.dli_fname &&
                 strstr(info.dli_fname, "libfbmalloc");
        if (!ok)
            fprintf(stderr, "symbol %s resolves to %s\n", names[i],
                    f && dladdr(f, &info) ? info.dli_fname : "(nothing)");
        CHECK(ok);
    }
}

static void test_malloc(void)
{
    struct fbmalloc_stats before = snap();
    void *ptrs[1000];
    for (int i = 0; i < 1000; i++) {
        ptrs[i] = malloc(sz(1 + i % 256));
        CHECK(ptrs[i] && aligned_to(ptrs[i], 16));
    }
    struct fbmalloc_stats after = snap();
    CHECK(after.fast_mallocs >= before.fast_mallocs + 1000); /* fast path taken */
    for (int i = 0; i < 1000; i++)
        free(ptrs[i]);
    CHECK(snap().fast_frees >= before.fast_frees + 1000);

    /* malloc(0): unique, freeable. */
    void *a = malloc(sz(0)), *b = malloc(sz(0));
    CHECK(a && b && a != b);
    free(a);
    free(b);

    /* 16-byte alignment for every size, small and large. */
    size_t sizes[] = {1, 7, 8, 9, 15, 16, 17, 100, 1023, 1024, 1025, 4096,
                      65536, 1 << 20, 10 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        void *p = malloc(sz(sizes[i]));
        CHECK(p && aligned_to(p, 16));
        memset(p, 0x5a, sizes[i]);
        free(p);
    }

    /* Impossible requests: NULL + ENOMEM. */
    errno = 0;
    CHECK(malloc(sz(SIZE_MAX)) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(malloc(sz((size_t)PTRDIFF_MAX + 1)) == NULL && errno == ENOMEM);

    /* free(NULL) is a no-op; free preserves errno. */
    free(NULL);
    void *s = malloc(sz(32)), *l = malloc(sz(1 << 20));
    errno = 1234;
    free(s);
    CHECK(errno == 1234);
    free(l);
    CHECK(errno == 1234);
}

static void test_calloc(void)
{
    /* Dirty a block, free it, and get memory back through calloc: zero. */
    for (size_t n = 1; n <= 4096; n = n * 3 + 1) {
        unsigned char *d = malloc(sz(n));
        memset(d, 0xff, n);
        free(d);
        unsigned char *c = calloc(1, sz(n));
        int zero = 1;
        for (size_t i = 0; i < n; i++)
            zero &= c[i] == 0;
        CHECK(zero && aligned_to(c, 16));
        free(c);
    }
    unsigned char *big = calloc(sz(3), 1 << 20);
    CHECK(big && big[0] == 0 && big[(3 << 20) - 1] == 0);
    free(big);
    void *z = calloc(sz(0), 10);
    CHECK(z != NULL);
    free(z);
    errno = 0;
    CHECK(calloc(sz(SIZE_MAX / 2), 3) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc(sz((size_t)1 << 33), (size_t)1 << 33) == NULL && errno == ENOMEM);
}


static void test_realloc(void)
{
    /* realloc(NULL, n) is malloc. */
    unsigned char *p = realloc(NULL, sz(40));
    CHECK(p != NULL);
    fill(p, 40, 1);
    /* Grow through every regime: buffer -> buffer -> jemalloc -> bigger. */
    size_t steps[] = {100, 1000, 5000, 1 << 20, 3 << 20};
    size_t have = 40;
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        p = realloc(p, sz(steps[i]));
        CHECK(p && aligned_to(p, 16) && same(p, have, 1));
        fill(p, steps[i], 1);
        have = steps[i];
    }
    /* Shrink back to small. */
    p = realloc(p, sz(24));
    CHECK(p && same(p, 24, 1));

    /* A failed realloc keeps the block and sets ENOMEM. */
    errno = 0;
    CHECK(realloc(p, sz(SIZE_MAX - 4096)) == NULL && errno == ENOMEM);
    CHECK(same(p, 24, 1));
    void *big = malloc(sz(1 << 20));
    errno = 0;
    CHECK(realloc(big, sz(SIZE_MAX / 2)) == NULL && errno == ENOMEM);
    free(big);

    /* realloc(p, 0) frees p and returns NULL (glibc): freeing p again is
     * then a double free, which the ignore mode counts. */
    free(p);
    struct fbmalloc_stats before = snap();
    p = malloc(sz(24));                  /* a buffer block: bad frees detected */
    CHECK(realloc(p, sz(0)) == NULL);
    free(p);
    CHECK(snap().bad_frees == before.bad_frees + 1);

    /* reallocarray: overflow is ENOMEM and leaves the block alone. */
    unsigned char *q = reallocarray(NULL, sz(10), 8);
    CHECK(q != NULL);
    fill(q, 80, 3);
    errno = 0;
    CHECK(reallocarray(q, sz(SIZE_MAX / 4), 8) == NULL && errno == ENOMEM);
    CHECK(same(q, 80, 3));
    q = reallocarray(q, sz(20), 8);
    CHECK(q && same(q, 80, 3));
    free(q);
}

static void test_aligned(void)
{
    void *p = (void *)0x1234;
    size_t ok[] = {8, 16, 32, 64, 256, 4096, 1 << 16, 1 << 21};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        void *r = NULL;
        CHECK(posix_memalign(&r, ok[i], sz(100)) == 0);
        CHECK(r && aligned_to(r, ok[i] < 16 ? 16 : ok[i]));
        memset(r, 1, 100);
        free(r);
    }
    /* Bad alignments: EINVAL, *memptr untouched. */
    size_t bad[] = {0, 1, 3, 4, 12, 24, 48};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        p = (void *)0x1234;
        CHECK(posix_memalign(&p, bad[i], sz(16)) == EINVAL);
        CHECK(p == (void *)0x1234);
    }
    p = (void *)0x1234;
    CHECK(posix_memalign(&p, 64, sz(SIZE_MAX / 2)) == ENOMEM);
    CHECK(p == (void *)0x1234);
    void *z = NULL;
    CHECK(posix_memalign(&z, 32, sz(0)) == 0 && z != NULL);
    free(z);

    void *a = aligned_alloc(64, sz(100));
    CHECK(a && aligned_to(a, 64));
    free(a);
    /* glibc 2.36 rounds an odd alignment up rather than failing. */
    a = aligned_alloc(48, sz(10));
    CHECK(a && aligned_to(a, 64));
    free(a);
    errno = 0;
    CHECK(aligned_alloc(SIZE_MAX / 2 + 2, sz(10)) == NULL && errno == EINVAL);

    a = memalign(128, sz(10));
    CHECK(a && aligned_to(a, 128));
    free(a);
    a = memalign(4, sz(10));
    CHECK(a && aligned_to(a, 16));
    free(a);

    long page = sysconf(_SC_PAGESIZE);
    a = valloc(sz(10));
    CHECK(a && aligned_to(a, (size_t)page));
    free(a);
    a = pvalloc(sz(10));
    CHECK(a && aligned_to(a, (size_t)page) && malloc_usable_size(a) >= (size_t)page);
    memset(a, 1, (size_t)page);
    free(a);
    a = pvalloc(sz(0));
    CHECK(a != NULL);
    free(a);
    errno = 0;
    CHECK(pvalloc(sz(SIZE_MAX - 10)) == NULL && errno == ENOMEM);
}

/* malloc_usable_size: >= request, all writable, stable. */
static void test_usable(void)
{
    CHECK(malloc_usable_size(NULL) == 0);
    for (size_t n = 1; n < 5000; n += 37) {
        unsigned char *a = malloc(sz(n));
        unsigned char *b = malloc(sz(n));
        fill(b, n, 9);
        size_t u = malloc_usable_size(a);
        CHECK(u >= n);
        memset(a, 0xee, u);                  /* writable up to usable size */
        CHECK(same(b, n, 9));                /* without touching b */
        free(b);                             /* a neighbour's free ... */
        CHECK(malloc_usable_size(a) == u);   /* ... does not change it */
        unsigned char *c = realloc(a, sz(u + 1));
        int kept = 1;                        /* realloc copies usable bytes */
        for (size_t i = 0; i < u; i++)
            kept &= c[i] == 0xee;
        CHECK(kept);
        free(c);
    }
}

static void test_glibc_names(void)
{
    void *(*lm)(size_t) = dlsym(RTLD_DEFAULT, "__libc_malloc");
    void (*lf)(void *) = dlsym(RTLD_DEFAULT, "__libc_free");
    void *(*lc)(size_t, size_t) = dlsym(RTLD_DEFAULT, "__libc_calloc");
    void *(*lr)(void *, size_t) = dlsym(RTLD_DEFAULT, "__libc_realloc");
    void *(*lma)(size_t, size_t) = dlsym(RTLD_DEFAULT, "__libc_memalign");
    int (*pm)(void **, size_t, size_t) = dlsym(RTLD_DEFAULT, "__posix_memalign");
    void (*cf)(void *) = dlsym(RTLD_DEFAULT, "cfree");
    CHECK(lm && lf && lc && lr && lma && pm && cf);
    if (!(lm && lf && lc && lr && lma && pm && cf))
        return;
    void *p = lm(sz(50));
    p = lr(p, sz(500));
    void *q = lc(sz(4), 4);
    void *r = lma(64, sz(10));
    void *s = NULL;
    CHECK(pm(&s, 64, sz(10)) == 0 && aligned_to(s, 64));
    CHECK(p && q && r && aligned_to(r, 64));
    /* Blocks from glibc's names are ours: free() takes them. */
    free(p);
    lf(q);
    cf(r);
    free(s);
}

static void test_control(void)
{
    CHECK(mallopt(M_ARENA_MAX, 1) == 1);
    int t = malloc_trim(0);
    CHECK(t == 0 || t == 1);
    struct mallinfo2 mi = mallinfo2();
    CHECK(mi.uordblks > 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(malloc_info(0, f) == 0);
    fclose(f);
    CHECK(buf && strstr(buf, "<malloc") != NULL);
    free(buf);
    f = fopen("/dev/null", "w");
    errno = 0;
    CHECK(malloc_info(1, f) == -1 && errno == EINVAL);
    fclose(f);
}

static void test_public_api(void)
{
    const char *(*ver)(void) = dlsym(RTLD_DEFAULT, "fbmalloc_version");
    int (*print)(int) = dlsym(RTLD_DEFAULT, "fbmalloc_stats_print");
    CHECK(ver && strcmp(ver(), "0.1.0") == 0);
    CHECK(stats_get(NULL) == -1);
    struct fbmalloc_stats st = snap();
    CHECK(st.counting == 1 && st.threads >= 1);
    int fds[2];
    CHECK(pipe(fds) == 0);
    CHECK(print && print(fds[1]) == 0);
    close(fds[1]);
    char text[4096] = {0};
    ssize_t n = read(fds[0], text, sizeof text - 1);
    close(fds[0]);
    CHECK(n > 0 && strstr(text, "fbmalloc") && strstr(text, "epochs reset"));
}

int main(void)
{
    stats_get = (int (*)(struct fbmalloc_stats *))dlsym(RTLD_DEFAULT,
                                                        "fbmalloc_stats_get");
    if (!stats_get) {
        fprintf(stderr, "libfbmalloc.so is not loaded (LD_PRELOAD)\n");
        return 1;
    }
    test_symbols();
    test_malloc();
    test_calloc();
    test_realloc();
    test_aligned();
    test_usable();
    test_glibc_names();
    test_control();
    test_public_api();
    return check_done("semantics");
}
