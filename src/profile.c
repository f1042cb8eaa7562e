/*
 * Lifetime profiles: load at start, save at exit; see profile.h.  Runs in
 * our constructor and destructor, so it may use dl_iterate_phdr and files,
 * but allocates nothing (the program's heap is ours): fixed buffers and
 * mmap only.
 */
#define _GNU_SOURCE
#include "profile.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>      /* rename */
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fb.h"
#include "fmt.h"
#include "options.h"
#include "platform.h"
#include "route.h"

#define FB_PROFILE_MAX_BYTES (8u << 20)   /* larger: not ours */
#define FB_PROFILE_PATH 4096
#define FB_BUILD_ID_MAX 64                /* bytes of an ELF build id */

FB_BIG_BSS static char exe_path[FB_PROFILE_PATH];

/* The main program's path, as the kernel knows it. */
static const char *exe(void)
{
    if (!exe_path[0]) {
        ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
        exe_path[n > 0 ? n : 0] = '\0';
    }
    return exe_path;
}

/* The profile's path: FBMALLOC_PROFILE with %p expanded; a directory
 * holds one file per program, named after it.  0 if there is none. */
static int profile_path(char *out, size_t cap)
{
    if (!fb_route_on || strcmp(fb_opt.profile, "none") == 0 || !fb_opt.profile[0])
        return 0;
    fb_plat_expand_path(fb_opt.profile, getpid(), out, cap);
    struct stat st;
    if (stat(out, &st) == 0 && S_ISDIR(st.st_mode)) {
        const char *base = strrchr(exe(), '/');
        base = base ? base + 1 : exe();
        size_t n = strlen(out);
        fb_fmt_snprintf(out + n, cap - n, "/%s.fbprofile", base[0] ? base : "program");
    }
    return 1;
}

/* One line on stderr about the profile, its path quoted safely: at most
 * 64 bytes of it, anything but printable ASCII as '?'. */
static FB_COLD void complain(const char *path, const char *why)
{
    char q[72];
    size_t n = 0;
    for (const char *s = path; *s && n < 64; s++)
        q[n++] = (*s >= 0x20 && *s < 0x7f && *s != '"') ? *s : '?';
    q[n] = '\0';
    fb_fmt_dprintf(2, "fbmalloc: lifetime profile \"%s%s\": %s; ignored\n", q,
                   strlen(path) > 64 ? "..." : "", why);
}

/* ---- modules ---------------------------------------------------------- */

struct module {
    uintptr_t base;                  /* load bias */
    uintptr_t lo, hi;                /* its executable segments' span */
    const char *path;
    char id[2 * FB_BUILD_ID_MAX + 1]; /* build id in hex, "" if none */
};

static void hex(char *out, const unsigned char *p, size_t n)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void read_module(const struct dl_phdr_info *info, struct module *m)
{
    m->base = info->dlpi_addr;
    m->lo = UINTPTR_MAX;
    m->hi = 0;
    m->path = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : exe();
    m->id[0] = '\0';
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            if (a < m->lo)
                m->lo = a;
            if (a + ph->p_memsz > m->hi)
                m->hi = a + ph->p_memsz;
        }
        if (ph->p_type != PT_NOTE || m->id[0])
            continue;
        /* Notes: header, name, descriptor, each 4-byte aligned. */
        const unsigned char *p = (const unsigned char *)a, *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            const unsigned char *name = p + sizeof *nh;
            const unsigned char *desc = name + ((nh->n_namesz + 3) & ~3u);
            if (desc + nh->n_descsz > end)
                break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                memcmp(name, "GNU", 4) == 0 && nh->n_descsz <= FB_BUILD_ID_MAX) {
                hex(m->id, desc, nh->n_descsz);
                break;
            }
            p = desc + ((nh->n_descsz + 3) & ~3u);
        }
    }
}

/* ---- save ------------------------------------------------------------- */

struct save_ctx {
    struct fb_buf *out;
    unsigned lines;
};

