/*
 * realloc0.c -- clean: realloc(p, 0) frees p (glibc semantics: returns
 * NULL).  The program keeps nothing, so if realloc(p, 0) left p allocated,
 * or returned a new block, that block would be a leak.
 *
 * EXPECT: no leaks
 */
#include "leaktest.h"

static void shrink_to_nothing(void)
{
    for (int i = 0; i < 10; i++) {
        char *p = malloc(100 + i);
        memset(p, 0, 100);
        char *r = realloc(p, 0);
        if (r) {
            fprintf(stderr, "realloc(p, 0) returned %p, not NULL\n", (void *)r);
        }
    }
    char *q = realloc(NULL, 50);
    memset(q, 0, 50);
    if (realloc(q, 0) != NULL)
        fprintf(stderr, "realloc(q, 0) did not return NULL\n");
}

int main(void)
{
    lt_init();
    shrink_to_nothing();
    lt_scrub_stack();
    return 0;
}
