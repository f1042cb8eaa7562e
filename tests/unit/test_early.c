/* The early arena (src/early.c) through its own API: alignment, size
 * classes, start bits, reuse by class only, in-place growth of the last
 * block only, the block limit, closing. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "early.h"

int main(void)
{
    CHECK(fb_early_on());
    CHECK_EQ_U(fb_early_used(), 0);
    unsigned char *a = fb_early_alloc(16, 100, 0);
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

    /* Size classes: four per doubling above 128. */
    unsigned char *k = fb_early_alloc(16, 129, 0);
    CHECK_EQ_U(fb_early_usable(k), 160);
    unsigned char *k2 = fb_early_alloc(16, 1000, 0);
    CHECK_EQ_U(fb_early_usable(k2), 1024);
    unsigned char *k3 = fb_early_alloc(16, 70001, 0);   /* above the classes: by 16 */
    CHECK_EQ_U(fb_early_usable(k3), 70016);

    /* Aligned to the address, beyond the arena's own page alignment. */
    for (size_t al = 32; al <= 65536; al *= 2) {
        unsigned char *m = fb_early_alloc(al, 40, 0);
        CHECK(m && ((uintptr_t)m & (al - 1)) == 0 && fb_early_is_start((uintptr_t)m));
    }

    /* Only the last block grows in place; shrinking always succeeds. */
    unsigned char *b = fb_early_alloc(16, 64, 0), *c = fb_early_alloc(16, 64, 0);
    CHECK(b && c && c > b);
    CHECK(!fb_early_resize(b, 4096));
    CHECK(fb_early_resize(b, 32));
    CHECK_EQ_U(fb_early_usable(b), 64);
    CHECK(fb_early_resize(c, 4096));
    CHECK_EQ_U(fb_early_usable(c), 4096);

    /* A freed block is reused by its own class only, its first word (the
     * freed mark) cleared, all of it for calloc. */
    unsigned char *d = fb_early_alloc(16, 2000, 0);
    memset(d, 0x77, 2048);
    size_t before = fb_early_used();
    fb_early_free(d);
    CHECK_EQ_U(fb_early_used(), before - 2048);
    unsigned char *other = fb_early_alloc(16, 1500, 0);      /* class 1536 */
    CHECK(other && other != d);
    unsigned char *again = fb_early_alloc(16, 1900, 0);      /* class 2048 */
    CHECK(again == d);
    CHECK(again[0] == 0 && again[8] == 0x77);
    fb_early_free(again);
    unsigned char *z = fb_early_alloc(16, 2048, 1);
    CHECK(z == d);
    zero = 1;
    for (int i = 0; i < 2048; i++)
        zero &= z[i] == 0;
    CHECK(zero);
    CHECK(fb_early_is_start((uintptr_t)d));
    /* A grown block goes back as the largest class it holds. */
    unsigned char *g = fb_early_alloc(16, 100, 0);
    CHECK(fb_early_resize(g, 300));                     /* 304 bytes: class 256 */
    fb_early_free(g);
    CHECK(fb_early_alloc(16, 256, 0) == g);
    CHECK(!fb_early_owns(a + FB_EARLY_SIZE));

    /* Too large: NULL, and what fits still fits. */
    CHECK(fb_early_alloc(16, FB_EARLY_SIZE, 0) == NULL);
    CHECK(fb_early_alloc(16, (size_t)1 << 62, 0) == NULL);
    CHECK(fb_early_alloc(16, 16, 0) != NULL);

    /* The block limit: a process that keeps reusing blocks leaves. */
    int n = 0;
    while (fb_early_alloc(16, 16, 0))
        n++;
    CHECK(n > 2000 && n <= 2048);
    CHECK(fb_early_alloc(16, 16, 0) == NULL);

    /* Closed: nothing new, not even from a free list; live blocks stay. */
    fb_early_free(k2);
    fb_early_close();
    CHECK(fb_early_alloc(16, 1000, 0) == NULL);
    int intact = 1;                                  /* nothing overwrote a */
    for (int i = 0; i < 112; i++)
        intact &= a[i] == 0xaa;
    CHECK(intact);
    return check_done("early");
}
