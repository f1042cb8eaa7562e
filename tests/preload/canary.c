/*
 * FBMALLOC_CANARY targets (argv[1]):
 *   over-small / over-big   write 3 bytes past a 40 / 20000-byte block
 *                           (allocated in make_block), then free it
 *   under                   write 1 byte before a block, then free it
 *   over-realloc            overrun, then realloc the block
 *   over-exit               overrun a block that is never freed
 *   aligned                 64-byte aligned blocks keep alignment; usable
 *                           size equals the request; then an overrun
 *   clean                   in-bounds use of usable sizes only
 * Prints CONTINUED if it survives.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>

static volatile size_t small = 40, big = 20000;
static char *kept;

__attribute__((noinline)) static char *make_block(size_t n)
{
    char *p = malloc(n);
    memset(p, 1, n);
    return p;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "clean";
    if (!strcmp(mode, "over-small") || !strcmp(mode, "over-big")) {
        size_t n = mode[5] == 's' ? small : big;
        char *p = make_block(n);
        memset(p + n, 'x', 3);
        free(p);
    } else if (!strcmp(mode, "under")) {
        char *p = make_block(small);
        p[-1] = 'x';
        free(p);
    } else if (!strcmp(mode, "over-realloc")) {
        char *p = make_block(small);
        p[small] = 'x';
        p = realloc(p, 100);
        free(p);
    } else if (!strcmp(mode, "over-exit")) {
        kept = make_block(small);
        memset(kept + small, 'x', 5);
    } else if (!strcmp(mode, "aligned")) {
        for (int i = 0; i < 100; i++) {
            void *p = aligned_alloc(64, 100);
            if (((uintptr_t)p & 63) || malloc_usable_size(p) != 100)
                return 5;
            free(p);
        }
        char *p = aligned_alloc(64, 100);
        p[100] = 'x';
        free(p);
    } else {
        for (int i = 0; i < 20000; i++) {
            size_t n = (size_t)(i % 3000) + 1;
            char *p = i % 2 ? calloc(1, n) : malloc(n);
            size_t u = malloc_usable_size(p);
            if (u != n)
                return 4;                 /* usable == request under canaries */
            memset(p, 2, u);
            p = realloc(p, n + 10);
            memset(p, 3, n + 10);
            free(p);
        }
    }
    printf("CONTINUED\n");
    return 0;
}
