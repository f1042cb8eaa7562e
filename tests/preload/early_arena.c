/*
 * The early arena (src/early.h): a short program's requests above the
 * buffers' size gate are served from fbmalloc's own memory, jemalloc never
 * starts, and those blocks behave as any other: realloc, usable size,
 * alignment, calloc's zeros, ENOMEM, fork, threads, and, once the program
 * outgrows the arena, jemalloc's blocks beside them.  Run by
 * early_arena.sh, under every mode.  argv[1] picks the scenario; prints
 * "ok <scenario> ..." and exits 0 when every check held.
 *
 * "In the library" (the proof that jemalloc did not serve a block): the
 * block's address lies in libfbmalloc.so's own image (dladdr), where the
 * arena is; jemalloc's memory is mmap()ed elsewhere.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "pattern.h"

static int failed;
#define CHECK(c, ...)                                                          \
    do {                                                                       \
        if (!(c)) {                                                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                        \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
            failed = 1;                                                        \
        }                                                                      \
    } while (0)

static volatile size_t vs;
static size_t sz(size_t n) { vs = n; return vs; }

static int in_lib(const void *p)
{
    Dl_info a, b;
    return dladdr(p, &a) && dladdr((void *)malloc, &b) && a.dli_fbase == b.dli_fbase;
}


/* Every call a short program makes, on blocks above the size gate. */
static void semantics(int want_lib)
{
    unsigned char *a = malloc(sz(5000));
    CHECK(a && ((uintptr_t)a & 15) == 0, "malloc(5000) = %p", (void *)a);
    CHECK(!want_lib || in_lib(a), "malloc(5000) = %p not from the early arena", (void *)a);
    CHECK(malloc_usable_size(a) >= 5000, "usable %zu", malloc_usable_size(a));
    fill(a, 5000, 1);

    /* The last block grows in place; a block below it moves, intact. */
    unsigned char *b = malloc(sz(3000));
    fill(b, 3000, 2);
    unsigned char *b2 = realloc(b, sz(9000));
    CHECK(b2 && same(b2, 3000, 2), "realloc grow of the last block lost data");
    /* (FBMALLOC_CANARY moves every block a realloc grows.) */
    CHECK(!want_lib || getenv("FBMALLOC_CANARY") || b2 == b, "the last block moved: %p -> %p",
          (void *)b, (void *)b2);
    unsigned char *a2 = realloc(a, sz(20000));
    CHECK(a2 && same(a2, 5000, 1), "realloc grow lost data");
    CHECK(malloc_usable_size(a2) >= 20000, "usable %zu after realloc", malloc_usable_size(a2));
    unsigned char *a3 = realloc(a2, sz(2000));      /* shrink */
    CHECK(a3 && same(a3, 2000, 1), "realloc shrink lost data");

    unsigned char *c = calloc(1, sz(70000));
    int zero = c != NULL;
    for (size_t i = 0; c && i < 70000; i++)
        zero &= c[i] == 0;
    CHECK(zero, "calloc(70000) not zeroed");

    for (size_t al = 32; al <= 65536; al *= 4) {
        void *m = NULL;
        int rc = posix_memalign(&m, al, sz(2048));
        CHECK(rc == 0 && ((uintptr_t)m & (al - 1)) == 0, "posix_memalign(%zu) = %p", al, m);
        CHECK(!want_lib || in_lib(m), "posix_memalign(%zu) not from the arena", al);
        memset(m, 0x5a, 2048);
        free(m);
        void *q = aligned_alloc(al, sz(al * 2));
        CHECK(q && ((uintptr_t)q & (al - 1)) == 0, "aligned_alloc(%zu) = %p", al, q);
        free(q);
    }

    /* malloc(0) and realloc(p, 0), as glibc. */
    void *z1 = malloc(0), *z2 = malloc(0);
    CHECK(z1 && z2 && z1 != z2, "malloc(0) not unique");
    free(z1);
    free(z2);
    void *r0 = malloc(sz(4000));
    CHECK(realloc(r0, 0) == NULL, "realloc(p, 0) did not free");

    /* A request no allocator can serve: NULL, ENOMEM, and the arena
     * keeps serving. */
    errno = 0;
    void *huge = malloc(sz(SIZE_MAX / 2));
    CHECK(!huge && errno == ENOMEM, "malloc(huge) = %p errno %d", huge, errno);
    unsigned char *after = malloc(sz(4000));
    CHECK(!want_lib || in_lib(after), "after a refused request: %p not from the arena",
          (void *)after);

    /* free keeps errno. */
    errno = 1234;
    free(after);
    CHECK(errno == 1234, "free changed errno to %d", errno);

    CHECK(same(b2, 3000, 2), "a block was overwritten");
    free(a3);
    free(b2);
    free(c);
}

/* Past the arena: jemalloc takes over, and the arena's blocks stay live,
 * freeable and resizable among jemalloc's. */
