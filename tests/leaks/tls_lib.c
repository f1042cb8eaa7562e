/*
 * tls_lib.c -- shared module (libtlsdl.so) with a thread-local array,
 * dlopen()ed by tls_trap.c: every thread that touches it makes ld.so
 * allocate a dynamic TLS block (through malloc, from __tls_get_addr).
 */
#include <string.h>

static __thread char lib_tls[8192];

int tls_touch(int v);
int tls_touch(int v)
{
    memset(lib_tls, v, sizeof lib_tls);
    return lib_tls[100];
}
