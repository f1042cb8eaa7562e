/*
 * Guard bytes around blocks; see canary.h for the layout.
 */
#include "canary.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "check.h"
#include "epoch.h"
#include "fmt.h"
#include "options.h"
#include "report.h"
#include "track.h"

int fb_canary_on;

#define FB_CANARY_MAGIC 0xFBCA4A21u       /* header, right before p */
#define FB_CANARY_FRONT 0xFBF407A1u       /* front pad of aligned blocks */
#define FB_CANARY_DEAD 0xFBDEAD21u        /* header of a block freed since */
#define FB_GUARD_BYTE 0xFB
#define FB_TAIL 16

struct header {
    uint64_t size;            /* the program's request */
    uint32_t pad;             /* bytes from the block's start to p */
    uint32_t magic;
};

int fb_canary_init(void)
{
    fb_canary_on = fb_opt.canary != 0;
    return fb_canary_on;
}

static struct header *header_of(const void *p)
{
    return (struct header *)((uintptr_t)p - sizeof(struct header));
}

void *fb_canary_alloc(const struct fb_layer_below *below, size_t align, size_t n, int zero)
{
    size_t pad = align <= FB_ALIGN ? sizeof(struct header) : align;
    size_t inner;
    if (__builtin_add_overflow(n, pad + FB_TAIL, &inner) || inner > FB_MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    char *base;
    if (pad == sizeof(struct header))
        base = below->malloc(inner);
    else
        base = below->memalign(align, inner);
    if (!base) {
        errno = ENOMEM;
        return NULL;
    }
    char *p = base + pad;
    if (pad > sizeof(struct header)) {
        memset(base, FB_GUARD_BYTE, pad - sizeof(struct header));
        /* Where the header is, for the exit check that starts at base. */
        ((uint64_t *)base)[0] = pad;
        ((uint32_t *)base)[3] = FB_CANARY_FRONT;
    }
    /* Guards first, the magic last (a release store): the exit check runs
     * while other threads may still be here, or, in a forked child, with
     * this block cut short forever; it checks only blocks whose magic it
     * sees (acquire), whose guards are then complete. */
    struct header *h = header_of(p);
    h->size = n;
    h->pad = (uint32_t)pad;
    memset(p + n, FB_GUARD_BYTE, FB_TAIL);
    __atomic_store_n(&h->magic, FB_CANARY_MAGIC, __ATOMIC_RELEASE);
    if (zero)
        memset(p, 0, n);
    return p;
}

/* ---- checking --------------------------------------------------------- */

enum damage { FB_INTACT, FB_OVERRUN, FB_UNDERRUN };

/* How many bytes past the end were written (the furthest changed guard
 * byte), 0 if the tail is intact. */
static size_t overrun_bytes(const char *p, size_t n)
{
    for (size_t i = FB_TAIL; i-- > 0;)
        if ((unsigned char)p[n + i] != FB_GUARD_BYTE)
            return i + 1;
    return 0;
}

static int front_intact(const char *p, const struct header *h)
{
    if (h->pad <= sizeof(struct header))
        return 1;
    const unsigned char *base = (const unsigned char *)p - h->pad;
    for (size_t i = 16; i < h->pad - sizeof(struct header); i++)
        if (base[i] != FB_GUARD_BYTE)
            return 0;
    return ((const uint32_t *)base)[3] == FB_CANARY_FRONT;
}

/* The allocation site of the inner block that starts at base. */
static uint32_t alloc_site(uintptr_t base)
{
    size_t request, size;
    uint32_t site = 0;
    if (fb_epoch_owns((void *)base)) {
        size_t usable = fb_epoch_usable((void *)base);
        return usable ? fb_track_buffer_site((void *)base, usable, &request) : 0;
    }
    fb_track_big_lookup(base, &size, &site);
    return site;
}

/* site: where the block was allocated (for an overrun). */
static FB_COLD void report(const char *p, const struct header *h, enum damage d,
                           size_t past, const char *when, int stack_now, uint32_t site)
{
    struct fb_report_ctx r;
    fb_report_begin(&r);
    if (d == FB_OVERRUN)
        fb_fmt_append(&r.out, "fbmalloc: heap overrun: %lu %s written past the end of "
                              "a %'lu-byte block at %p (found %s)\n",
                      (unsigned long)past, past == 1 ? "byte" : "bytes",
                      (unsigned long)h->size, (const void *)p, when);
    else
        fb_fmt_append(&r.out, "fbmalloc: heap underrun: the guard before the block at "
                              "%p was overwritten (found %s)\n",
                      (const void *)p, when);
    if (stack_now)
        fb_report_section(&r, "detected at", fb_track_capture());
    if (d == FB_OVERRUN)
        fb_report_section(&r, "allocated at", site);
    fb_report_end(&r);
}

/* Checks p's guards; reports damage.  Returns 0 if p is not a guarded
 * block at all (allocated before the option took effect). */
/* Can p's header be read?  A guarded block's header starts a live block
 * (the inner one).  In the buffers the granule map says so (a block at a
 * slot's start, from before the option took effect, may have unmapped
 * memory before it); outside, a page-aligned pointer may start a mapping,
 * and a guarded one lies in a tracked block. */
static int header_readable(const void *p)
{
    size_t sz;
    uint32_t site;
    uintptr_t hdr = (uintptr_t)p - sizeof(struct header);
    if (fb_epoch_owns(p))
        return fb_epoch_usable((const void *)hdr) != 0 || fb_epoch_is_freed((const void *)hdr);
    return ((uintptr_t)p & 4095) != 0 || fb_track_big_lookup(hdr, &sz, &site) ||
           fb_track_big_containing(hdr, &sz, &site);
}

static int check(const char *p, const char *when)
{
    if (!header_readable(p))
        return 0;
    const struct header *h = header_of(p);
    if (h->magic == FB_CANARY_DEAD)
        return 0;                     /* freed: see freed_guarded() */
    if (h->magic != FB_CANARY_MAGIC || h->pad < sizeof(struct header)) {
        /* Either a block without guards, or its header was overwritten:
         * it is ours if the block the header would belong to exists. */
        const void *base = p - sizeof(struct header);
        if (fb_epoch_usable(base) || fb_track_big_lookup((uintptr_t)base, NULL, NULL)) {
            struct header fake = {0, sizeof(struct header), 0};
            report(p, &fake, FB_UNDERRUN, 0, when, 1, 0);
            return 1;
        }
        return 0;
    }
    size_t past = overrun_bytes(p, h->size);
    if (past)
        report(p, h, FB_OVERRUN, past, when, 1, alloc_site((uintptr_t)p - h->pad));
    else if (!front_intact(p, h))
        report(p, h, FB_UNDERRUN, 0, when, 1, 0);
    return 1;
}

/*
 * A pointer whose header says "freed": a guarded block freed before (its
 * memory not reused since).  It must never go on to the unguarded free:
 * the program's pointer is 16 bytes (or the alignment) inside the inner
 * block, an interior pointer that jemalloc would accept and "free",
 * handing out overlapping blocks later.  The free below writes the mark
 * before releasing the inner block; nothing else writes it, and the
 * default mode's own double-free mark (backend.h) is the inner block's
 * first word, which leaves this one intact.
 */
static int freed_guarded(const void *p)
{
    return header_readable(p) && header_of(p)->magic == FB_CANARY_DEAD;
}

static FB_COLD void report_freed(const void *p, const char *op)
{
    /* With checking, the inner block still waits in the quarantine, its
     * header intact: the report can show where it was freed. */
    const struct header *h = header_of(p);
    if (fb_check_on && freed_guarded(p) && h->pad >= sizeof(struct header))
        fb_check_report_inner(p, (const char *)p - h->pad, h->size, op);
    else
        fb_check_report(p, 1, op);
}

void fb_canary_free(const struct fb_layer_below *below, void *p)
{
    if (!check(p, "at free")) {
        size_t size;
        uint32_t site;
        if (freed_guarded(p))
            report_freed(p, "free");
        else if (!fb_check_on && !fb_epoch_owns(p) &&
                 fb_track_big_containing((uintptr_t)p, &size, &site))
            /* Inside a live guarded jemalloc block (whose inner block
             * starts before p): jemalloc would free that block. */
            fb_report_bad_free(p, FB_BAD_INVALID, "free");
        else
            below->free(p);
        return;
    }
    struct header *h = header_of(p);
    size_t pad = h->pad >= sizeof(struct header) ? h->pad : sizeof(struct header);
    h->magic = FB_CANARY_DEAD;        /* a second free is caught as such */
    below->free((char *)p - pad);
}

/* Usable size of an unguarded block (allocated before the option took
 * effect) for realloc, or 0 if p is no live block (reported). */
static size_t unguarded_usable(const struct fb_layer_below *below, void *p)
{
    if (freed_guarded(p)) {
        report_freed(p, "realloc");
        return 0;
    }
    if (fb_epoch_owns(p)) {
        size_t u = fb_epoch_usable(p);
        if (!u)
            report_freed(p, "realloc");
        return u;
    }
    if (fb_check_on && fb_check_realloc(p) != 0)
        return 0;
    if (fb_je_foreign(p) || !fb_je_live(p)) {
        fb_check_report(p, !fb_je_foreign(p) && fb_je_was_freed(p), "realloc");
        return 0;
    }
    return below->usable(p);
}

void *fb_canary_realloc(const struct fb_layer_below *below, void *p, size_t n)
{
    if (!p)
        return fb_canary_alloc(below, FB_ALIGN, n, 0);
    if (n == 0) {
        fb_canary_free(below, p);
        return NULL;
    }
    if (!check(p, "at realloc")) {
        /* An unguarded block: move it into a guarded one. */
        size_t old = unguarded_usable(below, p);
        if (!old) {
            errno = EINVAL;
            return NULL;
        }
        void *q = fb_canary_alloc(below, FB_ALIGN, n, 0);
        if (q) {
            memcpy(q, p, old < n ? old : n);
            below->free(p);
        }
        return q;
    }
    const struct header *h = header_of(p);
    size_t align = h->pad > sizeof(struct header) ? h->pad : FB_ALIGN;
    void *q = fb_canary_alloc(below, align, n, 0);
    if (!q)
        return NULL;                  /* errno set; p untouched */
    memcpy(q, p, h->size < n ? h->size : n);
    fb_canary_free(below, p);
    return q;
}

size_t fb_canary_usable(const struct fb_layer_below *below, const void *p)
{
    if (!p)
        return 0;
    const struct header *h = header_of(p);
    if (header_readable(p) && h->magic == FB_CANARY_MAGIC)
        return h->size;
    return below->usable(p);
}

/* The program's pointer of the guarded block that starts at base, or 0
 * (no guards, or a front overwritten beyond recognition). */
static uintptr_t guarded_ptr(uintptr_t base)
{
    const uint32_t *w = (const uint32_t *)base;
    if (w[3] == FB_CANARY_MAGIC)
        return base + sizeof(struct header);
    if (w[3] == FB_CANARY_FRONT) {
        /* The pad (a power of two) is in the first word, which the free of
         * a jemalloc block overwrites with its freed mark (backend.h): a
         * block freed while we look must not send us anywhere. */
        uint64_t pad = *(const volatile uint64_t *)base;
        if (pad >= 2 * sizeof(struct header) && !(pad & (pad - 1)) && pad <= (1ull << 40))
            return base + pad;
    }
    return 0;
}

size_t fb_canary_request(uintptr_t base)
{
    uintptr_t p = guarded_ptr(base);
    const struct header *h = p ? header_of((const void *)p) : NULL;
    return h && h->magic == FB_CANARY_MAGIC ? h->size : 0;
}

/* ---- at exit ------------------------------------------------------ */

/*
 * The exit check runs inside leak.c's walk, with the other threads
 * stopped, one of which may hold any lock: it takes none and does not
 * allocate.  Damage is noted here and reported by fb_canary_exit_report
 * once they run again (a report locks, symbolises and may allocate).
 * With FBMALLOC_ON_BAD_FREE=abort the first report ends the process.
 */
#define FB_EXIT_NOTED 64
struct exit_note {
    const char *p;
    struct header h;
    enum damage d;
    size_t past;
    uint32_t site;
};
static struct exit_note exit_noted[FB_EXIT_NOTED];
static size_t exit_n;

/* One look at the guarded block at p, whose inner block is [base, base +
 * usable): its header, and its damage; FB_INTACT also if it is no
 * complete guarded block of that inner block (a header without its magic
 * is one another thread is still setting up, or one a forked child will
 * never finish: see fb_canary_alloc).  Reads nothing outside the inner
 * block. */
static enum damage exit_look(uintptr_t base, size_t usable, const char *p,
                             struct header *h, size_t *past)
{
    const struct header *hp = header_of(p);
    h->magic = __atomic_load_n(&hp->magic, __ATOMIC_ACQUIRE);
    h->size = *(const volatile uint64_t *)&hp->size;
    h->pad = *(const volatile uint32_t *)&hp->pad;
    *past = 0;
    if (h->magic != FB_CANARY_MAGIC || h->pad != (uintptr_t)p - base ||
        h->size > usable - h->pad - FB_TAIL)
        return FB_INTACT;
    *past = overrun_bytes(p, h->size);
    if (*past)
        return FB_OVERRUN;
    return front_intact(p, h) ? FB_INTACT : FB_UNDERRUN;
}

void fb_canary_check_block(void *ctx, uintptr_t base, size_t usable, uint32_t site)
{
    (void)ctx;
    uintptr_t p = guarded_ptr(base);
    if (!p || exit_n >= FB_EXIT_NOTED || p - base + FB_TAIL > usable)
        return;
    struct header h, again;
    size_t past, past_again;
    enum damage d = exit_look(base, usable, (const char *)p, &h, &past);
    /*
     * Damage only if it stays: three more looks 1 ms apart must find the
     * same header and the same damage.  Stopped threads change nothing,
     * but a thread that blocks the stop signal (or never allocated, so
     * is not registered) runs on, and may free this block and have its
     * memory reused while we look: then its header changes or goes (the
     * free marks it dead) or the damage does.  A real overrun stays put.
     */
    for (int i = 0; d != FB_INTACT && i < 3; i++) {
        struct timespec ms = {0, 1000 * 1000};
        nanosleep(&ms, NULL);
        if (exit_look(base, usable, (const char *)p, &again, &past_again) != d ||
            again.size != h.size || again.pad != h.pad || past_again != past)
            d = FB_INTACT;
    }
    if (d != FB_INTACT)
        exit_noted[exit_n++] = (struct exit_note){(const char *)p, h, d, past, site};
}

void fb_canary_exit_report(void)
{
    size_t n = exit_n;
    exit_n = 0;
    for (size_t i = 0; i < n; i++) {
        const struct exit_note *e = &exit_noted[i];
        report(e->p, &e->h, e->d, e->past, "at exit", 0, e->site);
    }
    _Static_assert(FB_EXIT_NOTED == 64, "the note below names the limit");
    if (n == FB_EXIT_NOTED)
        fb_report_note("the first 64 damaged blocks found at exit were reported; "
                       "the check stopped there");
}
