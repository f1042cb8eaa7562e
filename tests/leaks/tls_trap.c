/*
 * tls_trap.c -- clean: thread-local storage is never a leak.  The main
 * program has its own __thread variable; a dlopen()ed library's __thread
 * array (dynamic TLS, malloc()ed by ld.so on first use in each thread) is
 * touched by the main thread, by a thread still blocked at exit, and by a
 * thread that has finished (its TLS block and DTV live on in glibc's
 * cache of thread stacks).  The library stays loaded, and keeps a block
 * in a global of its own (still reachable).  Blocks whose only pointer is
 * a __thread variable (of the program: static TLS; of the library: a
 * dynamic TLS block, itself reachable only through the DTV) in the main
 * thread or in the thread blocked at exit are reachable too.
 * Usage: tls_trap /path/to/libtlsdl.so
 *
 * EXPECT: no leaks
 */
#include <pthread.h>
#include <unistd.h>

#include "leaktest.h"

static __thread char main_tls[512];
static __thread void *main_tls_ptr;
static int (*touch)(int);
static void (*hold)(size_t);
static int ready_pipe[2];
static int block_pipe[2];

static void *finished_thread(void *arg)
{
    (void)arg;
    main_tls[0] = 1;
    touch(2);
    return NULL;
}

static void *blocked_thread(void *arg)
{
    (void)arg;
    main_tls[0] = 2;
    touch(3);
    main_tls_ptr = malloc(210);
    memset(main_tls_ptr, 0, 210);
    hold(220);
    lt_scrub_stack();
    lt_park(ready_pipe[1], block_pipe[0]);   /* blocks until exit */
    return NULL;
}

int main(int argc, char **argv)
{
    lt_init();
    if (argc < 2) {
        fprintf(stderr, "usage: %s libtlsdl.so\n", argv[0]);
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    touch = (int (*)(int))dlsym(h, "tls_touch");
    void (*keep)(void) = (void (*)(void))dlsym(h, "tls_keep");
    if (!touch || !keep || pipe(ready_pipe) || pipe(block_pipe))
        return 2;
    hold = (void (*)(size_t))dlsym(h, "tls_hold");
    if (!hold)
        return 2;
    keep();
    main_tls[0] = 3;
    touch(1);
    main_tls_ptr = malloc(110);
    memset(main_tls_ptr, 0, 110);
    hold(120);
    pthread_t t1, t2;
    if (pthread_create(&t1, NULL, finished_thread, NULL))
        return 1;
    pthread_join(t1, NULL);
    if (pthread_create(&t2, NULL, blocked_thread, NULL))
        return 1;
    char c;
    if (read(ready_pipe[0], &c, 1) != 1)
        return 1;
    lt_scrub_stack();
    return 0;
}
