/* The cached-rule stack walker (src/cfi.c) against libgcc's unwinder,
 * from the same point, on stacks of the kinds real programs have: deep
 * recursion, frames addressed through rbp (alloca), big frames, frames in
 * libc (a qsort callback), a thread, and a signal handler (the walker
 * must then give up, never return a wrong stack).  Each walk is done
 * twice: on an empty and on a warm rule cache. */
#include <alloca.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cfi.h"
#include "check.h"

#define MAXF 64

/* libgcc's unwinder, declared as src/track.c does (the <unwind.h> on the
 * include path may be libunwind's). */
struct _Unwind_Context;
typedef enum { _URC_NO_REASON = 0, _URC_END_OF_STACK = 5 } _Unwind_Reason_Code;
typedef _Unwind_Reason_Code (*trace_fn)(struct _Unwind_Context *, void *);
_Unwind_Reason_Code _Unwind_Backtrace(trace_fn, void *);
uintptr_t _Unwind_GetIP(struct _Unwind_Context *);
uintptr_t _Unwind_GetCFA(struct _Unwind_Context *);

struct bt {
    uintptr_t f[MAXF], s[MAXF];
    int n;
};

static _Unwind_Reason_Code gcc_frame(struct _Unwind_Context *ctx, void *arg)
{
    struct bt *b = arg;
    uintptr_t ip = _Unwind_GetIP(ctx);
    if (!ip)
        return _URC_END_OF_STACK;
    b->f[b->n] = ip;
    b->s[b->n] = _Unwind_GetCFA(ctx) - sizeof(uintptr_t);
    return ++b->n < MAXF ? _URC_NO_REASON : _URC_END_OF_STACK;
}

/* Also written from the signal handler. */
static volatile int compared, gave_up, mismatches;

/* Walks with both from here. */
static __attribute__((noinline)) void compare(void)
{
    struct bt mine = {{0}, {0}, 0}, gcc = {{0}, {0}, 0};
    for (int round = 0; round < 2; round++) {
        mine.n = fb_cfi_backtrace(mine.f, mine.s, MAXF, NULL);
        gcc.n = 0;
        _Unwind_Backtrace(gcc_frame, &gcc);
        if (mine.n < 0) {
            gave_up++;
            continue;
        }
        /* Frame 0 of both is a return into compare() (from two calls);
         * every frame after it must agree, return address and slot. */
        int ok = mine.n > 1 && gcc.n == mine.n;
        for (int i = 1; ok && i < mine.n; i++)
            ok = mine.f[i] == gcc.f[i] && mine.s[i] == gcc.s[i] &&
                 *(uintptr_t *)mine.s[i] == mine.f[i];
        if (!ok) {
            mismatches++;
            fprintf(stderr, "mismatch: mine %d frames, libgcc %d\n", mine.n, gcc.n);
            for (int i = 0; i < MAXF && (i < mine.n || i < gcc.n); i++)
                fprintf(stderr, "  %2d %#lx %#lx | %#lx %#lx\n", i,
                        i < mine.n ? (unsigned long)mine.f[i] : 0UL,
                        i < mine.n ? (unsigned long)mine.s[i] : 0UL,
                        i < gcc.n ? (unsigned long)gcc.f[i] : 0UL,
                        i < gcc.n ? (unsigned long)gcc.s[i] : 0UL);
        }
        compared++;
    }
}

static __attribute__((noinline)) int recurse(int d)
{
    if (d == 0) {
        compare();
        return 1;
    }
    volatile char pad[40 + d * 8];
    pad[0] = (char)d;
    return recurse(d - 1) + pad[0];
}

static __attribute__((noinline)) int with_alloca(size_t n)
{
    char *p = alloca(n);              /* CFA through rbp */
    memset(p, 1, n);
    compare();
    return p[n / 2];
}

static __attribute__((noinline)) int big_frame(void)
{
    volatile char big[100000];
    big[0] = 1;
    compare();
    return big[0];
}

static int cmp_int(const void *a, const void *b)
{
    static int once;
    if (!once++)
        compare();                   /* from inside libc's qsort */
    return *(const int *)a - *(const int *)b;
}

static void *thread_main(void *arg)
{
    (void)arg;
    recurse(5);
    with_alloca(300);
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    compare();
}

int main(void)
{
    compare();
    recurse(30);
    with_alloca(1000);
    with_alloca(17);
    big_frame();
    int v[50];
    for (int i = 0; i < 50; i++)
        v[i] = (i * 37) % 50;
    qsort(v, 50, sizeof v[0], cmp_int);
    pthread_t t;
    pthread_create(&t, NULL, thread_main, NULL);
    pthread_join(t, NULL);
    int before = gave_up;
    signal(SIGUSR1, on_signal);
    raise(SIGUSR1);
    CHECK(gave_up > before);         /* a signal frame: libgcc's job */
    CHECK_EQ_U(mismatches, 0);
    CHECK_EQ_U(compared, 16);          /* 8 walks compared twice */
    CHECK_EQ_U(gave_up, 2);
    /* A full walk of at most max frames. */
    uintptr_t f[3], s[3];
    CHECK(fb_cfi_backtrace(f, s, 3, NULL) == 3);
    return check_done("cfi");
}
