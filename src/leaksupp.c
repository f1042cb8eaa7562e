/*
 * Leak suppressions, LeakSanitizer's format: "leak:<pattern>" lines, where
 * a pattern is a glob ('*' any run) matched anywhere in a frame's
 * function, module path or source file, '^' anchoring it at the start and
 * a final '$' at the end; every inline frame of every frame of a site is
 * tried.  The file is read and split into patterns in place, in mmap'd
 * memory, by the first check; a later check of the same process finds the
 * text already split and loads no pattern (so only the first check, the
 * exit check unless the program asked for one, applies suppressions).
 */
#define _GNU_SOURCE
#include "leaksupp.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fmt.h"
#include "leakscan.h"
#include "options.h"
#include "report.h"
#include "symbolize.h"

static struct fb_leakscan_vec supp = {.elem = sizeof(char *)};
static char *supp_text;
static size_t supp_len;

size_t fb_leaksupp_load(void)
{
    supp.n = 0;
    if (strcmp(fb_opt.suppressions, "none") == 0 || supp_text)
        return supp.n;
    int fd = open(fb_opt.suppressions, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fb_fmt_dprintf(2, "fbmalloc: cannot read FBMALLOC_SUPPRESSIONS file "
                          "\"%s\" (errno %d)\n",
                       fb_opt.suppressions, errno);
        return 0;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    if (size > 0 && size < (1 << 24)) {
        supp_len = (size_t)size + 1;
        supp_text = mmap(NULL, supp_len, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (supp_text == MAP_FAILED)
            supp_text = NULL;
        else if (pread(fd, supp_text, (size_t)size, 0) != size)
            supp_text[0] = '\0';
    }
    close(fd);
    for (char *line = supp_text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == ' ' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (strncmp(line, "leak:", 5) == 0 && line[5]) {
            char **slot = fb_leakscan_vec_push(&supp);
            if (slot)
                *slot = line + 5;
        }
        line = nl ? nl + 1 : line + n;
    }
    return supp.n;
}

/* Glob match of p against the start of s: '*' matches any run, '$' at the
 * end of p requires the end of s. */
static int match_here(const char *p, const char *s)
{
    for (; *p; p++, s++) {
        if (*p == '*') {
            for (;; s++) {
                if (match_here(p + 1, s))
                    return 1;
                if (!*s)
                    return 0;
            }
        }
        if (*p == '$' && p[1] == '\0')
            return *s == '\0';
        if (*s != *p)
            return 0;
    }
    return 1;
}

static int match(const char *pat, const char *s)
{
    if (!s[0])
        return 0;
    if (pat[0] == '^')
        return match_here(pat + 1, s);
    for (; *s; s++)
        if (match_here(pat, s))
            return 1;
    return 0;
}


int fb_leaksupp_match(const struct fb_track_site *s)
{
    if (!supp.n || !s)
        return 0;
    for (unsigned i = 0; i < s->depth; i++) {
        struct fb_report_frame f[FB_SYM_MAX_INLINE];
        unsigned n = fb_report_frames(s, i, f, FB_SYM_MAX_INLINE);
        for (unsigned j = 0; j < n; j++) {
            for (size_t k = 0; k < supp.n; k++) {
                const char *pat = ((char **)supp.p)[k];
                if (match(pat, f[j].sym.func) || match(pat, f[j].module) ||
                    match(pat, f[j].sym.file))
                    return 1;
            }
        }
    }
    return 0;
}

