/*
 * Commits one bad free of a buffer object, chosen by argv[1], after
 * printing the pointer involved ("ADDR 0x...").  Prints CONTINUED if the
 * program survives it.  Driven by bad_free.sh.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile size_t n32 = 32;
static char *shared;

static void *free_it(void *arg)
{
    (void)arg;
    free(shared);
    return NULL;
}

static void announce(void *p)
{
    printf("ADDR %p\n", p);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "double";
    char *p = malloc(n32);
    char *next = malloc(n32);
    memset(p, 1, n32);
    if (!strcmp(mode, "double")) {
        free(p);
        announce(p);
        free(p);
    } else if (!strcmp(mode, "interior")) {
        announce(p + 16);
        free(p + 16);
    } else if (!strcmp(mode, "misaligned")) {
        announce(p + 3);
        free(p + 3);
    } else if (!strcmp(mode, "never")) {
        /* The address the next malloc would return: never handed out. */
        announce(next + 32);
        free(next + 32);
    } else if (!strcmp(mode, "realloc-freed")) {
        free(p);
        announce(p);
        p = realloc(p, 100);
    } else if (!strcmp(mode, "remote-double")) {
        /* First free from another thread, second from the owner. */
        shared = p;
        pthread_t t;
        pthread_create(&t, NULL, free_it, NULL);
        pthread_join(t, NULL);
        announce(p);
        free(p);
    } else {
        return 2;
    }
    printf("CONTINUED\n");
    /* The allocator still works after the report. */
    for (int i = 0; i < 100000; i++)
        free(malloc(n32 + (size_t)(i % 200)));
    return 0;
}
