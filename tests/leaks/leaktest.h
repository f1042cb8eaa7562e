/*
 * Helpers shared by the leak-report corpus (tests/leaks/).
 *
 * Every program is built with -g -O0 -fno-builtin, so each allocation call
 * stays a real call on the line that carries its marker comment, and locals
 * live in stack slots (never only in a register).
 *
 * A conservative scanner treats any word that looks like a pointer as one,
 * so a leak that was once held in a dead stack frame could be hidden by the
 * stale copy.  The programs therefore allocate their leaks in helper
 * functions (whose frames die on return) and call lt_scrub_stack() before
 * the report runs, which overwrites those dead frames with zeros.
 */
#ifndef LEAKTEST_H
#define LEAKTEST_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LT_NOINLINE __attribute__((noinline, used))

/*
 * Overwrites the 64 KiB of stack below the caller's frame, and zeroes the
 * caller-saved registers: right after a leaky helper returns, a register
 * such as rdi (memset's argument) still holds the last block's address,
 * and a scan that looks at registers (valgrind's does; so may an
 * on-demand fbmalloc_leak_check()) would find it.  Callee-saved registers
 * cannot hold them: malloc restores them and -O0 code does not use them.
 */
static LT_NOINLINE void lt_scrub_stack(void)
{
    volatile char buf[64 * 1024];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = 0;
#if defined(__x86_64__)
    __asm__ volatile("xor %%eax, %%eax\n\t"
                     "xor %%ecx, %%ecx\n\t"
                     "xor %%edx, %%edx\n\t"
                     "xor %%esi, %%esi\n\t"
                     "xor %%edi, %%edi\n\t"
                     "xor %%r8d, %%r8d\n\t"
                     "xor %%r9d, %%r9d\n\t"
                     "xor %%r10d, %%r10d\n\t"
                     "xor %%r11d, %%r11d"
                     ::: "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9",
                         "r10", "r11", "memory");
#endif
}

/*
 * With LT_REQUIRE_FBMALLOC=1 in the environment (the driver sets it for
 * every run under LD_PRELOAD), exits with status 97 unless libfbmalloc is
 * really loaded: a test must never pass because the preload silently failed.
 */
/* Tells the main thread (a byte on ready_fd) that this thread is set up,
 * then blocks until the process exits (nobody writes block_fd).  The
 * caller's locals stay live in its frame meanwhile. */
static LT_NOINLINE void lt_park(int ready_fd, int block_fd)
{
    char c = 1;
    if (write(ready_fd, &c, 1) != 1)
        return;
    if (read(block_fd, &c, 1) < 0)
        return;
}

static inline void lt_init(void)
{
    const char *req = getenv("LT_REQUIRE_FBMALLOC");
    if (req && strcmp(req, "1") == 0
        && dlsym(RTLD_DEFAULT, "fbmalloc_version") == NULL) {
        fprintf(stderr, "leaktest: libfbmalloc is not loaded\n");
        exit(97);
    }
}

#ifdef __cplusplus
}
#endif

#endif
