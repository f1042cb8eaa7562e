/*
 * Allocates until the allocator says no, under whatever ulimit -v the
 * caller set, and reports how much it got: "<MODE> <bytes> ENOMEM".
 * Every failure must be NULL with errno ENOMEM (anything else prints
 * "errno=<n>" and exits 1); a fault is the harness's to see.
 *
 * usage: ulimit MODE
 *   big      malloc(1 MiB) until NULL
 *   small    malloc(100) until NULL (the buffers first, then jemalloc)
 *   calloc   calloc(1, 1 MiB) until NULL
 *   aligned  posix_memalign(4096, 64 KiB) until it fails
 *   realloc  one block grown by 1 MiB steps until realloc fails (the old
 *            block must survive the failure, contents intact)
 *   threads  4 threads at once, malloc(200) and malloc(64 KiB) until NULL
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail_errno(const char *what, int e)
{
    printf("%s errno=%d\n", what, e);
    exit(1);
}

/* The blocks stay allocated (the point is to fill the budget), but a list
 * through them keeps them reachable. */
static size_t fill(size_t size, int how)
{
    size_t total = 0;
    void **head = NULL;
    for (;;) {
        void *p = NULL;
        errno = 0;
        if (how == 0)
            p = malloc(size);
        else if (how == 1)
            p = calloc(1, size);
        else {
            int rc = posix_memalign(&p, 4096, size);
            if (rc != 0) {
                if (rc != ENOMEM)
                    fail_errno("posix_memalign", rc);
                return total;
            }
        }
        if (!p) {
            if (errno != ENOMEM)
                fail_errno("alloc", errno);
            return total;
        }
        *(void ***)p = head;
        head = p;
        total += size;
    }
}

static size_t grow(void)
{
    size_t n = 1 << 20;
    char *p = malloc(n);
    if (!p)
        return 0;
    memset(p, 0x5a, 4096);
    for (;;) {
        errno = 0;
        char *q = realloc(p, n + (1 << 20));
        if (!q) {
            if (errno != ENOMEM)
                fail_errno("realloc", errno);
            for (int i = 0; i < 4096; i++)
                if (p[i] != 0x5a) {
                    printf("realloc failure lost the old block\n");
                    exit(1);
                }
            return n;
        }
        p = q;
        n += 1 << 20;
    }
}

static void *thread_fill(void *arg)
{
    size_t *out = arg;
    *out = fill(200, 0) + fill(65536, 0);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "big";
    size_t total;
    if (!strcmp(mode, "big"))
        total = fill(1 << 20, 0);
    else if (!strcmp(mode, "small"))
        total = fill(100, 0);
    else if (!strcmp(mode, "calloc"))
        total = fill(1 << 20, 1);
    else if (!strcmp(mode, "aligned"))
        total = fill(65536, 2);
    else if (!strcmp(mode, "realloc"))
        total = grow();
    else if (!strcmp(mode, "threads")) {
        pthread_t t[4];
        size_t got[4] = {0};
        int n = 0;
        for (; n < 4; n++)
            if (pthread_create(&t[n], NULL, thread_fill, &got[n]) != 0)
                break;
        total = 0;
        for (int i = 0; i < n; i++) {
            pthread_join(t[i], NULL);
            total += got[i];
        }
    } else {
        fprintf(stderr, "ulimit: unknown mode %s\n", mode);
        return 2;
    }
    printf("%s %zu ENOMEM\n", mode, total);
    return 0;
}
