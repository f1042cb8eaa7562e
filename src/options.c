/*
 * FBMALLOC_* options: parsing and documentation from one table.
 *
 * Runs inside the first malloc, so: no allocation, no stdio, no locale.
 * A bad value never stops the program: one line on stderr naming the
 * variable, the value, what was expected and the default used instead.
 */
#include "options.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>

#include "fb.h"
#include "fmt.h"

extern char **environ;

const struct fb_opt_desc fb_opt_table[FB_OPT_COUNT] = {
#define FB_X(NAME, field, type, def, min, max, flags, choices, desc) \
    {#NAME, type, def, min, max, flags, choices, desc},
    FB_OPTIONS(FB_X)
#undef FB_X
};

static const size_t fb_opt_offset[FB_OPT_COUNT] = {
#define FB_X(NAME, field, ...) offsetof(struct fb_options, field),
    FB_OPTIONS(FB_X)
#undef FB_X
};

struct fb_options fb_opt;

/* Variables with our prefix that are not library options: the launcher
 * and the test harness pass paths through them. */
static const char *const fb_opt_reserved[] = {"LIB", "BUILD", "SRC", NULL};

#define FB_PREFIX "FBMALLOC_"
#define FB_PREFIX_LEN 9

static uint64_t *num_field(struct fb_options *o, int id)
{
    return (uint64_t *)((char *)o + fb_opt_offset[id]);
}

static char *path_field(struct fb_options *o, int id)
{
    return (char *)o + fb_opt_offset[id];
}

int fb_opt_parse_size(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    unsigned shift = 0;
    switch (*p) {
    case 'k': case 'K': shift = 10; p++; break;
    case 'm': case 'M': shift = 20; p++; break;
    case 'g': case 'G': shift = 30; p++; break;
    case 't': case 'T': shift = 40; p++; break;
    default: break;
    }
    /* Accept "64K", "64KB", "64KiB" and "64B" alike. */
    if (shift && (p[0] == 'i' || p[0] == 'I') && (p[1] == 'b' || p[1] == 'B'))
        p += 2;
    else if (*p == 'b' || *p == 'B')
        p++;
    if (*p != '\0')
        return -1;
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *out = v << shift;
    return 0;
}

static int parse_int(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

/* "0.25", ".5", "1", "5%", "0.1%" -> p * 2^32 (clamped to 2^32). */
static int parse_prob(const char *s, uint64_t *out)
{
    uint64_t num = 0, den = 1;
    int digits = 0;
    for (; *s >= '0' && *s <= '9'; s++, digits++)
        if (num < 1000000000000ull)
            num = num * 10 + (uint64_t)(*s - '0');
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++, digits++) {
            if (den < 1000000000000ull) {
                num = num * 10 + (uint64_t)(*s - '0');
                den *= 10;
            }
        }
    }
    if (*s == '%') {
        den *= 100;
        s++;
    }
    if (!digits || *s != '\0' || num > den)
        return -1;
    /* floor(num * 2^32 / den), with num <= den <= 10^14 < 2^47: num * 2^32
     * does not fit 64 bits, so the fraction is divided out 16 bits at a
     * time (each remainder times 2^16 stays below 2^63).  Not 128-bit
     * arithmetic: its division is libgcc's __udivti3, at the far end of
     * our code, and this runs in every process that allocates (the
     * defaults are parsed too): a page fault that maps 64 KiB of code
     * nothing else there needs. */
    uint64_t q = num / den, r = num % den;
    r <<= 16;
    uint64_t hi = r / den;
    r = (r % den) << 16;
    *out = q << 32 | hi << 16 | r / den;
    return 0;
}

/* Case folding for option words: only the letters A-Z fold.  The old
 * "c | 0x20" trick also mapped control bytes onto digits (0x11 | 0x20 is
 * '1'), so FBMALLOC_STATS=$'\x11' turned statistics on. */
