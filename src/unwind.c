/*
 * libunwind's entry points, looked up in libunwind.so.8 on first use (see
 * unwind.h for why it is not linked).
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include <dlfcn.h>
#include <stdatomic.h>

/* The names the five macros of <libunwind.h> expand to for this
 * architecture (e.g. unw_step -> _ULx86_64_step), taken before unwind.h
 * replaces the macros.  unw_getcontext is function-like: its target,
 * unw_tdep_getcontext, is an object-like macro. */
#define FB_UNW_STR2(x) #x
#define FB_UNW_STR(x) FB_UNW_STR2(x)
static const char *const fb_unw_names[] = {
    FB_UNW_STR(unw_tdep_getcontext), FB_UNW_STR(unw_init_local),
    FB_UNW_STR(unw_step),            FB_UNW_STR(unw_get_reg),
    FB_UNW_STR(unw_get_proc_info),
};

#include "unwind.h"

static int stub_getcontext(unw_context_t *uc)
{
    (void)uc;
    return -1;
}
static int stub_init_local(unw_cursor_t *cur, unw_context_t *uc)
{
    (void)cur;
    (void)uc;
    return -UNW_EUNSPEC;
}
static int stub_step(unw_cursor_t *cur)
{
    (void)cur;
    return 0;                          /* no more frames */
}
static int stub_get_reg(unw_cursor_t *cur, unw_regnum_t reg, unw_word_t *v)
{
    (void)cur;
    (void)reg;
    *v = 0;
    return -UNW_EUNSPEC;
}
static int stub_get_proc_info(unw_cursor_t *cur, unw_proc_info_t *pi)
{
    (void)cur;
    (void)pi;
    return -UNW_EUNSPEC;
}

struct fb_unw_fns fb_unw = {
    stub_getcontext, stub_init_local, stub_step, stub_get_reg,
    stub_get_proc_info,
};

/* 0: not tried, 1: loaded, -1: failed. */
static _Atomic int fb_unw_state;

int fb_unw_load(void)
{
    int s = atomic_load_explicit(&fb_unw_state, memory_order_acquire);
    if (s != 0)
        return s > 0;
    /* RTLD_NOW: no lazy binding later, from inside someone's malloc.
     * RTLD_LOCAL: libunwind's names stay out of the program's scope. */
    void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
    void *f[5];
    int ok = h != NULL;
    for (int i = 0; ok && i < 5; i++)
        ok = (f[i] = dlsym(h, fb_unw_names[i])) != NULL;
    if (ok) {
        /* All or none: a cursor made by libunwind is read by libunwind. */
        fb_unw.getcontext = (int (*)(unw_context_t *))f[0];
        fb_unw.init_local = (int (*)(unw_cursor_t *, unw_context_t *))f[1];
        fb_unw.step = (int (*)(unw_cursor_t *))f[2];
        fb_unw.get_reg =
            (int (*)(unw_cursor_t *, unw_regnum_t, unw_word_t *))f[3];
        fb_unw.get_proc_info = (int (*)(unw_cursor_t *, unw_proc_info_t *))f[4];
    }
    atomic_store_explicit(&fb_unw_state, ok ? 1 : -1, memory_order_release);
    return ok;
}
