/*
 * The leak check's report writers.  A report is leakscan's blocks grouped
 * by (kind, call site), largest first, each group with its symbolised
 * stack, then a summary:
 *  - text (the default): one "direct leak of N bytes in M blocks" (or
 *    "still reachable", "live") paragraph per group, stacks as
 *    report.c's fb_report_stack prints them, a summary line;
 *  - JSON: one object with the groups and the summary's numbers;
 *  - folded: one "outer;...;inner bytes" line per group, nothing else, so
 *    the file stays flame-graph input;
 *  - pprof: the same groups as samples of a gzipped profile.proto, written
 *    by pprof.c.
 * Everything is written through fmt.h's buffered writer (no stdio, no
 * malloc of ours: the check runs with the recursion guard set).
 */
#define _GNU_SOURCE
#include "leakreport.h"

#include <stdlib.h>
#include <unistd.h>

#include "fmt.h"
#include "options.h"
#include "platform.h"
#include "pprof.h"
#include "report.h"
#include "symbolize.h"
#include "track.h"

extern char *program_invocation_name;

struct fb_leakscan_vec fb_leakreport_groups = {.elem = sizeof(struct fb_leakreport_group)};

/* Orders blocks by (kind, site) to aggregate them. */
static int by_kind_site(const void *x, const void *y)
{
    const struct fb_leakscan_block *a = x, *b = y;
    if (a->state != b->state)
        return a->state < b->state ? -1 : 1;
    return a->site < b->site ? -1 : a->site > b->site;
}

void fb_leakreport_build_groups(void)
{
    struct fb_leakscan_block *a = (struct fb_leakscan_block *)fb_leakscan_blocks.p;
    size_t n = fb_leakscan_blocks.n;
    /* Blocks are no longer needed in address order: regroup in place. */
    qsort(a, n, sizeof *a, by_kind_site);
    fb_leakreport_groups.n = 0;
    for (size_t i = 0; i < n; i++) {
        if (a[i].state == FB_LEAKSCAN_GONE)
            continue;
        struct fb_leakreport_group *g =
            fb_leakreport_groups.n ? fb_leakreport_group(fb_leakreport_groups.n - 1) : NULL;
        if (!g || g->site != a[i].site || g->kind != a[i].state) {
            g = fb_leakscan_vec_push(&fb_leakreport_groups);
            if (!g)
                return;
            *g = (struct fb_leakreport_group){a[i].site, a[i].state, 0, 0, 0};
        }
        g->bytes += a[i].request;
        g->blocks++;
    }
    /* Largest first (insertion sort: groups are few). */
    struct fb_leakreport_group *gs = (struct fb_leakreport_group *)fb_leakreport_groups.p;
    for (size_t i = 1; i < fb_leakreport_groups.n; i++) {
        struct fb_leakreport_group t = gs[i];
        size_t j = i;
        while (j > 0 && gs[j - 1].bytes < t.bytes) {
            gs[j] = gs[j - 1];
            j--;
        }
        gs[j] = t;
    }
}

static void json_str(struct fb_buf *b, const char *s)
{
    fb_fmt_puts(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fb_fmt_append(b, "\\%c", c);
        else if (c < 0x20)
            fb_fmt_append(b, "\\u%04x", c);
        else
            fb_fmt_append(b, "%c", c);
    }
    fb_fmt_puts(b, "\"");
}

static const char *kind_name(uint8_t kind)
{
    return kind == FB_LEAKSCAN_DIRECT     ? "direct"
           : kind == FB_LEAKSCAN_INDIRECT ? "indirect"
           : kind == FB_LEAKSCAN_LIVE     ? "live"
                                          : "reachable";
}

static void write_stack_json(struct fb_buf *b, const struct fb_track_site *s)
{
    fb_fmt_puts(b, "[");
    int first = 1;
    for (unsigned i = 0; s && i < s->depth; i++) {
        struct fb_report_frame fs[FB_SYM_MAX_INLINE];
        unsigned n = fb_report_frames(s, i, fs, FB_SYM_MAX_INLINE);
        for (unsigned j = 0; j < n; j++, first = 0) {
            const struct fb_report_frame *f = &fs[j];
            fb_fmt_puts(b, first ? "{\"function\":" : ",{\"function\":");
            json_str(b, f->sym.func);
            fb_fmt_puts(b, ",\"file\":");
            json_str(b, f->sym.file);
            fb_fmt_append(b, ",\"line\":%d,\"module\":", f->sym.line);
            json_str(b, f->module);
            fb_fmt_append(b, ",\"offset\":%lu}", (unsigned long)f->offset);
        }
    }
    fb_fmt_puts(b, "]");
}