static void outgrow(void)
{
    enum { N = 400, SZ = 16384 };    /* 6.4 MiB: more than the arena */
    static unsigned char *blk[N];
    int lib = 0, later_lib = 0;
    for (int i = 0; i < N; i++) {
        blk[i] = malloc(sz(SZ));
        CHECK(blk[i] != NULL, "malloc %d", i);
        fill(blk[i], SZ, (unsigned)i);
        if (in_lib(blk[i])) {
            lib++;
            later_lib |= lib != i + 1;
        }
    }
    CHECK(lib > 0 && lib < N && !later_lib,
          "%d of %d blocks from the arena (want the first ones, not all)", lib, N);
    void *big = malloc(sz(4 << 20));
    CHECK(big && !in_lib(big), "a 4 MiB block %p", big);
    free(big);
    for (int i = 0; i < N; i++)
        CHECK(same(blk[i], SZ, (unsigned)i), "block %d overwritten", i);
    /* Early blocks realloc'd into jemalloc's memory, contents intact. */
    for (int i = 0; i < N; i += 2) {
        unsigned char *q = realloc(blk[i], sz(SZ * 3));
        CHECK(q && same(q, SZ, (unsigned)i), "realloc of block %d", i);
        blk[i] = q;
    }
    for (int i = 0; i < N; i++)
        free(blk[i]);
    /* New blocks come from jemalloc now, and are not the arena's. */
    void *n = malloc(sz(3000));
    CHECK(n && !in_lib(n), "after outgrowing: %p from the arena", n);
    free(n);
    printf("ok outgrow: %d of %d blocks from the arena, then jemalloc\n", lib, N);
}

static void forked(void)
{
    unsigned char *a = malloc(sz(6000));
    fill(a, 6000, 9);
    CHECK(in_lib(a), "before fork: %p not from the arena", (void *)a);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        /* The child's copy of the arena: its blocks and new ones. */
        int ok = same(a, 6000, 9);
        unsigned char *b = realloc(a, sz(60000));
        ok &= b && same(b, 6000, 9);
        unsigned char *c = malloc(sz(5000));
        ok &= c && in_lib(c);
        free(b);
        free(c);
        semantics(1);
        outgrow();
        _exit(ok && !failed ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
    CHECK(same(a, 6000, 9), "the parent's block changed");
    free(a);
    semantics(1);
    printf("ok fork: the child and the parent used their arenas\n");
}

/* Threads at once: every block distinct and intact, wherever it came
 * from (two threads in the arena at once: one of them gets jemalloc). */
enum { T = 4, PER = 150 };
static unsigned char *tblk[T][PER];
static pthread_barrier_t bar;

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    pthread_barrier_wait(&bar);
    for (int i = 0; i < PER; i++) {
        size_t n = 1100 + (size_t)((i * 37 + t * 11) % 3000);
        tblk[t][i] = malloc(sz(n));
        fill(tblk[t][i], n, (unsigned)(t * 1000 + i));
        if (i % 3 == 0) {
            unsigned char *q = realloc(tblk[t][i], sz(n * 2));
            if (q && same(q, n, (unsigned)(t * 1000 + i)))
                fill(q, n, (unsigned)(t * 1000 + i));
            else
                tblk[t][i] = NULL;
            if (q)
                tblk[t][i] = q;
        }
    }
    return NULL;
}

static void threaded(void)
{
    pthread_t th[T];
    pthread_barrier_init(&bar, NULL, T);
    for (int t = 0; t < T; t++)
        pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
    for (int t = 0; t < T; t++)
        pthread_join(th[t], NULL);
    int lib = 0;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < PER; i++) {
            size_t n = 1100 + (size_t)((i * 37 + t * 11) % 3000);
            CHECK(tblk[t][i] && same(tblk[t][i], n, (unsigned)(t * 1000 + i)),
                  "thread %d block %d overwritten or lost", t, i);
            lib += in_lib(tblk[t][i]);
        }
    for (int t = 0; t < T; t++)
        for (int i = 0; i < PER; i++)
            free(tblk[t][i]);
    printf("ok threads: %d blocks intact, %d from the arena\n", T * PER, lib);
}

/* A leak of an arena block, reported with this function in its stack. */
__attribute__((noinline)) static void *early_leaker(void)
{
    void *p = malloc(sz(5000));
    memset(p, 1, 5000);
    return p;
}

static void *volatile sink;

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "semantics")) {
        semantics(1);
        if (!failed)
            printf("ok semantics: every call on the arena's blocks\n");
    } else if (!strcmp(m, "outgrow")) {
        semantics(1);
        outgrow();
        semantics(0);
    } else if (!strcmp(m, "fork")) {
        forked();
    } else if (!strcmp(m, "threads")) {
        threaded();
    } else if (!strcmp(m, "leak")) {
        sink = early_leaker();
        CHECK(in_lib(sink), "%p not from the arena", sink);
        sink = NULL;
        if (!failed)
            printf("ok leak: one arena block dropped\n");
    } else if (!strcmp(m, "double-after-outgrow")) {
        /* An arena block freed twice once jemalloc has taken over. */
        char *p = malloc(sz(5000));
        free(malloc(sz(4 << 20)));
        printf("ADDR %p\n", (void *)p);
        fflush(stdout);
        free(p);
        free(p);
        printf("CONTINUED\n");
    } else {
        printf("usage: early_arena semantics|outgrow|fork|threads|leak|double-after-outgrow\n");
        return 2;
    }
    return failed;
}
