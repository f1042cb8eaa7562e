/*
 * suppress.c -- suppressions (FBMALLOC_SUPPRESSIONS, LeakSanitizer
 * format).  Two leaks.  The driver runs it without suppressions, with
 * files whose patterns match noisy_leak (plain name; wildcard with both
 * anchors; a "#" comment and blank lines around), and with anchored
 * patterns that must NOT match (then nothing is suppressed).
 *
 * EXPECT: direct 3 blocks, 150 bytes, from noisy_leak at @noisy
 * EXPECT: direct 1 block, 70 bytes, from real_leak at @real
 * EXPECT(suppressed): direct 1 block, 70 bytes, from real_leak at @real
 * EXPECT(suppressed): suppressed 3 blocks, 150 bytes
 * Unsuppressed: 2 leaks, 220 bytes in 4 blocks.  With noisy_leak
 * suppressed: 1 leak, 70 bytes in 1 block; 3 suppressed.
 */
#include "leaktest.h"

static void noisy_leak(void)
{
    for (int i = 0; i < 3; i++) {
        char *p = malloc(50); /* LEAK: noisy */
        memset(p, 0, 50);
    }
}

static void real_leak(void)
{
    char *p = malloc(70); /* LEAK: real */
    memset(p, 0, 70);
}

int main(void)
{
    lt_init();
    noisy_leak();
    real_leak();
    lt_scrub_stack();
    return 0;
}
