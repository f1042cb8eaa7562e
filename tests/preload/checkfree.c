/*
 * FBMALLOC_CHECK targets: one bad call chosen by argv[1], in functions
 * with known names so the report's stacks can be checked:
 *   double-small / double-big   malloc in make_block, free in drop_block,
 *                               free again in drop_again
 *   interior-small / interior-big  free of a pointer inside a block
 *   never        free of a string literal;  stack: free of a local array
 *   realloc-freed   realloc of a freed (quarantined) jemalloc block
 *   clean        allocations and frees only (must stay silent)
 * Prints CONTINUED if it survives the bad call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile size_t small = 48, big = 20000;

__attribute__((noinline)) static char *make_block(size_t n)
{
    char *p = malloc(n);
    memset(p, 7, n);
    return p;
}

__attribute__((noinline)) static void drop_block(char *p) { free(p); }
__attribute__((noinline)) static void drop_again(char *p) { free(p); }

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "clean";
    if (!strcmp(mode, "double-small") || !strcmp(mode, "double-big")) {
        char *p = make_block(mode[7] == 's' ? small : big);
        drop_block(p);
        drop_again(p);
    } else if (!strcmp(mode, "interior-small") || !strcmp(mode, "interior-big")) {
        char *p = make_block(mode[9] == 's' ? small : big);
        drop_block(p + 16);
    } else if (!strcmp(mode, "never")) {
        drop_block((char *)"a string literal");
    } else if (!strcmp(mode, "stack")) {
        char local[64];
        memset(local, 0, sizeof local);
        drop_block(local);
    } else if (!strcmp(mode, "realloc-freed")) {
        char *p = make_block(big);
        drop_block(p);
        p = realloc(p, big * 2);
        (void)p;
    } else {
        for (int i = 0; i < 100000; i++)
            drop_block(make_block((size_t)(i % 3000) + 1));
    }
    printf("CONTINUED\n");
    return 0;
}
