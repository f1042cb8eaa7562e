/*
 * Reports: bad frees and notes.
 */
#include "report.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "epoch.h"
#include "fb.h"
#include "fmt.h"
#include "options.h"
#include "platform.h"
#include "stats.h"

/*
 * One report at a time: the symboliser (libdw, its caches) is not
 * thread-safe, and two threads reporting at once crashed in it.  A report
 * written from inside another one on the same thread (a bad free by our
 * own code) must not wait for itself: the depth counts those.
 */
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread unsigned report_depth __attribute__((tls_model("initial-exec")));

void fb_report_fork_prepare(void)
{
    pthread_mutex_lock(&report_lock);
}

void fb_report_fork_parent(void)
{
    pthread_mutex_unlock(&report_lock);
}

void fb_report_fork_child(void)
{
    pthread_mutex_init(&report_lock, NULL);
}

void fb_report_begin(struct fb_report_ctx *r)
{
    if (report_depth++ == 0)
        pthread_mutex_lock(&report_lock);
    r->saved_errno = errno;
    r->was_busy = fb_t.busy;
    r->sym_open = 0;
    fb_t.busy = 1;
    fb_stats_event(&fb_stats_g.bad_frees);
    fb_fmt_buf_init(&r->out, r->mem, sizeof r->mem, fb_plat_stderr());
}

void fb_report_section(struct fb_report_ctx *r, const char *title, uint32_t site)
{
    const struct fb_track_site *s = fb_track_site(site);
    if (!s)
        return;
    if (!r->sym_open) {
        fb_sym_open();
        r->sym_open = 1;
    }
    fb_fmt_append(&r->out, "  %s:\n", title);
    fb_report_stack(&r->out, s);
}

void fb_report_end(struct fb_report_ctx *r)
{
    int fatal = fb_opt.on_bad_free == FB_BAD_FREE_ABORT;
    if (fatal)
        fb_fmt_puts(&r->out, "fbmalloc: aborting (FBMALLOC_ON_BAD_FREE=ignore "
                             "reports and goes on)\n");
    fb_fmt_flush(&r->out);
    if (r->sym_open)
        fb_sym_close();
    if (fatal)
        abort();
    fb_t.busy = r->was_busy;
    if (--report_depth == 0)
        pthread_mutex_unlock(&report_lock);
    errno = r->saved_errno;
}

FB_COLD void fb_report_bad_free(const void *ptr, enum fb_bad_kind kind,
                                const char *op)
{
    struct fb_report_ctx r;
    fb_report_begin(&r);
    if (kind == FB_BAD_DOUBLE && strcmp(op, "free") != 0)
        fb_fmt_append(&r.out, "fbmalloc: use of a freed block: %p passed to %s() "
                              "was already freed\n",
                      ptr, op);
    else if (kind == FB_BAD_DOUBLE)
        fb_fmt_append(&r.out, "fbmalloc: double free of %p in %s(): a block that "
                              "started there was already freed\n",
                      ptr, op);
    else
        fb_fmt_append(&r.out, "fbmalloc: invalid pointer %p passed to %s(): not the "
                              "start of a live block\n",
                      ptr, op);
    fb_report_end(&r);
}

void fb_report_frame(const struct fb_track_site *s, unsigned i,
                     struct fb_report_frame *f)
{
    const struct fb_track_module *m = fb_track_module(s->modules[i]);
    uintptr_t pc = s->frames[i] - 1;        /* the call, not the return */
    f->module = m ? m->path : "";
    f->offset = m ? pc - m->bias : pc;
    if (m)
        fb_sym_lookup(m->path, f->offset, &f->sym);
    else
        memset(&f->sym, 0, sizeof f->sym);
}

unsigned fb_report_frames(const struct fb_track_site *s, unsigned i,
                          struct fb_report_frame *f, unsigned max)
{
    const struct fb_track_module *m = fb_track_module(s->modules[i]);
    uintptr_t pc = s->frames[i] - 1;        /* the call, not the return */
    struct fb_sym sym[FB_SYM_MAX_INLINE];
    unsigned n = 1;
    if (m)
        n = (unsigned)fb_sym_lookup_inline(m->path, pc - m->bias, sym,
                                           (int)(max < FB_SYM_MAX_INLINE ? max : FB_SYM_MAX_INLINE));
    else
        memset(&sym[0], 0, sizeof sym[0]);
    if (n < 1)
        n = 1;
    for (unsigned k = 0; k < n; k++) {
        f[k].sym = sym[k];
        f[k].module = m ? m->path : "";
        f[k].offset = m ? pc - m->bias : pc;
    }
    return n;
}

const char *fb_report_base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

void fb_report_stack(struct fb_buf *b, const struct fb_track_site *s)
{
    unsigned no = 0;
    for (unsigned i = 0; s && i < s->depth; i++) {
        struct fb_report_frame f[FB_SYM_MAX_INLINE];
        unsigned n = fb_report_frames(s, i, f, FB_SYM_MAX_INLINE);
        for (unsigned k = 0; k < n; k++, no++) {
            fb_fmt_append(b, "    #%u %s", no, f[k].sym.func[0] ? f[k].sym.func : "??");
            if (f[k].sym.file[0])
                fb_fmt_append(b, " at %s:%d", f[k].sym.file, f[k].sym.line);
            fb_fmt_append(b, " (%s+0x%lx)\n", fb_report_base_name(f[k].module),
                          (unsigned long)f[k].offset);
        }
    }
}

FB_COLD void fb_report_note(const char *msg)
{
    fb_fmt_dprintf(fb_plat_stderr(), "fbmalloc: %s\n", msg);
}
