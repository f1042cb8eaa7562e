/*
 * Leak check: which tracked blocks are still allocated, and which of those
 * can no longer be reached from the program's roots; heap snapshots and
 * scoped checks.  See leak.c for its parts.
 */
#ifndef FB_LEAK_H
#define FB_LEAK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fb.h"
#include "leakroots.h"     /* struct fb_leak_caller */

/* Runs a check and writes the report to FBMALLOC_OUTPUT.  Returns the
 * number of leaked blocks (direct + indirect, not suppressed), or -1 when
 * tracking is off.  at_exit: the process is exiting (the live stack is
 * found above exit(); the caller applies the exit-code option once the
 * other exit reports are written).  caller: for checks on demand, NULL at
 * exit. */
long fb_leak_check(int at_exit, const struct fb_leak_caller *caller);

/* Writes the live heap grouped by call site to fd (-1: FBMALLOC_OUTPUT).
 * Returns 0, or -1 when tracking is off. */
int fb_leak_snapshot(int fd);
/* FBMALLOC_SNAPSHOT_SIGNAL: the handler raises fb_leak_snapshot_pending;
 * the slow path calls fb_leak_snapshot_pending_run. */
void fb_leak_install_snapshot_signal(void);
extern _Atomic int fb_leak_snapshot_pending;
void fb_leak_snapshot_pending_run(void);

/* Scoped checks: see fbmalloc.h.  note: a block this thread allocated;
 * one load until some thread opens a scope (it is on every tracked
 * allocation's path). */
int fb_leak_scope_begin(void);
long fb_leak_scope_end(void);
extern FB_HIDDEN _Atomic int fb_leak_scopes_used;
void fb_leak_scope_note_slow(const void *p);
static inline void fb_leak_scope_note(const void *p)
{
    if (__builtin_expect(atomic_load_explicit(&fb_leak_scopes_used, memory_order_relaxed), 0))
        fb_leak_scope_note_slow(p);
}

/* At exit, FBMALLOC_CANARY's check of every live block with the other
 * threads stopped, and its report; fb_leak_check(1, ...) does the same
 * inside its own stop. */
void fb_leak_canary_at_exit(void);

/* Start-up work that must not happen during a check. */
void fb_leak_init(void);

/* Records the calling thread's stack range (called once per thread that
 * allocates, when tracking is on), so other threads' checks scan it. */
void fb_leak_register_thread(void);
void fb_leak_unregister_thread(void);
/* Is a inside the stack of a registered (live) thread?  Exact bounds from
 * the thread registry; 0 when tracking has no registry. */
int fb_leak_on_a_stack(uintptr_t a);
/* In a fork child: only the calling thread is left. */
void fb_leak_fork_child(void);

#endif
