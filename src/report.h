/*
 * Reports to the user: bad frees, notes.  Cold code, written with our own
 * formatter (these run inside malloc/free).
 */
#ifndef FB_REPORT_H
#define FB_REPORT_H

#include <stdint.h>

#include "fmt.h"
#include "symbolize.h"
#include "track.h"

enum fb_bad_kind { FB_BAD_DOUBLE, FB_BAD_INVALID };

/* Reports a double or invalid free/realloc of ptr on stderr, counts it,
 * and aborts unless FBMALLOC_ON_BAD_FREE=ignore.  op: "free", "realloc". */
void fb_report_bad_free(const void *ptr, enum fb_bad_kind kind, const char *op);

/* One frame of a recorded stack, symbolised (fb_sym_open first). */
struct fb_report_frame {
    struct fb_sym sym;
    const char *module;       /* ELF path, "" if unknown */
    uintptr_t offset;         /* module-relative address of the call */
};
void fb_report_frame(const struct fb_track_site *s, unsigned i,
                     struct fb_report_frame *f);
/* Frame i of s with its inlined calls expanded (fb_sym_lookup_inline):
 * f[0..n-1], innermost first, all with frame i's module and offset.
 * Returns n >= 1 (at most max). */
unsigned fb_report_frames(const struct fb_track_site *s, unsigned i,
                          struct fb_report_frame *f, unsigned max);
/* Writes a stack, one frame a line, inlined calls as frames of their own
 * (numbered on, as addr2line -i prints them):
 *     #0 function at file:line (module+0xoffset) */
void fb_report_stack(struct fb_buf *b, const struct fb_track_site *s);
const char *fb_report_base_name(const char *path);

/*
 * A report of a memory error on stderr, in three steps: begin (recursion
 * guard, errno saved, counted as a bad free), the message and sections
 * (each a title and a recorded stack, symbolised on first use), end (the
 * abort policy of FBMALLOC_ON_BAD_FREE: abort, or restore and go on).
 */
struct fb_report_ctx {
    struct fb_buf out;
    char mem[4096];
    int saved_errno;
    uint8_t was_busy;
    uint8_t sym_open;
};
void fb_report_begin(struct fb_report_ctx *r);
void fb_report_section(struct fb_report_ctx *r, const char *title, uint32_t site);
void fb_report_end(struct fb_report_ctx *r);

/* fork: hold / release the lock that serialises reports. */
void fb_report_fork_prepare(void);
void fb_report_fork_parent(void);
void fb_report_fork_child(void);

/* One informational line on stderr: "fbmalloc: <msg>". */
void fb_report_note(const char *msg);

#endif
