/*
 * A tiny formatter over write(2).
 *
 * Reports and warnings can be written from inside malloc (a bad free, an
 * option parsed during the first allocation), where stdio may hold its own
 * lock or allocate.  So we format into a caller-provided buffer and write
 * with write(2), retrying on EINTR and short writes.
 */
#ifndef FB_FMT_H
#define FB_FMT_H

#include <stdarg.h>
#include <stddef.h>

struct fb_buf {
    char *p;
    size_t len, cap;
    int fd;        /* >= 0: flush to fd when full; < 0: truncate */
    int err;       /* a write failed */
};

/* Supported: %s %c %d %i %u %x %p %% with modifiers l, ll, z and the
 * flag ' (thousands separators, for reports read by people). */
void fb_fmt_buf_init(struct fb_buf *b, char *mem, size_t cap, int fd);
void fb_fmt_vappend(struct fb_buf *b, const char *fmt, va_list ap);
void fb_fmt_append(struct fb_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fb_fmt_puts(struct fb_buf *b, const char *s);
int  fb_fmt_flush(struct fb_buf *b);

/* snprintf-like into a fixed buffer; always NUL-terminates. Returns the
 * length written (truncated to cap - 1). */
size_t fb_fmt_snprintf(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats one message and writes it to fd in a single write(2) when it
 * fits (so lines from several processes do not interleave). */
void fb_fmt_dprintf(int fd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes all of len bytes; returns 0 or -1. */
int fb_fmt_write_all(int fd, const char *s, size_t len);

#endif
