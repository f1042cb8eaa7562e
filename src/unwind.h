/*
 * libunwind, loaded only by a process that checks leaks.
 *
 * Linking libunwind.so.8 would make every process load and relocate it and
 * its liblzma, tracking or not (about 0.1 ms per exec), and Debian's
 * libunwind.a is not position-independent.  Call stacks are captured with
 * libgcc's unwinder (track.c); leakroots.c, which walks up to the exit() frame
 * and libc's start frames with libunwind's register access, includes this
 * header instead of <libunwind.h>: it keeps libunwind's types and
 * replaces the five entry points it uses with calls through a table,
 * which fb_unw_load() fills with dlopen("libunwind.so.8") when tracking
 * starts (fb_leak_init, at initialisation: from a constructor, or from
 * the first malloc of one, never under our own locks).  Until then, or if
 * the library cannot be loaded, the entries fail cleanly: unw_getcontext
 * and unw_init_local return an error, so the exit frame is not found (the
 * whole stack is scanned) and nothing faults.
 */
#ifndef FB_UNWIND_H
#define FB_UNWIND_H

#ifndef UNW_LOCAL_ONLY
#define UNW_LOCAL_ONLY
#endif
#include <libunwind.h>

#include "fb.h"

struct fb_unw_fns {
    int (*getcontext)(unw_context_t *);
    int (*init_local)(unw_cursor_t *, unw_context_t *);
    int (*step)(unw_cursor_t *);
    int (*get_reg)(unw_cursor_t *, unw_regnum_t, unw_word_t *);
    int (*get_proc_info)(unw_cursor_t *, unw_proc_info_t *);
};
extern FB_HIDDEN struct fb_unw_fns fb_unw;

/* Loads libunwind (once; later calls return the first answer): 1 if the
 * table now holds libunwind's functions, 0 if it keeps the failing stubs. */
int fb_unw_load(void);

#undef unw_getcontext
#undef unw_init_local
#undef unw_step
#undef unw_get_reg
#undef unw_get_proc_info
#define unw_getcontext(uc) (fb_unw.getcontext(uc))
#define unw_init_local(cur, uc) (fb_unw.init_local((cur), (uc)))
#define unw_step(cur) (fb_unw.step(cur))
#define unw_get_reg(cur, reg, val) (fb_unw.get_reg((cur), (reg), (val)))
#define unw_get_proc_info(cur, pi) (fb_unw.get_proc_info((cur), (pi)))

#endif
