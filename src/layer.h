/*
 * The one interface of the debugging layers that wrap allocation
 * (canary.c): the allocator below them, as a table the dispatch layer
 * (alloc.c) passes on every call.  A layer calls down through it and
 * never names the module that implements it, so layers stack without
 * knowing each other.
 */
#ifndef FB_LAYER_H
#define FB_LAYER_H

#include <stddef.h>

struct fb_layer_below {
    /* 16-byte aligned block of n bytes (n may be 0), or NULL (ENOMEM). */
    void *(*malloc)(size_t n);
    /* align: a power of two above 16. */
    void *(*memalign)(size_t align, size_t n);
    void (*free)(void *p);
    /* Usable bytes of a block the layer below returned. */
    size_t (*usable)(const void *p);
};

#endif
