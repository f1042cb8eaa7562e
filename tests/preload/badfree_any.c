/*
 * Bad frees of every kind and size, in any mode (default, FBMALLOC_CHECK,
 * FBMALLOC_CANARY): issue 13, items 5 and 7.  argv[1] picks the mistake;
 * the program prints "ADDR <the bad pointer>" before committing it.  If it
 * survives (FBMALLOC_ON_BAD_FREE=ignore) it prints CONTINUED, then checks
 * that the allocator never hands out a block twice: it allocates blocks of
 * the sizes involved, fills each with its own pattern while keeping the
 * blocks still live, and verifies every pattern (exit 1 on overlap).
 * Driven by badfree_any.sh, which checks the report and the exit status.
 * With BADFREE_OUTGROW set, jemalloc serves from the start (below).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static char global_buf[64] __attribute__((aligned(16)));

/* Another thread's stack: a local it keeps alive until told. */
static pthread_mutex_t tl_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tl_cond = PTHREAD_COND_INITIALIZER;
static char *volatile tl_ptr;
static int tl_done;

static void *thread_local_buf(void *arg)
{
    char local[64] __attribute__((aligned(16)));
    (void)arg;
    memset(local, 0, sizeof local);
    pthread_mutex_lock(&tl_lock);
    tl_ptr = local;
    pthread_cond_signal(&tl_cond);
    while (!tl_done)
        pthread_cond_wait(&tl_cond, &tl_lock);
    pthread_mutex_unlock(&tl_lock);
    return NULL;
}
static volatile size_t n_small = 40, n_big = 2000, n_large = 100000;

struct blk { unsigned char *p; size_t n; unsigned char v; };
static struct blk live[600];
static int nlive;

static void keep(void *p, size_t n)
{
    unsigned char v = (unsigned char)(nlive * 7 + 1);
    memset(p, v, n);
    live[nlive++] = (struct blk){p, n, v};
}

static void announce(const void *p)
{
    printf("ADDR %p\n", p);
    fflush(stdout);
}

/* After the mistake: nothing handed out twice, nothing live overwritten. */
static int verify(void)
{
    static const size_t sizes[] = {40, 2000, 100000, 48, 24, 1500};
    for (int i = 0; nlive < 590; i++) {
        size_t n = sizes[i % 6];
        void *p = malloc(n);
        if (!p) {
            printf("FAIL malloc(%zu) = NULL\n", n);
            return 1;
        }
        keep(p, n);
    }
    for (int i = 0; i < nlive; i++)
        for (size_t k = 0; k < live[i].n; k++)
            if (live[i].p[k] != live[i].v) {
                printf("FAIL block %p (%zu bytes) overwritten at %zu: "
                       "a block was handed out twice\n",
                       (void *)live[i].p, live[i].n, k);
                return 1;
            }
    printf("VERIFIED %d blocks disjoint\n", nlive);
    return 0;
}

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "";
    /* BADFREE_OUTGROW=1: past the early arena first (src/early.h), so that
     * the blocks of every mistake are jemalloc's; else a short program's
     * blocks above the buffers' size gate are the arena's. */
    if (getenv("BADFREE_OUTGROW")) {
        void *volatile w = malloc(n_large * 80);     /* 8 MB */
        free(w);
    }
    size_t n = strstr(m, "small") ? n_small : strstr(m, "large") ? n_large : n_big;
    if (!strncmp(m, "double-", 7)) {
        char *p = malloc(n);
        memset(p, 1, n);
        /* Announced first: the first printf allocates stdout's buffer,
         * which jemalloc may carve from the block just freed (a reuse,
         * after which no allocator can tell a double free). */
        announce(p);
        free(p);
        free(p);
    } else if (!strncmp(m, "interior-", 9)) {
        char *p = malloc(n);
        keep(p, n);
        announce(p + 16);
        free(p + 16);
    } else if (!strncmp(m, "misaligned-", 11)) {
        char *p = malloc(n);
        keep(p, n);
        announce(p + 8);
        free(p + 8);
    } else if (!strncmp(m, "realloc-freed-", 14)) {
        char *p = malloc(n);
        free(p);
        announce(p);
        if (realloc(p, n * 2))
            printf("FAIL realloc of a freed block succeeded\n");
    } else if (!strcmp(m, "global")) {
        announce(global_buf);
        free(global_buf);
    } else if (!strcmp(m, "global-realloc")) {
        announce(global_buf);
        if (realloc(global_buf, 100))
            printf("FAIL realloc of a global succeeded\n");
    } else if (!strcmp(m, "stack-realloc")) {
        char local[64] __attribute__((aligned(16)));
        memset(local, 0, sizeof local);
        announce(local);
        char *volatile lp = local;
        if (realloc(lp, 100))
            printf("FAIL realloc of a stack pointer succeeded\n");
    } else if (!strcmp(m, "stack")) {
        char local[64] __attribute__((aligned(16)));
        memset(local, 0, sizeof local);
        char *volatile lp = local;
        announce(local);
        free(lp);
    } else if (!strcmp(m, "lib-global")) {
        /* A library's global: libc's stdout FILE (16-byte aligned within). */
        char *g = (char *)(((uintptr_t)stdout + 15) & ~(uintptr_t)15);
        announce(g);
        free(g);
    } else if (!strcmp(m, "thread-stack")) {
        pthread_t t;
        pthread_create(&t, NULL, thread_local_buf, NULL);
        pthread_mutex_lock(&tl_lock);
        while (!tl_ptr)
            pthread_cond_wait(&tl_cond, &tl_lock);
        pthread_mutex_unlock(&tl_lock);
        announce(tl_ptr);
        free(tl_ptr);
        pthread_mutex_lock(&tl_lock);
        tl_done = 1;
        pthread_cond_signal(&tl_cond);
        pthread_mutex_unlock(&tl_lock);
        pthread_join(t, NULL);
    } else if (!strcmp(m, "mmap")) {
        char *p = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        announce(p + 4096);
        free(p + 4096);
    } else if (!strcmp(m, "clean")) {
        for (int i = 0; i < 100000; i++)
            free(malloc((size_t)(i % 3000) + 1));
    } else {
        return 2;
    }
    printf("CONTINUED\n");
    fflush(stdout);
    return verify();
}
