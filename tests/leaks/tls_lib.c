/*
 * tls_lib.c -- shared module (libtlsdl.so) with a thread-local array,
 * dlopen()ed by tls_trap.c: every thread that touches it makes ld.so
 * allocate a dynamic TLS block (through malloc, from __tls_get_addr).
 */
#include <stdlib.h>
#include <string.h>

static __thread char lib_tls[8192];
static __thread void *lib_tls_ptr;
static void *kept;

/* A block whose only pointer is in this library's dynamic TLS block of
 * the calling thread: reachable through the thread's DTV. */
void tls_hold(size_t n);
void tls_hold(size_t n)
{
    lib_tls_ptr = malloc(n);
    memset(lib_tls_ptr, 0, n);
}

/* A block held by the library's global: reachable (the library stays
 * loaded, so its writable segment is a root). */
void tls_keep(void);
void tls_keep(void)
{
    kept = malloc(777);
    memset(kept, 0, 777);
}

int tls_touch(int v);
int tls_touch(int v)
{
    memset(lib_tls, v, sizeof lib_tls);
    return lib_tls[100];
}
