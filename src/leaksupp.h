/*
 * Leak suppressions (FBMALLOC_SUPPRESSIONS), in LeakSanitizer's format:
 * one "leak:<pattern>" per line, matched against every frame's function,
 * module and source file.  Used by leak.c.
 */
#ifndef FB_LEAKSUPP_H
#define FB_LEAKSUPP_H

#include "track.h"

/* Reads the file (the first call only: see leaksupp.c); returns the
 * number of patterns loaded. */
size_t fb_leaksupp_load(void);
/* Whether a pattern matches a frame of site s (needs fb_sym_open). */
int fb_leaksupp_match(const struct fb_track_site *s);

#endif
