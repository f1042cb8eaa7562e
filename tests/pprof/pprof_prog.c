/*
 * A program with known leaks and live blocks for the pprof test:
 *   leak_small()  1000 direct leaks of 40 bytes
 *   leak_tree()   one direct leak (a 64-byte node) holding 8 indirect
 *                 leaves of 200 bytes (allocated in make_leaf())
 *   keep_global() 3 blocks of 3000 bytes still reachable from a global
 * argv[1]: "api" writes a heap snapshot to fd 1 with fbmalloc_snapshot()
 * (found with dlsym), "signal" raises SIGUSR2 (the next allocation writes
 * it), anything else none.
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile sink;
static void *kept[3];

__attribute__((noinline)) static void leak_small(void)
{
    for (int i = 0; i < 1000; i++) {
        sink = malloc(40);
        memset(sink, 1, 40);
    }
    sink = NULL;
}

__attribute__((noinline)) static void *make_leaf(void)
{
    void *p = malloc(200);
    memset(p, 2, 200);
    return p;
}

__attribute__((noinline)) static void leak_tree(void)
{
    void **node = calloc(8, sizeof(void *));
    for (int i = 0; i < 8; i++)
        node[i] = make_leaf();
    sink = node;
    sink = NULL;
}

__attribute__((noinline)) static void keep_global(void)
{
    for (int i = 0; i < 3; i++)
        kept[i] = malloc(3000);
}

/* Overwrites the dead stack the leaking functions left behind (the scan
 * is conservative). */
__attribute__((noinline)) static void scrub(void)
{
    volatile char junk[16384];
    memset((char *)junk, 0, sizeof junk);
}

int main(int argc, char **argv)
{
    leak_small();
    leak_tree();
    keep_global();
    scrub();
    if (argc > 1 && strcmp(argv[1], "api") == 0) {
        int (*snap)(int) = (int (*)(int))dlsym(RTLD_DEFAULT, "fbmalloc_snapshot");
        if (!snap || snap(1) != 0)
            return 3;
    } else if (argc > 1 && strcmp(argv[1], "signal") == 0) {
        raise(SIGUSR2);
        free(malloc(10));
    }
    fprintf(stderr, "done\n");
    return 0;
}
