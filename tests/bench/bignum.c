/*
 * bignum: arbitrary-precision arithmetic with many temporaries and a few
 * results kept (models mimalloc-bench's "cfrac", a continued-fraction
 * factoriser: every operation allocates a fresh result number and frees
 * its operands' intermediates, and a small table of results lives on).
 *
 * Each step multiplies and adds numbers of 2..40 limbs into freshly
 * allocated results (temporaries, freed within the step); every KEEP-th
 * step keeps its result in a table of TABLE entries (replacing the oldest:
 * medium-to-long lifetimes).  The peak live heap stays small, as cfrac's.
 *
 * usage: bignum [STEPS=2000000] [KEEP=64] [TABLE=256]
 */
#include "bench.h"

struct num {
    uint32_t n;                     /* limbs */
    uint32_t limb[];
};

static struct num *num_new(uint32_t n)
{
    struct num *x = bench_malloc(sizeof *x + n * sizeof(uint32_t));
    x->n = n;
    return x;
}

static struct num *num_rand(uint64_t *s, uint32_t n)
{
    struct num *x = num_new(n);
    for (uint32_t i = 0; i < n; i++)
        x->limb[i] = (uint32_t)bench_rand(s);
    return x;
}

/* The low max(a, b) + 1 limbs of a + b. */
static struct num *num_add(const struct num *a, const struct num *b)
{
    uint32_t n = (a->n > b->n ? a->n : b->n) + 1;
    struct num *r = num_new(n);
    uint64_t c = 0;
    for (uint32_t i = 0; i < n; i++) {
        c += (i < a->n ? a->limb[i] : 0) + (uint64_t)(i < b->n ? b->limb[i] : 0);
        r->limb[i] = (uint32_t)c;
        c >>= 32;
    }
    return r;
}

/* Schoolbook product, capped at 48 limbs (the numbers stay small). */
static struct num *num_mul(const struct num *a, const struct num *b)
{
    uint32_t n = a->n + b->n;
    if (n > 48)
        n = 48;
    struct num *r = num_new(n);
    memset(r->limb, 0, n * sizeof(uint32_t));
    for (uint32_t i = 0; i < a->n && i < n; i++) {
        uint64_t c = 0;
        for (uint32_t j = 0; j < b->n && i + j < n; j++) {
            c += (uint64_t)a->limb[i] * b->limb[j] + r->limb[i + j];
            r->limb[i + j] = (uint32_t)c;
            c >>= 32;
        }
    }
    return r;
}

static uint64_t num_sum(const struct num *x)
{
    uint64_t s = x->n;
    for (uint32_t i = 0; i < x->n; i++)
        s = s * 31 + x->limb[i];
    return s;
}

int main(int argc, char **argv)
{
    long steps = bench_arg(argc, argv, 1, 2000000);
    long keep = bench_arg(argc, argv, 2, 64);
    long tsize = bench_arg(argc, argv, 3, 256);
    if (keep < 1 || tsize < 1) {
        fprintf(stderr, "bignum: KEEP and TABLE must be >= 1\n");
        return 2;
    }
    struct num **table = calloc((size_t)tsize, sizeof *table);
    uint64_t seed = 7, check = 0;
    long kept = 0;
    for (long i = 0; i < steps; i++) {
        struct num *a = num_rand(&seed, 2 + (uint32_t)(bench_rand(&seed) % 20));
        struct num *b = num_rand(&seed, 2 + (uint32_t)(bench_rand(&seed) % 20));
        struct num *p = num_mul(a, b);
        struct num *q = num_add(p, a);
        struct num *r = num_add(q, b);
        check += num_sum(r);
        free(a);
        free(b);
        free(p);
        free(q);
        if (i % keep == 0) {
            long k = kept++ % tsize;
            free(table[k]);
            table[k] = r;
        } else {
            free(r);
        }
    }
    for (long k = 0; k < tsize; k++) {
        if (table[k])
            check += num_sum(table[k]);
        free(table[k]);
    }
    free(table);
    printf("bignum: %ld steps, %ld results kept, checksum %llx\n", steps, kept,
           (unsigned long long)check);
    return 0;
}
