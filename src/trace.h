/*
 * Allocation log (FBMALLOC_TRACE=path, "%p" = pid): every malloc-family
 * operation, in a compact binary format, through a per-thread buffer that
 * is written out with write(2) when full, at thread exit, at fork and at
 * process exit.  scripts/fbmalloc-trace turns a log into text, a per-site
 * summary, a size histogram and a plot of live bytes over time.
 *
 * With the log on, the fast-path gates are closed (as for statistics) and
 * call sites are captured as for leak reports (without the leak report),
 * so each event carries its site id.  Hooks run in our slow paths only.
 */
#ifndef FB_TRACE_H
#define FB_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "fb.h"

enum fb_trace_op {
    FB_TR_MALLOC = 1,   /* ptr = new block, size = request */
    FB_TR_FREE = 2,     /* ptr = freed block, size = 0 */
    FB_TR_REALLOC = 3,  /* in place: ptr = block, size = new request */
};

extern FB_HIDDEN int fb_trace_on;

/* At start-up, after options: opens nothing yet (the file is created on
 * first flush).  Returns 1 if FBMALLOC_TRACE names a file. */
int fb_trace_init(void);

/* One event.  site: call-site id (track.h), 0 if unknown. */
void fb_trace_event(enum fb_trace_op op, const void *ptr, size_t size,
                    uint32_t site);

/* Writes out the calling thread's buffer (thread exit). */
void fb_trace_thread_exit(void);
/* At process exit: every buffer still held, then the call-site table. */
void fb_trace_at_exit(void);
/* fork: the child drops the parent's unwritten events and opens its own
 * file (its pid differs). */
void fb_trace_fork_prepare(void);
void fb_trace_fork_parent(void);
void fb_trace_fork_child(void);

#endif
