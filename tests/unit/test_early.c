/* The early arena (src/early.c) through its own API: alignment, sizes,
 * start bits, in-place growth of the last block only, no reuse, and
 * refusal once full. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "early.h"

int main(void)
{
    CHECK(fb_early_on());
    CHECK_EQ_U(fb_early_used(), 0);
    unsigned char *a = fb_early_alloc(16, 100);
    CHECK(a && fb_early_owns(a) && ((uintptr_t)a & 15) == 0);
    CHECK_EQ_U(fb_early_usable(a), 112);
    CHECK(fb_early_is_start((uintptr_t)a));
    CHECK(!fb_early_is_start((uintptr_t)a + 16));   /* interior */
    CHECK(!fb_early_is_start((uintptr_t)a - 16));   /* its header */
    int zero = 1;
    for (int i = 0; i < 112; i++)
        zero &= a[i] == 0;
    CHECK(zero);
    memset(a, 0xaa, 112);

    /* Aligned to the address, beyond the arena's own page alignment. */
    for (size_t al = 32; al <= 65536; al *= 2) {
        unsigned char *m = fb_early_alloc(al, 40);
        CHECK(m && ((uintptr_t)m & (al - 1)) == 0 && fb_early_is_start((uintptr_t)m));
    }

    /* Only the last block grows in place; shrinking always succeeds. */
    unsigned char *b = fb_early_alloc(16, 64), *c = fb_early_alloc(16, 64);
    CHECK(b && c && c > b);
    CHECK(!fb_early_resize(b, 4096));
    CHECK(fb_early_resize(b, 32));
    CHECK_EQ_U(fb_early_usable(b), 64);
    CHECK(fb_early_resize(c, 4096));
    CHECK_EQ_U(fb_early_usable(c), 4096);
    unsigned char *d = fb_early_alloc(16, 16);
    CHECK(d >= c + 4096 + 16);                      /* after the grown block */

    /* Freed blocks are never handed out again. */
    size_t before = fb_early_used();
    fb_early_free(d);
    CHECK_EQ_U(fb_early_used(), before - 16);
    unsigned char *e = fb_early_alloc(16, 16);
    CHECK(e && e != d);
    CHECK(fb_early_is_start((uintptr_t)d));         /* a freed block's start stays */
    CHECK(!fb_early_owns(a + FB_EARLY_SIZE));

    /* Full: NULL, and what fits still fits. */
    CHECK(fb_early_alloc(16, FB_EARLY_SIZE) == NULL);
    CHECK(fb_early_alloc(16, (size_t)1 << 62) == NULL);
    int n = 0;
    while (fb_early_alloc(16, 4000))
        n++;
    CHECK(n > (int)(FB_EARLY_SIZE / 4016) - 40 && n < (int)(FB_EARLY_SIZE / 4000));
    CHECK(fb_early_alloc(16, 16) != NULL || fb_early_used() > FB_EARLY_SIZE - 64);
    int intact = 1;                                  /* nothing overwrote a */
    for (int i = 0; i < 112; i++)
        intact &= a[i] == 0xaa;
    CHECK(intact);
    return check_done("early");
}