static int save_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct save_ctx *c = arg;
    struct module m;
    read_module(info, &m);
    if (m.lo >= m.hi)
        return 0;
    for (unsigned s = 0; s < FB_ROUTE_SITES; s++) {
        uintptr_t ra = fb_route_ra[s];
        /* Long sites whose verdict is strong (route.h): a wrapper
         * candidate preset long would never have its callers told apart,
         * a weak verdict would not be revised in time. */
        if (ra < m.lo || ra >= m.hi || !fb_route_persists(s))
            continue;
        fb_fmt_append(c->out, "L %s %lx %s\n", m.id[0] ? m.id : "-",
                      (unsigned long)(ra - m.base), m.path);
        c->lines++;
    }
    return 0;
}

/* fb_route_changes() once the profile was loaded (or found missing);
 * UINT64_MAX: not loaded, or ignored, so rewritten at exit. */
static uint64_t changes_at_load = UINT64_MAX;

/* The whole profile, into out (a file, or memory). */
static void emit(struct fb_buf *out)
{
    fb_fmt_append(out, "fbmalloc-profile 1\nexe %s\n", exe());
    struct save_ctx c = {out, 0};
    dl_iterate_phdr(save_module, &c);
    fb_fmt_append(out, "end %u\n", c.lines);
}

/* Does the file at path hold exactly these len bytes? */
static int same_file(const char *path, const char *mem, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    int same = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == len;
    char chunk[512];
    for (size_t at = 0; same && at < len;) {
        size_t want = len - at < sizeof chunk ? len - at : sizeof chunk;
        ssize_t got = read(fd, chunk, want);
        same = got == (ssize_t)want && memcmp(chunk, mem + at, want) == 0;
        at += want;
    }
    close(fd);
    return same;
}

int fb_profile_save(void)
{
    char path[FB_PROFILE_PATH], tmp[FB_PROFILE_PATH + 32];
    /* Nothing learned or revised since the load: the file (or its
     * absence) already says it all.  Every short process of a build or a
     * shell loop would otherwise rewrite it at exit (a temporary, a
     * rename: 1.4 ms a process in the bench's spawn loop, twice its
     * time), and one that learned nothing would overwrite what another
     * process of the program had learned. */
    if (changes_at_load != UINT64_MAX && fb_route_changes() == changes_at_load)
        return 0;
    if (!profile_path(path, sizeof path))
        return -1;
    /* Nor when what it learned is what the file says: each cc1 of a
     * build learns again the sites its profile left out (too weak to
     * carry, route.h) and wrote the same file again. */
    char mem[8192];
    struct fb_buf out;
    fb_fmt_buf_init(&out, mem, sizeof mem, -1);
    emit(&out);
    int fits = out.len + 1 < sizeof mem;   /* else truncated: written in full below */
    if (fits && same_file(path, mem, out.len))
        return 0;
    fb_fmt_snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        complain(path, "cannot be written");
        return -1;
    }
    int bad;
    if (fits) {
        bad = fb_fmt_write_all(fd, mem, out.len) != 0;
    } else {
        fb_fmt_buf_init(&out, mem, sizeof mem, fd);
        emit(&out);
        bad = fb_fmt_flush(&out) != 0 || out.err;
    }
    bad |= close(fd) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        complain(path, "cannot be written");
        return -1;
    }
    return 0;
}

/* ---- load ------------------------------------------------------------- */

struct line {
    const char *p, *end;             /* without the newline */
};

/* The next line of [*at, end), or 0 at the end or on a missing newline. */
static int next_line(const char **at, const char *end, struct line *l)
{
    const char *nl = memchr(*at, '\n', (size_t)(end - *at));
    if (!nl)
        return 0;
    l->p = *at;
    l->end = nl;
    *at = nl + 1;
    return 1;
}

/* Splits off the next space-separated word of l. */
static int word(struct line *l, const char **w, size_t *n)
{
    const char *s = l->p;
    while (s < l->end && *s != ' ')
        s++;
    if (s == l->p)
        return 0;
    *w = l->p;
    *n = (size_t)(s - l->p);
    l->p = s < l->end ? s + 1 : s;
    return 1;
}

static int is(const char *w, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(w, lit, n) == 0;
}

static int parse_hex(const char *w, size_t n, uintptr_t *out)
{
    uintptr_t v = 0;
    if (!n || n > 16)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int d = w[i] >= '0' && w[i] <= '9' ? w[i] - '0'
              : w[i] >= 'a' && w[i] <= 'f' ? w[i] - 'a' + 10 : -1;
        if (d < 0)
            return 0;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return 1;
}

