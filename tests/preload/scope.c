/*
 * Scoped leak checks.  Scope A frees everything it allocates (end returns
 * 0); scope B leaves two blocks from forget_two() (end returns 2, report
 * names forget_two); a block allocated before B and freed inside it, and
 * a block another thread allocates during B, are not B's; nested scopes
 * report their own blocks.  Prints the returned counts: "0 2 1 1".
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *other_block;

__attribute__((noinline)) static void forget_two(void **keep)
{
    keep[0] = malloc(100);
    keep[1] = malloc(3000);
}

static void *other(void *arg)
{
    (void)arg;
    other_block = malloc(77);
    return NULL;
}

int main(void)
{
    int (*begin)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "fbmalloc_scope_begin");
    long (*end)(void) = (long (*)(void))dlsym(RTLD_DEFAULT, "fbmalloc_scope_end");
    if (!begin || !end)
        return 3;
    long r[4];
    void *keep[3];

    if (begin() < 0)
        return 4;
    for (int i = 0; i < 1000; i++)
        free(malloc((size_t)i + 1));
    r[0] = end();

    void *before = malloc(50);
    begin();
    free(before);
    forget_two(keep);
    pthread_t t;
    pthread_create(&t, NULL, other, NULL);
    pthread_join(t, NULL);
    r[1] = end();

    begin();
    keep[2] = malloc(10);          /* outer scope's */
    begin();
    void *inner = malloc(20);      /* inner scope's */
    r[2] = end();
    free(inner);
    r[3] = end();
    printf("%ld %ld %ld %ld\n", r[0], r[1], r[2], r[3]);
    free(keep[0]);
    free(keep[1]);
    free(keep[2]);
    free(other_block);
    return 0;
}
