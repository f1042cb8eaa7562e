/*
 * Process life cycle (init.c): lazy initialisation of every module, the
 * constructor and the exit reports, thread exit and fork.
 */
#ifndef FB_INIT_H
#define FB_INIT_H

#include "fb.h"

/* Non-zero when statistics, tracking, the log, failure injection or
 * canaries watch every call (set by fb_init, before it reports the
 * process initialised): the dispatch then takes its generic path, and
 * the buffers' fast-path gates are shut. */
extern FB_HIDDEN int fb_observe;
/* The only mode on is one observer (alloc.c's observed door): leak
 * tracking, or the statistics; 0 otherwise. */
enum { FB_OBSERVE_TRACK = 1, FB_OBSERVE_STATS = 2 };
extern FB_HIDDEN int fb_observe_one;

/* Returns 1 once the process is initialised, 0 if not (yet): too early in
 * start-up, or another thread is at it.  Re-entrant; allocates nothing. */
int fb_init(void);

/* Gives the calling thread a destructor call at exit, and with tracking
 * on records its stack for leak checks.  Called with t->busy set. */
void fb_init_register_thread(void);

#endif
