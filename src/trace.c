/*
 * Allocation log: not implemented yet (see trace.h for the interface the
 * implementation provides).  Until then, asking for it says so, once.
 */
#include "trace.h"

#include <string.h>

#include "fmt.h"
#include "options.h"

int fb_trace_on;

int fb_trace_init(void)
{
    if (strcmp(fb_opt.trace, "none") != 0)
        fb_fmt_dprintf(2, "fbmalloc: FBMALLOC_TRACE is not available in this "
                          "build yet; no log is written\n");
    return 0;
}

void fb_trace_event(enum fb_trace_op op, const void *ptr, size_t size,
                    uint32_t site)
{
    (void)op;
    (void)ptr;
    (void)size;
    (void)site;
}

void fb_trace_thread_exit(void) {}
void fb_trace_at_exit(void) {}
void fb_trace_fork_prepare(void) {}
void fb_trace_fork_parent(void) {}
void fb_trace_fork_child(void) {}