static int parse_dec(const char *w, size_t n, unsigned long *out)
{
    unsigned long v = 0;
    if (!n || n > 9)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (w[i] < '0' || w[i] > '9')
            return 0;
        v = v * 10 + (unsigned long)(w[i] - '0');
    }
    *out = v;
    return 1;
}

/* One L line to apply: its module (id and path) and offset. */
struct site_line {
    const char *id, *path;
    size_t id_n, path_n;
    uintptr_t off;
    int applied;
};

struct load_ctx {
    struct site_line *l;
};

static int apply_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct site_line *s = ((struct load_ctx *)arg)->l;
    struct module m;
    read_module(info, &m);
    if (s->applied || m.lo >= m.hi || strlen(m.path) != s->path_n ||
        memcmp(m.path, s->path, s->path_n) != 0)
        return 0;
    /* A rebuilt module (another build id) has other offsets. */
    if (!is(s->id, s->id_n, "-") && !is(s->id, s->id_n, m.id))
        return 1;
    uintptr_t ra = m.base + s->off;
    if (ra >= m.lo && ra < m.hi) {
        fb_route_preset(ra);
        s->applied = 1;
    }
    return 1;
}

int fb_profile_load(void)
{
    char path[FB_PROFILE_PATH];
    if (!profile_path(path, sizeof path))
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            return complain(path, "cannot be read"), -1;
        changes_at_load = fb_route_changes();   /* the first run */
        return 0;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
        st.st_size > (off_t)FB_PROFILE_MAX_BYTES) {
        close(fd);
        complain(path, "not a profile (not a regular file, empty or too large)");
        return -1;
    }
    size_t len = (size_t)st.st_size;
    const char *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        complain(path, "cannot be read");
        return -1;
    }
    const char *at = map, *end = map + len, *why = NULL;
    struct line l;
    const char *w;
    size_t n;
    unsigned long lines = 0, want = 0;
    int applied = 0;
    /* First pass: the header, the program, every line well formed and
     * counted by the end line; only then are verdicts applied. */
    if (!next_line(&at, end, &l) || !is(l.p, (size_t)(l.end - l.p), "fbmalloc-profile 1"))
        why = "not a profile (no \"fbmalloc-profile 1\" header)";
    else if (!next_line(&at, end, &l) || !word(&l, &w, &n) || !is(w, n, "exe") ||
             !is(l.p, (size_t)(l.end - l.p), exe()))
        why = "written by another program";
    const char *body = at;
    while (!why) {
        if (!next_line(&at, end, &l)) {
            why = "truncated (no end line)";
            break;
        }
        if (!word(&l, &w, &n)) {
            why = "malformed line";
        } else if (is(w, n, "end")) {
            if (!word(&l, &w, &n) || !parse_dec(w, n, &want) || want != lines || at != end)
                why = "truncated or altered (end line does not match)";
            break;
        } else if (is(w, n, "L")) {
            const char *id = NULL, *off = NULL;
            size_t id_n = 0, off_n = 0;
            uintptr_t o;
            if (!word(&l, &id, &id_n) || id_n > 2 * FB_BUILD_ID_MAX ||
                !word(&l, &off, &off_n) || !parse_hex(off, off_n, &o) ||
                l.p >= l.end || (size_t)(l.end - l.p) >= FB_PROFILE_PATH)
                why = "malformed line";
            lines++;
        } else {
            why = "malformed line";
        }
    }
    if (why) {
        complain(path, why);
        munmap((void *)map, len);
        return -1;
    }
    for (at = body; next_line(&at, end, &l) && word(&l, &w, &n) && is(w, n, "L");) {
        struct site_line s = {0, 0, 0, 0, 0, 0};
        const char *off = NULL;
        size_t off_n = 0;
        word(&l, &s.id, &s.id_n);
        word(&l, &off, &off_n);
        parse_hex(off, off_n, &s.off);
        s.path = l.p;
        s.path_n = (size_t)(l.end - l.p);
        struct load_ctx c = {&s};
        dl_iterate_phdr(apply_module, &c);
        applied += s.applied;
    }
    munmap((void *)map, len);
    changes_at_load = fb_route_changes();
    return applied;
}
