/*
 * The rare path of C++ operator new: the new_handler loop and
 * std::bad_alloc, as the C++ standard asks ([new.delete.single]).
 *
 * We are C and do not link libstdc++: a program calling operator new has a
 * C++ runtime loaded, so its functions are looked up when first needed
 * (dlsym may allocate; we hold no lock here).
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>

#include "alloc.h"
#include "fb.h"
#include "fmt.h"

typedef void (*fb_handler_fn)(void);

static void *retry(size_t n, size_t align)
{
    if (align <= FB_ALIGN)
        return fb_alloc_malloc(n, 0);
    return fb_alloc_aligned(align, n);
}

FB_COLD void *fb_cxx_new_fail(size_t n, size_t align, int nothrow)
{
    fb_handler_fn (*get_handler)(void) =
        (fb_handler_fn(*)(void))dlsym(RTLD_DEFAULT, "_ZSt15get_new_handlerv");
    for (;;) {
        fb_handler_fn h = get_handler ? get_handler() : NULL;
        if (!h)
            break;
        h();                         /* may free memory, or throw */
        void *p = retry(n, align);
        if (p)
            return p;
    }
    if (nothrow) {
        errno = ENOMEM;
        return NULL;
    }
    /* libstdc++, then libc++. */
    void (*thrower)(void) =
        (void (*)(void))dlsym(RTLD_DEFAULT, "_ZSt17__throw_bad_allocv");
    if (!thrower)
        thrower = (void (*)(void))dlsym(RTLD_DEFAULT,
                                        "_ZNSt3__117__throw_bad_allocEv");
    if (thrower)
        thrower();
    fb_fmt_dprintf(2, "fbmalloc: operator new(%lu) failed and no C++ runtime "
                      "to throw std::bad_alloc; aborting\n",
                   (unsigned long)n);
    abort();
}
