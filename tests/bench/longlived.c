/*
 * longlived: a growing map that is never freed until the end, interleaved
 * with temporaries.
 *
 * Models the mixed-lifetime programs of mimalloc-bench ("sh6bench"/
 * "sh8bench" keep part of each batch alive while freeing the rest; "cfrac"
 * and "espresso" interleave long-lived results with transient
 * intermediates): a chained hash map whose nodes, keys and values live until
 * exit, built while every insert also makes and frees a few short-lived
 * buffers (key formatting, a lookup scratch vector, a string join), and
 * while some values are replaced (medium lifetime).  Long-lived objects
 * mixed into the same pages as temporaries is what pins memory in
 * allocators that recycle whole regions: watch the peak RSS column.
 *
 * usage: longlived [INSERTS=1000000] [TEMPS_PER_INSERT=6]
 */
#include "bench.h"

struct node {
    struct node *next;
    char *key;
    char *value;
    uint64_t hash;
    size_t value_size;
};

static struct node **table;
static size_t table_size, count;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

static void grow(void)
{
    size_t nsize = table_size ? table_size * 2 : 1024;
    struct node **nt = calloc(nsize, sizeof *nt);
    if (nt == NULL)
        exit(4);
    for (size_t i = 0; i < table_size; i++) {
        struct node *n = table[i], *next;
        for (; n != NULL; n = next) {
            next = n->next;
            n->next = nt[n->hash & (nsize - 1)];
            nt[n->hash & (nsize - 1)] = n;
        }
    }
    free(table);
    table = nt;
    table_size = nsize;
}

static struct node *lookup(const char *key, uint64_t h)
{
    if (table_size == 0)
        return NULL;
    for (struct node *n = table[h & (table_size - 1)]; n; n = n->next)
        if (n->hash == h && strcmp(n->key, key) == 0)
            return n;
    return NULL;
}

static char *new_value(uint64_t *rng, size_t *size, uint64_t tag)
{
    size_t n = bench_range(rng, 16, 200);
    char *v = bench_malloc(n);
    memset(v, 'v', n);
    bench_tag(v, n, tag);
    *size = n;
    return v;
}

/* The key of insert number i, formatted into a fresh temporary buffer. */
static char *make_key(long i, int *len)
{
    char *buf = bench_malloc(64);
    *len = snprintf(buf, 64, "key:%ld:%llx", i,
                    (unsigned long long)((uint64_t)i * 0x9E3779B97F4A7C15ULL
                                         >> 48));
    return buf;
}

int main(int argc, char **argv)
{
    long inserts = bench_arg(argc, argv, 1, 1000000);
    long temps = bench_arg(argc, argv, 2, 6);
    uint64_t rng = 42;
    long replaced = 0;

    for (long i = 0; i < inserts; i++) {
        int len;
        char *buf = make_key(i, &len);
        uint64_t h = hash_str(buf);

        /* Temporaries: scratch buffers of assorted sizes. */
        for (long t = 0; t < temps; t++) {
            size_t n = bench_range(&rng, 16, 384);
            char *tmp = bench_malloc(n);
            memcpy(tmp, buf, (size_t)len < n ? (size_t)len : n);
            bench_tag(tmp, n, (uint64_t)t);
            bench_keep(tmp);
            bench_check(tmp, n, (uint64_t)t, "longlived");
            free(tmp);
        }

        if (count + 1 > table_size / 2 * 3)
            grow();

        /* Long-lived: node, key copy and value. */
        struct node *n = bench_malloc(sizeof *n);
        n->key = bench_malloc((size_t)len + 1);
        memcpy(n->key, buf, (size_t)len + 1);
        n->hash = h;
        n->value = new_value(&rng, &n->value_size, h);
        n->next = table[h & (table_size - 1)];
        table[h & (table_size - 1)] = n;
        count++;
        free(buf);

        /* Medium-lived: every 8th insert replaces the value of an older
         * key (looked up through another temporary key buffer). */
        if ((i & 7) == 7) {
            long victim = (long)(bench_rand(&rng) % (uint64_t)(i + 1));
            char *vk = make_key(victim, &len);
            struct node *m = lookup(vk, hash_str(vk));
            free(vk);
            if (m == NULL) {
                fprintf(stderr, "longlived: key %ld lost\n", victim);
                return 3;
            }
            bench_check(m->value, m->value_size, m->hash, "longlived");
            free(m->value);
            m->value = new_value(&rng, &m->value_size, m->hash);
            replaced++;
        }
    }

    /* Verify and free everything. */
    size_t freed = 0;
    for (size_t i = 0; i < table_size; i++) {
        struct node *n;
        while ((n = table[i]) != NULL) {
            table[i] = n->next;
            bench_check(n->value, n->value_size, n->hash, "longlived");
            free(n->value);
            free(n->key);
            free(n);
            freed++;
        }
    }
    free(table);
    printf("longlived: %ld inserts, %ld values replaced, %zu nodes freed\n",
           inserts, replaced, freed);
    return freed == count ? 0 : 1;
}
