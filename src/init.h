/*
 * Process life cycle (init.c): lazy initialisation of every module, the
 * constructor and the exit reports, thread exit and fork.
 */
#ifndef FB_INIT_H
#define FB_INIT_H

/* Returns 1 once the process is initialised, 0 if not (yet): too early in
 * start-up, or another thread is at it.  Re-entrant; allocates nothing. */
int fb_init(void);

/* Gives the calling thread a destructor call at exit, and with tracking
 * on records its stack for leak checks.  Called with t->busy set. */
void fb_init_register_thread(void);

#endif
