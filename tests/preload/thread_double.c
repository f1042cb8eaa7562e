/*
 * Real double frees in threads other than main, under FBMALLOC_CHECK
 * (issue 13, item 4): each must be reported as a double free, and nothing
 * else may be reported (the allocations our own report makes, libdw's
 * among them, are not the program's).  argv[1] threads (default 200),
 * run 4 at a time; each double-frees a 48-byte and a 2000-byte block.
 * Under FBMALLOC_ON_BAD_FREE=ignore the script expects 2 reports per
 * thread; by default, one report and an abort.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile size_t n_small = 48, n_big = 2000;

static void *twice(void *arg)
{
    (void)arg;
    char *a = malloc(n_small), *b = malloc(n_big);
    memset(a, 1, n_small);
    memset(b, 2, n_big);
    free(a);
    free(b);
    free(a);
    free(b);
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200;
    for (int i = 0; i < n; i += 4) {
        pthread_t t[4];
        int k = n - i < 4 ? n - i : 4;
        for (int j = 0; j < k; j++)
            pthread_create(&t[j], NULL, twice, NULL);
        for (int j = 0; j < k; j++)
            pthread_join(t[j], NULL);
    }
    printf("CONTINUED %d threads\n", n);
    return 0;
}
