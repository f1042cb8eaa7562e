/*
 * realloc growing a block in place must not reach into an epoch the block
 * does not belong to (issue 13, item 1).
 *
 * Thread A fills one epoch exactly (its last block L ends on an epoch
 * boundary), keeps every block of it alive, and exits.  Thread B adopts
 * the slot: its bump pointer starts at the next epoch, i.e. right at L's
 * end.  B's first request is large (jemalloc), then realloc(L, 1000): if
 * that grew L in place, L would overlap an epoch that does not count it,
 * and the next reset of that epoch hands its bytes out again.  So B fills
 * L with a pattern and churns malloc(200)/free: no block may overlap L and
 * L's bytes must survive.  Exits 0 when clean, 1 with a message if not.
 * The same program passes under glibc (no LD_PRELOAD).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPOCH (16u << 10)            /* FBMALLOC_EPOCH_SIZE, set by the test */
#define KEEP 4096

static void *kept[KEEP];
static int nkept;
static char *L;
static int expect_in_place;
static volatile size_t sz16 = 16, sz200 = 200, big = 5000, grow = 1000;

static void *fill(void *arg)
{
    (void)arg;
    /* 16-byte blocks are contiguous in the buffer: stop at the one that
     * ends on an epoch boundary. */
    while (nkept < KEEP) {
        char *p = malloc(sz16);
        kept[nkept++] = p;
        if ((((uintptr_t)p + 16) & (EPOCH - 1)) == 0) {
            L = p;
            break;
        }
    }
    /* Step into the next epoch and leave it empty again. */
    free(malloc(sz16));
    return NULL;
}

static void *adopt(void *arg)
{
    (void)arg;
    void *b = malloc(big);          /* first request: not from the buffer */
    memset(L, 0x5a, 16);
    char *r = realloc(L, grow);
    if (!r) {
        printf("FAIL realloc returned NULL\n");
        return (void *)1;
    }
    memset(r, 0x5a, grow);
    for (int i = 0; i < 20000; i++) {
        char *m = malloc(sz200);
        if (m < r + grow && m + 200 > r) {
            printf("FAIL malloc(200) returned %p, inside the realloc'ed block "
                   "%p (%zu bytes; realloc %s)\n", (void *)m, (void *)r, (size_t)grow,
                   r == L ? "grew in place" : "moved");
            return (void *)1;
        }
        memset(m, 0xa5, 200);
        free(m);
    }
    for (size_t i = 0; i < grow; i++)
        if ((unsigned char)r[i] != 0x5a) {
            printf("FAIL byte %zu of the realloc'ed block was overwritten\n", i);
            return (void *)1;
        }
    printf("ok   realloc(L, %zu) %s, 20000 later blocks kept clear of it\n",
           (size_t)grow, r == L ? "in place" : "moved");
    /* The fix must not cost the ordinary case: the newest block of the
     * current epoch still grows in place (fbmalloc only: argv says so). */
    if (expect_in_place) {
        char *x = malloc(sz200);
        char *y = realloc(x, grow);
        if (y != x) {
            printf("FAIL realloc of the newest block moved it (%p -> %p)\n",
                   (void *)x, (void *)y);
            return (void *)1;
        }
        printf("ok   the newest block of the current epoch still grows in place\n");
        free(y);
    }
    free(r);
    free(b);
    return NULL;
}

int main(int argc, char **argv)
{
    expect_in_place = argc > 1 && strcmp(argv[1], "in-place") == 0;
    pthread_t a, b;
    void *res;
    pthread_create(&a, NULL, fill, NULL);
    pthread_join(a, NULL);
    if (!L) {
        printf("FAIL no block ended on an epoch boundary\n");
        return 1;
    }
    pthread_create(&b, NULL, adopt, NULL);
    pthread_join(b, &res);
    return res ? 1 : 0;
}
