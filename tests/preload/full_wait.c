/*
 * A full buffer's wait, in the default mode: while every epoch of the
 * thread's buffer is pinned, its requests go to jemalloc until a rescan.
 * Every result must stay 16-byte aligned and freeable whichever request
 * ends a wait: malloc(0), which takes the generic way, once ended one
 * without reopening the dispatch's door, after which requests under 16
 * bytes reached jemalloc unrounded (8-byte aligned) and their frees were
 * refused as invalid pointers.  Run with FBMALLOC_LIFETIME=0 (so that the
 * kept blocks' site is not sent away: the buffer must fill) and without.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { KEEP = 200000, ROUNDS = 100000 };
static void *keep[KEEP];
static volatile size_t n0 = 0, n8 = 8, n64 = 64;

int main(void)
{
    for (int i = 0; i < KEEP; i++)       /* 12 MiB of live 64-byte blocks */
        keep[i] = malloc(n64);
    unsigned long misaligned = 0;
    for (int i = 0; i < ROUNDS; i++) {
        void *z = malloc(n0), *p = malloc(n8), *q = calloc(1, n8);
        if (!z || !p || !q) {
            printf("FAIL round %d: NULL from malloc(0), malloc(8) or calloc(1, 8)\n", i);
            return 1;
        }
        misaligned += ((uintptr_t)z | (uintptr_t)p | (uintptr_t)q) & 15 ? 1 : 0;
        *(volatile char *)p = 1;
        free(z);
        free(p);
        free(q);
    }
    for (int i = 0; i < KEEP; i++)
        free(keep[i]);
    if (misaligned) {
        printf("FAIL %lu of %d rounds got a block that is not 16-byte aligned\n", misaligned,
               ROUNDS);
        return 1;
    }
    printf("ok   %d rounds of malloc(0), malloc(8), calloc(1, 8) with the buffer full: "
           "all aligned and freed\n", ROUNDS);
    return 0;
}
