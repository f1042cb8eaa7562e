/*
 * exitcode.c -- the program's own exit status is kept unless
 * FBMALLOC_LEAK_EXITCODE is set; then it becomes that code only when
 * leaks were found.
 * "exitcode leak": leaks one block, then exit(3).
 * "exitcode clean": leaks nothing, returns 3 from main.
 *
 * EXPECT(leak): direct 1 block, 10 bytes, from leak_ten at @exitcode
 * EXPECT(clean): no leaks
 */
#include "leaktest.h"

static void leak_ten(void)
{
    char *p = malloc(10); /* LEAK: exitcode */
    memset(p, 0, 10);
}

int main(int argc, char **argv)
{
    lt_init();
    if (argc > 1 && strcmp(argv[1], "leak") == 0) {
        leak_ten();
        lt_scrub_stack();
        exit(3);
    }
    lt_scrub_stack();
    return 3;
}
