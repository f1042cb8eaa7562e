/*
 * dl_lib.c -- shared module (libleakdl.so) that dl_main.c dlopen()s, calls
 * and dlclose()s.  See dl_main.c for the expected leaks.
 */
#include <stdlib.h>
#include <string.h>

static void *kept;

/* Held by the library's own global: reachable while the library is
 * loaded, a direct leak once dlclose() has unmapped that global. */
void lib_keep(void);
void lib_keep(void)
{
    kept = malloc(1234); /* LEAK: dl-kept */
    memset(kept, 0, 1234);
}

void lib_make_leak(int n);
void lib_make_leak(int n)
{
    for (int i = 0; i < n; i++) {
        char *p = malloc(4321); /* LEAK: dl */
        memset(p, 0, 4321);
    }
}
