/*
 * Heap snapshots: keeps 100 blocks of 1000 bytes from keep_many() and one
 * of 5000 bytes from keep_one(), then (argv[1]) "api" calls
 * fbmalloc_snapshot(1) (found with dlsym), or "signal" raises SIGUSR2 and
 * allocates once (the snapshot is written by that next allocation).
 * Prints "done" so the caller can check the program went on.
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *kept[101];

__attribute__((noinline)) static void keep_many(void)
{
    for (int i = 0; i < 100; i++)
        kept[i] = malloc(1000);
}

__attribute__((noinline)) static void keep_one(void)
{
    kept[100] = malloc(5000);
}

int main(int argc, char **argv)
{
    keep_many();
    keep_one();
    fflush(stdout);
    if (argc > 1 && !strcmp(argv[1], "api")) {
        int (*snap)(int) = (int (*)(int))dlsym(RTLD_DEFAULT, "fbmalloc_snapshot");
        if (!snap || snap(1) != 0)
            return 3;
    } else {
        raise(SIGUSR2);
        free(malloc(10));
    }
    printf("done\n");
    for (int i = 0; i < 101; i++)
        free(kept[i]);
    return 0;
}
