/*
 * dl_lib.c -- shared module (libleakdl.so) that dl_main.c dlopen()s, calls
 * and dlclose()s.  See dl_main.c for the expected leaks.
 */
#include <stdlib.h>
#include <string.h>

void lib_make_leak(int n);
void lib_make_leak(int n)
{
    for (int i = 0; i < n; i++) {
        char *p = malloc(4321); /* LEAK: dl */
        memset(p, 0, 4321);
    }
}