static int fold(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Whole-string comparison of s with the n bytes at w, letters folded. */
static int word_eq(const char *w, size_t n, const char *s)
{
    size_t i = 0;
    while (i < n && s[i] && fold((unsigned char)w[i]) == fold((unsigned char)s[i]))
        i++;
    return i == n && s[i] == '\0';
}

/* Boolean spellings people write (mimalloc accepts the same set), for the
 * options whose values are 0 and 1: 1, 0 or -1 for neither. */
static int bool_word(const char *s)
{
    static const char *const yes[] = {"yes", "on", "true", NULL};
    static const char *const no[] = {"no", "off", "false", NULL};
    for (int i = 0; yes[i]; i++) {
        if (word_eq(yes[i], strlen(yes[i]), s))
            return 1;
        if (word_eq(no[i], strlen(no[i]), s))
            return 0;
    }
    return -1;
}

/* Index of word s in a '|'-separated list, or -1. Case-insensitive. */
static int enum_index(const char *choices, const char *s)
{
    int idx = 0;
    const char *c = choices;
    while (*c) {
        const char *e = c;
        while (*e && *e != '|')
            e++;
        if (word_eq(c, (size_t)(e - c), s))
            return idx;
        idx++;
        c = *e ? e + 1 : e;
    }
    return -1;
}

static const char *enum_word(const char *choices, uint64_t idx, char *buf,
                             size_t cap)
{
    const char *c = choices;
    for (uint64_t i = 0; i < idx && *c; i++) {
        while (*c && *c != '|')
            c++;
        if (*c)
            c++;
    }
    size_t n = 0;
    while (c[n] && c[n] != '|' && n + 1 < cap) {
        buf[n] = c[n];
        n++;
    }
    buf[n] = '\0';
    return buf;
}

static int is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

/* "64K" rather than "65536" in messages and help. */
void fb_opt_size_str(uint64_t v, char *buf, size_t cap)
{
    static const char units[] = "KMGT";
    int u = -1;
    while (v >= 1024 && v % 1024 == 0 && u < 3) {
        v /= 1024;
        u++;
    }
    if (u < 0)
        fb_fmt_snprintf(buf, cap, "%lu", (unsigned long)v);
    else
        fb_fmt_snprintf(buf, cap, "%lu%c", (unsigned long)v, units[u]);
}

/* What a valid value looks like, for messages and help. */
static void expected_str(const struct fb_opt_desc *d, char *buf, size_t cap)
{
    char lo[24], hi[24];
    switch (d->type) {
    case FB_OT_SIZE:
        fb_opt_size_str(d->min, lo, sizeof lo);
        fb_opt_size_str(d->max, hi, sizeof hi);
        fb_fmt_snprintf(buf, cap,
                        "%ssize from %s to %s (suffix K, M, G or KiB, MiB, GiB)%s",
                        (d->flags & FB_OF_POW2) ? "a power-of-two " : "a ",
                        lo, hi, (d->flags & FB_OF_ZERO) ? ", or 0 for off" : "");
        break;
    case FB_OT_INT:
        if (d->flags & FB_OF_BOOL)
            fb_fmt_snprintf(buf, cap, "an integer from %lu to %lu (yes/on/true "
                            "for 1, no/off/false for 0)",
                            (unsigned long)d->min, (unsigned long)d->max);
        else if (d->max >= UINT64_MAX - 1)
            fb_fmt_snprintf(buf, cap, "an integer >= %lu%s", (unsigned long)d->min,
                            (d->flags & FB_OF_OFF) ? ", or off" : "");
        else
            fb_fmt_snprintf(buf, cap, "an integer from %lu to %lu%s",
                            (unsigned long)d->min, (unsigned long)d->max,
                            (d->flags & FB_OF_OFF) ? ", or off" : "");
        break;
    case FB_OT_ENUM: {
        /* "0|1|json" reads "one of 0, 1, json" (and keeps tables intact) */
        size_t n = fb_fmt_snprintf(buf, cap, "one of ");
        for (const char *c = d->choices; *c && n + 3 < cap; c++) {
            if (*c == '|') {
                buf[n++] = ',';
                buf[n++] = ' ';
            } else {
                buf[n++] = *c;
            }
        }
        buf[n] = '\0';
        if (d->flags & FB_OF_BOOL)
            fb_fmt_snprintf(buf + n, cap - n,
                            " (yes/on/true for 1, no/off/false for 0)");
        break;
    }
    case FB_OT_PROB:
        fb_fmt_snprintf(buf, cap, "a probability from 0 to 1 (or 0%% to 100%%)");
        break;
    case FB_OT_PATH:
        fb_fmt_snprintf(buf, cap, "%s",
                        strcmp(d->def, "stderr") == 0
                            ? "stderr or a file path (%p = pid)"
                            : "a file path, or none");
        break;
    }
}

/*
 * A value (or name) from the environment, made safe to quote in a message:
 * at most FB_OPT_QUOTE_MAX bytes of it, printable ASCII as is, backslash,
 * quote and every other byte (control bytes, terminal escapes, newlines,
 * non-ASCII) as \xHH, and "..." with the full length when it was cut.  So
 * a complaint is always one short line that cannot drive the terminal.
 * n is the length to consider (SIZE_MAX: up to the NUL); close ends the
 * quoted text ("\"" for a value, "" for a name).
 */
#define FB_OPT_QUOTE_MAX 64
static const char *quote_max(const char *s, size_t n, size_t max,
                             const char *close, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = 0, o = 0;
    while (len < n && s[len])
        len++;
    for (size_t i = 0; i < len && i < max && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    buf[o] = '\0';
    if (len > max)
        fb_fmt_snprintf(buf + o, cap - o, "...%s (%zu bytes)", close, len);
    else
        fb_fmt_snprintf(buf + o, cap - o, "%s", close);
    return buf;
}

static const char *quote(const char *s, size_t n, const char *close, char *buf,
                         size_t cap)
{
    return quote_max(s, n, FB_OPT_QUOTE_MAX, close, buf, cap);
}

/* Room for FB_OPT_QUOTE_MAX escaped bytes and the length note. */
#define FB_OPT_QUOTE_CAP (4 * FB_OPT_QUOTE_MAX + 40)

static void complain(int errfd, const struct fb_opt_desc *d, const char *val,
                     const char *why)
{
    char exp[200], q[FB_OPT_QUOTE_CAP];
    if (errfd < 0)
        return;
    expected_str(d, exp, sizeof exp);
    fb_fmt_dprintf(errfd,
                   "fbmalloc: FBMALLOC_%s=\"%s is invalid%s%s: expected %s; "
                   "using the default %s\n",
                   d->name, quote(val, SIZE_MAX, "\"", q, sizeof q), why ? " " : "",
                   why ? why : "", exp, d->def);
}

static void set_default(struct fb_options *o, int id)
{
    const struct fb_opt_desc *d = &fb_opt_table[id];
    switch (d->type) {
    case FB_OT_SIZE:
        fb_opt_parse_size(d->def, num_field(o, id));
        break;
    case FB_OT_INT:
        if ((d->flags & FB_OF_OFF) && strcmp(d->def, "off") == 0)
            *num_field(o, id) = UINT64_MAX;
        else
            parse_int(d->def, num_field(o, id));
        break;
    case FB_OT_PROB:
        parse_prob(d->def, num_field(o, id));
        break;
    case FB_OT_ENUM:
        *num_field(o, id) = (uint64_t)enum_index(d->choices, d->def);
        break;
    case FB_OT_PATH:
        fb_fmt_snprintf(path_field(o, id), FB_OPT_PATH_MAX, "%s", d->def);
        break;
    }
}

/* Returns 0 if accepted, -1 after complaining. */
static int parse_one(struct fb_options *o, int id, const char *val, int secure,
                     int errfd)
{
    const struct fb_opt_desc *d = &fb_opt_table[id];
    uint64_t v = 0;
    switch (d->type) {
    case FB_OT_SIZE:
        if (fb_opt_parse_size(val, &v) != 0) {
            complain(errfd, d, val, "(not a size)");
            return -1;
        }
        if (v == 0 && (d->flags & FB_OF_ZERO))
            break;
        if (v < d->min || v > d->max) {
            complain(errfd, d, val, "(out of range)");
            return -1;
        }
        if ((d->flags & FB_OF_POW2) && !is_pow2(v)) {
            complain(errfd, d, val, "(not a power of two)");
            return -1;
        }
        break;
    case FB_OT_PROB:
        if (parse_prob(val, &v) != 0) {
            complain(errfd, d, val, NULL);
            return -1;
        }
        break;
    case FB_OT_INT:
        if ((d->flags & FB_OF_OFF) && word_eq("off", 3, val)) {
            v = UINT64_MAX;
            break;
        }
        if ((d->flags & FB_OF_BOOL) && bool_word(val) >= 0) {
            v = (uint64_t)bool_word(val);
            break;
        }
        if (parse_int(val, &v) != 0) {
            complain(errfd, d, val, "(not a number)");
            return -1;
        }
        if (v < d->min || v > d->max) {
            complain(errfd, d, val, "(out of range)");
            return -1;
        }
        break;
    case FB_OT_ENUM: {
        int idx = enum_index(d->choices, val);
        if (idx < 0 && (d->flags & FB_OF_BOOL) && bool_word(val) >= 0)
            idx = enum_index(d->choices, bool_word(val) ? "1" : "0");
        if (idx < 0) {
            complain(errfd, d, val, NULL);
            return -1;
        }
        v = (uint64_t)idx;
        break;
    }
    case FB_OT_PATH:
        if (secure && (d->flags & FB_OF_FILE)) {
            if (errfd >= 0)
                fb_fmt_dprintf(errfd,
                               "fbmalloc: FBMALLOC_%s ignored in a setuid "
                               "program; using the default %s\n",
                               d->name, d->def);
            return -1;
        }
        if (val[0] == '\0' || strlen(val) >= FB_OPT_PATH_MAX) {
            complain(errfd, d, val, val[0] ? "(too long)" : "(empty)");
            return -1;
        }
        fb_fmt_snprintf(path_field(o, id), FB_OPT_PATH_MAX, "%s", val);
        o->given |= 1u << id;
        return 0;
    }
    *num_field(o, id) = v;
    o->given |= 1u << id;
    return 0;
}

/* Levenshtein distance, bounded: names are short. */
static size_t edit_distance(const char *a, size_t na, const char *b)
{
    size_t nb = strlen(b);
    size_t row[64];
    if (na >= 63 || nb >= 63)
        return 99;
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t cost = fold((unsigned char)a[i - 1]) ==
                                  fold((unsigned char)b[j - 1])
                              ? 0
                              : 1;
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

static void unknown(const char *name, size_t n, int errfd)
{
    for (int r = 0; fb_opt_reserved[r]; r++)
        if (strlen(fb_opt_reserved[r]) == n &&
            memcmp(fb_opt_reserved[r], name, n) == 0)
            return;
    if (errfd < 0)
        return;
    int best = -1;
    size_t best_d = 4;
    for (int id = 0; id < FB_OPT_COUNT; id++) {
        size_t d = edit_distance(name, n, fb_opt_table[id].name);
        if (d < best_d) {
            best_d = d;
            best = id;
        }
    }
    char q[FB_OPT_QUOTE_CAP];
    quote(name, n, "", q, sizeof q);
    if (best >= 0)
        fb_fmt_dprintf(errfd,
                       "fbmalloc: unknown option FBMALLOC_%s ignored; did you "
                       "mean FBMALLOC_%s?\n",
                       q, fb_opt_table[best].name);
    else
        fb_fmt_dprintf(errfd,
                       "fbmalloc: unknown option FBMALLOC_%s ignored (see "
                       "fbmalloc --help)\n",
                       q);
}

int fb_opt_parse(struct fb_options *o, char *const *envp, int secure, int errfd)
{
    int problems = 0;
    memset(o, 0, sizeof *o);
    for (int id = 0; id < FB_OPT_COUNT; id++)
        set_default(o, id);

    for (char *const *e = envp; e && *e; e++) {
        const char *s = *e;
        if (strncmp(s, FB_PREFIX, FB_PREFIX_LEN) != 0)
            continue;
        const char *name = s + FB_PREFIX_LEN;
        const char *eq = strchr(name, '=');
        if (!eq)
            continue;
        size_t n = (size_t)(eq - name);
        int found = -1;
        for (int id = 0; id < FB_OPT_COUNT; id++) {
            if (strlen(fb_opt_table[id].name) == n &&
                memcmp(fb_opt_table[id].name, name, n) == 0) {
                found = id;
                break;
            }
        }
        if (found < 0) {
            unknown(name, n, errfd);
            continue;
        }
        if (parse_one(o, found, eq + 1, secure, errfd) != 0)
            problems++;
    }

    /* Cross-option rule: an epoch cannot be larger than its buffer. */
    if (o->buffer_size && o->epoch_size > o->buffer_size) {
        uint64_t def;
        fb_opt_parse_size(fb_opt_table[FB_OPT_EPOCH_SIZE].def, &def);
        if (o->given & (1u << FB_OPT_EPOCH_SIZE)) {
            char eb[24], bb[24];
            fb_opt_size_str(o->epoch_size, eb, sizeof eb);
            fb_opt_size_str(o->buffer_size, bb, sizeof bb);
            if (errfd >= 0)
                fb_fmt_dprintf(errfd,
                               "fbmalloc: FBMALLOC_EPOCH_SIZE=%s is larger than "
                               "FBMALLOC_BUFFER_SIZE=%s: expected at most the "
                               "buffer size; using %s\n",
                               eb, bb,
                               def <= o->buffer_size ? fb_opt_table[FB_OPT_EPOCH_SIZE].def
                                                     : bb);
            problems++;
        }
        o->epoch_size = def <= o->buffer_size ? def : o->buffer_size;
    }
    /* The region must hold at least a few buffers. */
    if (o->buffer_size && o->region_size < 4 * o->buffer_size) {
        if (errfd >= 0) {
            char rb[24], bb[24];
            fb_opt_size_str(o->region_size, rb, sizeof rb);
            fb_opt_size_str(o->buffer_size, bb, sizeof bb);
            fb_fmt_dprintf(errfd,
                           "fbmalloc: FBMALLOC_REGION_SIZE=%s holds fewer than "
                           "4 buffers of FBMALLOC_BUFFER_SIZE=%s; using %s\n",
                           rb, bb, fb_opt_table[FB_OPT_REGION_SIZE].def);
        }
        fb_opt_parse_size(fb_opt_table[FB_OPT_REGION_SIZE].def, &o->region_size);
        if (o->region_size < 4 * o->buffer_size)
            o->region_size = 4 * o->buffer_size;
        problems++;
    }
    return problems;
}

void fb_opt_init(void)
{
    fb_opt_parse(&fb_opt, environ, (int)getauxval(AT_SECURE), 2);
}

/* An option's effective value as it would be written in the environment. */
static void value_str(const struct fb_options *o, int id, char *buf, size_t cap)
{
    const struct fb_opt_desc *d = &fb_opt_table[id];
    uint64_t v = *num_field((struct fb_options *)o, id);
    switch (d->type) {
    case FB_OT_SIZE:
        fb_opt_size_str(v, buf, cap);
        break;
    case FB_OT_INT:
        if ((d->flags & FB_OF_OFF) && v == UINT64_MAX)
            fb_fmt_snprintf(buf, cap, "off");
        else
            fb_fmt_snprintf(buf, cap, "%lu", (unsigned long)v);
        break;
    case FB_OT_ENUM:
        enum_word(d->choices, v, buf, cap);
        break;
    case FB_OT_PROB: {
        /* p * 2^32 back to a decimal with 6 places, rounded */
        uint64_t ppm = (uint64_t)(((__uint128_t)v * 1000000 + (1u << 31)) >> 32);
        char frac[8];
        for (int i = 5; i >= 0; i--, ppm /= 10)
            frac[i] = (char)('0' + ppm % 10);
        frac[6] = '\0';
        fb_fmt_snprintf(buf, cap, "%lu.%s", (unsigned long)ppm, frac);
        break;
    }
    case FB_OT_PATH:
        /* a path from the environment: escaped like any quoted value */
        quote_max(path_field((struct fb_options *)o, id), SIZE_MAX,
                  FB_OPT_PATH_MAX, "", buf, cap);
        break;
    }
}

void fb_opt_print_config(struct fb_buf *b, const struct fb_options *o)
{
    char val[4 * FB_OPT_PATH_MAX + 40], line[sizeof val + 64];
    for (int id = 0; id < FB_OPT_COUNT; id++) {
        value_str(o, id, val, sizeof val);
        size_t n = fb_fmt_snprintf(line, sizeof line, "FBMALLOC_%s=%s",
                                   fb_opt_table[id].name, val);
        fb_fmt_append(b, "fbmalloc:   %s", line);
        if (!(o->given & (1u << id))) {
            for (; n < 40; n++)
                fb_fmt_puts(b, " ");
            fb_fmt_puts(b, " (default)");
        }
        fb_fmt_puts(b, "\n");
    }
}

/* Text for a man page: backslashes and hyphens escaped (a plain "-" may
 * be typeset as a hyphen and then not copy-paste as a minus), and "\&"
 * first so that no line starts with a roff control character. */
static void roff_puts(struct fb_buf *b, const char *s)
{
    fb_fmt_puts(b, "\\&");
    for (; *s; s++) {
        if (*s == '\\')
            fb_fmt_puts(b, "\\e");
        else if (*s == '-')
            fb_fmt_puts(b, "\\-");
        else {
            char c[2] = {*s, 0};
            fb_fmt_puts(b, c);
        }
    }
}

/* The launcher's spelling of an option: --buffer-size for BUFFER_SIZE. */
static void launcher_name(const char *name, char *buf, size_t cap)
{
    size_t n = 0;
    for (; *name && n + 1 < cap; name++)
        buf[n++] = *name == '_' ? '-' : (char)fold((unsigned char)*name);
    buf[n] = '\0';
}

void fb_opt_print_help(int fd, int format)
{
    char exp[200];
    char mem[4096];
    struct fb_buf b;
    fb_fmt_buf_init(&b, mem, sizeof mem, fd);
    if (format == 1) {
        fb_fmt_puts(&b, "| Variable | Default | Accepted values | Meaning |\n");
        fb_fmt_puts(&b, "|---|---|---|---|\n");
    }
    for (int id = 0; id < FB_OPT_COUNT; id++) {
        const struct fb_opt_desc *d = &fb_opt_table[id];
        expected_str(d, exp, sizeof exp);
        if (format == 1) {
            fb_fmt_append(&b, "| `FBMALLOC_%s` | `%s` | %s | %s |\n", d->name,
                          d->def, exp, d->desc);
        } else if (format == 2) {
            /* man page: one tagged paragraph per variable */
            char ln[64];
            launcher_name(d->name, ln, sizeof ln);
            fb_fmt_append(&b, ".TP\n.BR FBMALLOC_%s \" (\\-\\-", d->name);
            roff_puts(&b, ln);
            fb_fmt_puts(&b, ")\"\n");
            roff_puts(&b, d->desc);
            fb_fmt_puts(&b, "\nAccepts ");
            roff_puts(&b, exp);
            fb_fmt_puts(&b, "; default\n.BR ");
            roff_puts(&b, d->def);
            fb_fmt_puts(&b, " .\n");
        } else
            fb_fmt_append(&b, "  FBMALLOC_%s (default %s)\n      %s\n      "
                              "Accepts %s.\n",
                          d->name, d->def, d->desc, exp);
    }
    fb_fmt_flush(&b);
}

/* The chosen word of an enum option, for the start-up summary. */
const char *fb_opt_enum_word(int id, char *buf, size_t cap)
{
    return enum_word(fb_opt_table[id].choices, *num_field(&fb_opt, id), buf,
                     cap);
}