/* Folded stacks, as flame-graph tools read them: outermost frame first,
 * ';'-separated, then the weight (bytes). */
static void write_stack_folded(struct fb_buf *b, const struct fb_track_site *s,
                               uint64_t bytes)
{
    for (unsigned i = s ? s->depth : 0; i-- > 0;) {
        struct fb_report_frame fs[FB_SYM_MAX_INLINE];
        unsigned n = fb_report_frames(s, i, fs, FB_SYM_MAX_INLINE);
        for (unsigned j = n; j-- > 0;) {      /* outermost first */
            const struct fb_report_frame *f = &fs[j];
            if (f->sym.func[0]) {
                /* ';' and ' ' separate fields: keep them out of names. */
                for (const char *c = f->sym.func; *c; c++)
                    fb_fmt_append(b, "%c", (*c == ';' || *c == ' ') ? '_' : *c);
            } else {
                fb_fmt_append(b, "%s+0x%lx", fb_report_base_name(f->module),
                              (unsigned long)f->offset);
            }
            fb_fmt_puts(b, i || j ? ";" : "");
        }
    }
    fb_fmt_append(b, " %lu\n", (unsigned long)bytes);
}

void fb_leakreport_write(int fd, const struct fb_leakreport_totals *t,
                         enum fb_leakreport_mode mode)
{
    char mem[8192];
    struct fb_buf b;
    int json = fb_opt.report_format == FB_FORMAT_JSON;
    int folded = fb_opt.report_format == FB_FORMAT_FOLDED;
    int all = fb_opt.leaks == FB_LEAKS_ALL || mode != FB_LEAKREPORT_LEAKS;
    int snap = mode != FB_LEAKREPORT_LEAKS;
    int scope = mode == FB_LEAKREPORT_SCOPE;
    if (fb_opt.report_format == FB_FORMAT_PPROF) {
        /* the same groups as a gzipped profile.proto (src/pprof.c) */
        if (fb_pprof_begin(fd, fb_plat_output_fd(),
                           scope ? FB_PPROF_SCOPE : snap ? FB_PPROF_SNAPSHOT : FB_PPROF_LEAKS) == 0) {
            for (size_t i = 0; i < fb_leakreport_groups.n; i++) {
                const struct fb_leakreport_group *g = fb_leakreport_group(i);
                if (!g->suppressed && (g->kind != FB_LEAKSCAN_REACHABLE || all))
                    fb_pprof_sample(fb_track_site(g->site), kind_name(g->kind), g->bytes,
                                    g->blocks);
            }
            fb_pprof_end();
        }
        (void)t;
        return;
    }
    fb_fmt_buf_init(&b, mem, sizeof mem, fd);
    const char *prog = program_invocation_name ? program_invocation_name : "";
    if (json) {
        fb_fmt_append(&b, "{\"%s\":{\"pid\":%d,\"program\":",
                      scope  ? "fbmalloc_scope_check"
                      : snap ? "fbmalloc_heap_snapshot"
                             : "fbmalloc_leak_report",
                      (int)getpid());
        json_str(&b, prog);
        fb_fmt_puts(&b, snap ? ",\"live\":[" : ",\"leaks\":[");
    } else if (!folded) {
        fb_fmt_append(&b, "fbmalloc: %s for pid %d (%s)\n",
                      scope ? "scope check" : snap ? "heap snapshot" : "leak report",
                      (int)getpid(), prog);
    }
    int first = 1;
    for (size_t i = 0; i < fb_leakreport_groups.n; i++) {
        const struct fb_leakreport_group *g = fb_leakreport_group(i);
        if (g->suppressed || (g->kind == FB_LEAKSCAN_REACHABLE && !all))
            continue;
        const struct fb_track_site *s = fb_track_site(g->site);
        if (folded) {
            write_stack_folded(&b, s, g->bytes);
        } else if (json) {
            fb_fmt_append(&b, "%s{\"kind\":\"%s\",\"bytes\":%lu,\"blocks\":%lu,\"stack\":",
                          first ? "" : ",", kind_name(g->kind),
                          (unsigned long)g->bytes, (unsigned long)g->blocks);
            write_stack_json(&b, s);
            fb_fmt_puts(&b, "}");
        } else {
            const char *unit = g->blocks == 1 ? "block" : "blocks";
            if (g->kind == FB_LEAKSCAN_LIVE)
                fb_fmt_append(&b, "fbmalloc: %s: %'lu bytes in %'lu %s, allocated from:\n",
                              scope ? "still live at scope end" : "live",
                              (unsigned long)g->bytes, (unsigned long)g->blocks, unit);
            else if (g->kind == FB_LEAKSCAN_REACHABLE)
                fb_fmt_append(&b, "fbmalloc: still reachable: %'lu bytes in %'lu %s, "
                                  "allocated from:\n",
                              (unsigned long)g->bytes, (unsigned long)g->blocks, unit);
            else
                fb_fmt_append(&b, "fbmalloc: %s leak of %'lu bytes in %'lu %s, "
                                  "allocated from:\n",
                              kind_name(g->kind), (unsigned long)g->bytes,
                              (unsigned long)g->blocks, unit);
            fb_report_stack(&b, s);
        }
        first = 0;
    }
    if (folded) {
        /* Nothing else: the file stays a valid folded-stack input. */
    } else if (snap && json) {
        fb_fmt_append(&b, "],\"summary\":{\"sites\":%lu,\"bytes\":%lu,\"blocks\":%lu}}}\n",
                      (unsigned long)t->groups, (unsigned long)t->bytes,
                      (unsigned long)t->blocks);
    } else if (scope) {
        fb_fmt_append(&b, "fbmalloc: scope end: %'lu %s (%'lu bytes) allocated in the "
                          "scope %s still live\n",
                      (unsigned long)t->blocks, t->blocks == 1 ? "block" : "blocks",
                      (unsigned long)t->bytes, t->blocks == 1 ? "is" : "are");
    } else if (snap) {
        fb_fmt_append(&b, "fbmalloc: %'lu bytes live in %'lu %s from %'lu call %s\n",
                      (unsigned long)t->bytes, (unsigned long)t->blocks,
                      t->blocks == 1 ? "block" : "blocks", (unsigned long)t->groups,
                      t->groups == 1 ? "site" : "sites");
    } else if (json) {
        fb_fmt_append(&b, "],\"summary\":{\"leaks\":%lu,\"bytes\":%lu,\"blocks\":%lu,"
                          "\"direct_bytes\":%lu,\"direct_blocks\":%lu,"
                          "\"indirect_bytes\":%lu,\"indirect_blocks\":%lu,"
                          "\"reachable_bytes\":%lu,\"reachable_blocks\":%lu,"
                          "\"suppressed_bytes\":%lu,\"suppressed_blocks\":%lu}}}\n",
                      (unsigned long)t->groups, (unsigned long)t->bytes,
                      (unsigned long)t->blocks, (unsigned long)t->direct_bytes,
                      (unsigned long)t->direct_blocks, (unsigned long)t->indirect_bytes,
                      (unsigned long)t->indirect_blocks, (unsigned long)t->reach_bytes,
                      (unsigned long)t->reach_blocks, (unsigned long)t->supp_bytes,
                      (unsigned long)t->supp_blocks);
    } else {
        fb_fmt_append(&b, "fbmalloc: %'lu %s (%'lu bytes in %'lu %s); %'lu %s still reachable",
                      (unsigned long)t->groups, t->groups == 1 ? "leak" : "leaks",
                      (unsigned long)t->bytes, (unsigned long)t->blocks,
                      t->blocks == 1 ? "block" : "blocks",
                      (unsigned long)t->reach_blocks,
                      t->reach_blocks == 1 ? "block" : "blocks");
        if (t->supp_blocks)
            fb_fmt_append(&b, "; %'lu suppressed", (unsigned long)t->supp_blocks);
        fb_fmt_puts(&b, "\n");
    }
    fb_fmt_flush(&b);
}

void fb_leakreport_free(void)
{
    fb_leakscan_vec_free(&fb_leakreport_groups);
}
