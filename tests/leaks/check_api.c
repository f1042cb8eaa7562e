/*
 * check_api.c -- fbmalloc_leak_check() on demand (found with dlsym, the
 * library is not linked).  "check_api on": checks at four points and
 * verifies the returned leaked-block counts itself (exit 1 on mismatch):
 *   start: 0; after leak_two(): 2; after hiding a third block (its only
 *   pointer XOR-ed in a global): 3; after un-hiding and freeing it: 2.
 * Prints "checks: 0 2 3 2".  "check_api off" (FBMALLOC_LEAKS unset): the
 * function must return -1.  Exit 3 if the function is not found.
 *
 * EXPECT: direct 2 blocks, 160 bytes, from leak_two at @two
 * The at-exit report (the fifth) shows 1 leak, 160 bytes in 2 blocks.
 */
#include <stdint.h>

#include "leaktest.h"

#define MASK ((uintptr_t)0xA5A5A5A5A5A5A5A5ull)

static uintptr_t hidden;

static void leak_two(void)
{
    for (int i = 0; i < 2; i++) {
        char *p = malloc(80); /* LEAK: two */
        memset(p, 0, 80);
    }
}

static void hide_one(void)
{
    char *p = malloc(90);
    memset(p, 0, 90);
    hidden = (uintptr_t)p ^ MASK;
}

static void free_hidden(void)
{
    free((void *)(hidden ^ MASK));
    hidden = 0;
}

int main(int argc, char **argv)
{
    lt_init();
    long (*check)(void) = (long (*)(void))dlsym(RTLD_DEFAULT, "fbmalloc_leak_check");
    if (!check) {
        fprintf(stderr, "fbmalloc_leak_check not found\n");
        return 3;
    }
    if (argc > 1 && strcmp(argv[1], "off") == 0) {
        long r = check();
        printf("checks: %ld\n", r);
        return r == -1 ? 0 : 1;
    }
    long got[4];
    lt_scrub_stack();
    got[0] = check();
    leak_two();
    lt_scrub_stack();
    got[1] = check();
    hide_one();
    lt_scrub_stack();
    got[2] = check();
    free_hidden();
    lt_scrub_stack();
    got[3] = check();
    printf("checks: %ld %ld %ld %ld\n", got[0], got[1], got[2], got[3]);
    fflush(stdout);
    const long want[4] = {0, 2, 3, 2};
    for (int i = 0; i < 4; i++)
        if (got[i] != want[i]) {
            fprintf(stderr, "check %d returned %ld, expected %ld\n", i,
                    got[i], want[i]);
            return 1;
        }
    return 0;
}
