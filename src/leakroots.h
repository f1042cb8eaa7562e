/*
 * The leak check's roots (used by leak.c): the registry of live threads
 * with their stacks and thread pointers, stopping the other threads at
 * exit, and marking, through leakscan, everything the program can still
 * reach from its stacks, registers, static and dynamic TLS, the writable
 * segments of its loaded objects and its own anonymous mappings, clamped
 * to what /proc/self/maps says is readable.
 */
#ifndef FB_LEAKROOTS_H
#define FB_LEAKROOTS_H

#include <setjmp.h>
#include <stdint.h>

/* Where an on-demand check was called from: the caller's stack pointer
 * and its callee-saved registers, captured on entry to the public API
 * (interpose.c, through leak.h). */
struct fb_leak_caller {
    uintptr_t sp;
    jmp_buf regs;
};

/* At start-up (lookups that must not happen during a check). */
void fb_leakroots_init(void);

/* The thread registry: see fb_leak_register_thread and the others in
 * leak.h, which call these. */
void fb_leakroots_register_thread(void);
void fb_leakroots_unregister_thread(void);
int fb_leakroots_on_a_stack(uintptr_t a);
void fb_leakroots_fork_child(void);

/* A check's roots, in this order, on the check's thread:
 *   fb_leakroots_begin    locks the registry (a thread that unregisters
 *                         could free its stack under the scan) and reads
 *                         /proc/self/maps;
 *   fb_leakroots_mark     (with the blocks collected and sorted) stops the
 *                         other threads if at_exit, then marks every root;
 *   fb_leakroots_stopped  whether other threads are stopped now;
 *   fb_leakroots_end      resumes them and unlocks the registry.
 * caller: for checks on demand, NULL at exit. */
void fb_leakroots_begin(void);
/* At exit, without a check: locks the registry and stops the other
 * threads that can be stopped; fb_leakroots_end resumes them and
 * unlocks. */
void fb_leakroots_pause_others(void);
void fb_leakroots_mark(int at_exit, const struct fb_leak_caller *caller);
int fb_leakroots_stopped(void);
void fb_leakroots_end(void);

#endif
