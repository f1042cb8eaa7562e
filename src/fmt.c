/*
 * A tiny printf subset over write(2); see fmt.h for why.
 */
#include "fmt.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "fb.h"

int fb_fmt_write_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, s, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        s += n;
        len -= (size_t)n;
    }
    return 0;
}

void fb_fmt_buf_init(struct fb_buf *b, char *mem, size_t cap, int fd)
{
    b->p = mem;
    b->len = 0;
    b->cap = cap;
    b->fd = fd;
    b->err = 0;
}

int fb_fmt_flush(struct fb_buf *b)
{
    if (b->fd >= 0 && b->len > 0) {
        int saved = errno;
        if (fb_fmt_write_all(b->fd, b->p, b->len) != 0)
            b->err = 1;
        errno = saved;
        b->len = 0;
    }
    return b->err ? -1 : 0;
}

static void put(struct fb_buf *b, char c)
{
    /* Keep one byte for the terminating NUL of fixed buffers. */
    if (b->len + 1 >= b->cap) {
        if (b->fd < 0)
            return;
        fb_fmt_flush(b);
    }
    b->p[b->len++] = c;
}

void fb_fmt_puts(struct fb_buf *b, const char *s)
{
    if (!s)
        s = "(null)";
    while (*s)
        put(b, *s++);
}

static void put_uint(struct fb_buf *b, uint64_t v, unsigned base, int group,
                     int width, char pad)
{
    char tmp[32];
    int n = 0, digits = 0;
    do {
        if (group && digits > 0 && digits % 3 == 0)
            tmp[n++] = ',';
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
        digits++;
    } while (v);
    for (int i = n; i < width; i++)
        put(b, pad);
    while (n > 0)
        put(b, tmp[--n]);
}

void fb_fmt_vappend(struct fb_buf *b, const char *fmt, va_list ap)
{
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            put(b, *f);
            continue;
        }
        f++;
        int group = 0, lng = 0, width = 0;
        char pad = ' ';
        if (*f == '\'') {
            group = 1;
            f++;
        }
        if (*f == '0') {
            pad = '0';
            f++;
        }
        while (*f >= '0' && *f <= '9')
            width = width * 10 + (*f++ - '0');
        while (*f == 'l' || *f == 'z') {
            lng++;
            f++;
        }
        switch (*f) {
        case 's':
            fb_fmt_puts(b, va_arg(ap, const char *));
            break;
        case 'c':
            put(b, (char)va_arg(ap, int));
            break;
        case 'd':
        case 'i': {
            int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
            if (v < 0) {
                put(b, '-');
                put_uint(b, (uint64_t)0 - (uint64_t)v, 10, group, width, pad);
            } else {
                put_uint(b, (uint64_t)v, 10, group, width, pad);
            }
            break;
        }
        case 'u':
            put_uint(b, lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10,
                     group, width, pad);
            break;
        case 'x':
            put_uint(b, lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16,
                     0, width, pad);
            break;
        case 'p':
            fb_fmt_puts(b, "0x");
            put_uint(b, (uint64_t)(uintptr_t)va_arg(ap, void *), 16, 0, 0, ' ');
            break;
        case '%':
            put(b, '%');
            break;
        case '\0':
            return;
        default:
            put(b, '%');
            put(b, *f);
            break;
        }
    }
}

void fb_fmt_append(struct fb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fb_fmt_vappend(b, fmt, ap);
    va_end(ap);
}

size_t fb_fmt_snprintf(char *dst, size_t cap, const char *fmt, ...)
{
    struct fb_buf b;
    if (cap == 0)
        return 0;
    fb_fmt_buf_init(&b, dst, cap, -1);
    va_list ap;
    va_start(ap, fmt);
    fb_fmt_vappend(&b, fmt, ap);
    va_end(ap);
    dst[b.len] = '\0';
    return b.len;
}

void fb_fmt_dprintf(int fd, const char *fmt, ...)
{
    char mem[1024];
    struct fb_buf b;
    fb_fmt_buf_init(&b, mem, sizeof mem, fd);
    va_list ap;
    va_start(ap, fmt);
    fb_fmt_vappend(&b, fmt, ap);
    va_end(ap);
    fb_fmt_flush(&b);
}
