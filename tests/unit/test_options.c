/*
 * Options parsing (src/options.c): defaults, every kind of bad input, the
 * one-line messages, "did you mean", setuid handling.
 */
#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>

#include "check.h"
#include "fmt.h"
#include "options.h"

static char msg[4096];

/* Parses env (NULL-terminated), captures what was written to errfd. */
static int parse(struct fb_options *o, char **env, int secure)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    int problems = fb_opt_parse(o, env, secure, fds[1]);
    close(fds[1]);
    ssize_t n = read(fds[0], msg, sizeof msg - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    return problems;
}

static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* A bad value: one line naming variable and value, saying what is
 * expected and that the default is used; the field keeps its default. */
static void bad(const char *assign, size_t field, uint64_t def)
{
    struct fb_options o;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", assign);
    char *env[] = {buf, NULL};
    int problems = parse(&o, env, 0);
    CHECK_EQ_U(problems, 1);
    CHECK_EQ_U(lines(msg), 1);
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(strchr(assign, '=') - assign), assign);
    CHECK_STR_CONTAINS(msg, name);
    /* the value, quoted: printable ASCII as is, anything else \xHH */
    char want[256] = "=\"";
    for (const unsigned char *c = (const unsigned char *)strchr(assign, '=') + 1; *c; c++) {
        size_t k = strlen(want);
        if (*c >= 0x20 && *c < 0x7f && *c != '"' && *c != '\\')
            want[k] = (char)*c, want[k + 1] = 0;
        else
            snprintf(want + k, sizeof want - k, "\\x%02x", *c);
    }
    strcat(want, "\" is invalid");
    CHECK_STR_CONTAINS(msg, want);
    CHECK_STR_CONTAINS(msg, "expected");
    CHECK_STR_CONTAINS(msg, "default");
    CHECK_EQ_U(*(uint64_t *)((char *)&o + field), def);
}

int main(void)
{
    struct fb_options o;
    char *none[] = {NULL};

    /* Defaults, silently. */
    CHECK_EQ_U(parse(&o, none, 0), 0);
    CHECK_EQ_U(msg[0], 0);
    CHECK_EQ_U(o.buffer_size, 1 << 20);
    CHECK_EQ_U(o.epoch_size, 16 << 10);
    CHECK_EQ_U(o.max_small, 1024);
    CHECK_EQ_U(o.region_size, 64ULL << 30);
    CHECK_EQ_U(o.stats, FB_STATS_OFF);
    CHECK(strcmp(o.output, "stderr") == 0);
    CHECK_EQ_U(o.on_bad_free, FB_BAD_FREE_ABORT);

    /* Good values, every suffix form. */
    char *good[] = {"FBMALLOC_BUFFER_SIZE=256K", "FBMALLOC_EPOCH_SIZE=16KiB",
                    "FBMALLOC_MAX_SMALL=512", "FBMALLOC_STATS=JSON",
                    "FBMALLOC_OUTPUT=/tmp/fb.%p", "FBMALLOC_REGION_SIZE=1g",
                    "FBMALLOC_ON_BAD_FREE=ignore", "FBMALLOC_VERBOSE=2",
                    "OTHER=1", "FBMALLOC_LIB=/x/libfbmalloc.so", NULL};
    CHECK_EQ_U(parse(&o, good, 0), 0);
    CHECK_EQ_U(msg[0], 0);
    CHECK_EQ_U(o.buffer_size, 256 << 10);
    CHECK_EQ_U(o.epoch_size, 16 << 10);
    CHECK_EQ_U(o.max_small, 512);
    CHECK_EQ_U(o.stats, FB_STATS_JSON);
    CHECK(strcmp(o.output, "/tmp/fb.%p") == 0);
    CHECK_EQ_U(o.region_size, 1ULL << 30);
    CHECK_EQ_U(o.on_bad_free, FB_BAD_FREE_IGNORE);
    CHECK_EQ_U(o.verbose, 2);

    /* 0 turns the fast path off. */
    char *off[] = {"FBMALLOC_BUFFER_SIZE=0", NULL};
    CHECK_EQ_U(parse(&o, off, 0), 0);
    CHECK_EQ_U(o.buffer_size, 0);

    /* Every kind of bad input. */
    bad("FBMALLOC_BUFFER_SIZE=lots", offsetof(struct fb_options, buffer_size), 1 << 20);
    bad("FBMALLOC_BUFFER_SIZE=-1", offsetof(struct fb_options, buffer_size), 1 << 20);
    bad("FBMALLOC_BUFFER_SIZE=1.5M", offsetof(struct fb_options, buffer_size), 1 << 20);
    bad("FBMALLOC_BUFFER_SIZE=3M", offsetof(struct fb_options, buffer_size), 1 << 20);       /* not 2^n */
    bad("FBMALLOC_BUFFER_SIZE=4K", offsetof(struct fb_options, buffer_size), 1 << 20);       /* too small */
    bad("FBMALLOC_BUFFER_SIZE=2G", offsetof(struct fb_options, buffer_size), 1 << 20);       /* too big */
    bad("FBMALLOC_BUFFER_SIZE=", offsetof(struct fb_options, buffer_size), 1 << 20);         /* empty */
    bad("FBMALLOC_BUFFER_SIZE=1M ", offsetof(struct fb_options, buffer_size), 1 << 20);      /* trailing */
    bad("FBMALLOC_BUFFER_SIZE=99999999999999999999", offsetof(struct fb_options, buffer_size), 1 << 20);
    bad("FBMALLOC_BUFFER_SIZE=17179869184G", offsetof(struct fb_options, buffer_size), 1 << 20); /* overflow */
    bad("FBMALLOC_EPOCH_SIZE=0", offsetof(struct fb_options, epoch_size), 16 << 10);
    bad("FBMALLOC_MAX_SMALL=5000", offsetof(struct fb_options, max_small), 1024);
    bad("FBMALLOC_MAX_SMALL=0", offsetof(struct fb_options, max_small), 1024);
    bad("FBMALLOC_STATS=maybe", offsetof(struct fb_options, stats), FB_STATS_OFF);
    bad("FBMALLOC_STATS=yess", offsetof(struct fb_options, stats), FB_STATS_OFF);
    bad("FBMALLOC_CHECK=2", offsetof(struct fb_options, check), 0);
    bad("FBMALLOC_STATS=2", offsetof(struct fb_options, stats), FB_STATS_OFF);
    bad("FBMALLOC_ON_BAD_FREE=explode", offsetof(struct fb_options, on_bad_free), FB_BAD_FREE_ABORT);
    bad("FBMALLOC_VERBOSE=9", offsetof(struct fb_options, verbose), 0);
    bad("FBMALLOC_VERBOSE=x", offsetof(struct fb_options, verbose), 0);

    /* An epoch larger than the buffer: one line, epoch = default. */
    char *big_epoch[] = {"FBMALLOC_BUFFER_SIZE=128K", "FBMALLOC_EPOCH_SIZE=256K", NULL};
    CHECK_EQ_U(parse(&o, big_epoch, 0), 1);
    CHECK_EQ_U(lines(msg), 1);
    CHECK_STR_CONTAINS(msg, "FBMALLOC_EPOCH_SIZE=256K");
    CHECK_STR_CONTAINS(msg, "FBMALLOC_BUFFER_SIZE=128K");
    CHECK_EQ_U(o.epoch_size, 16 << 10);
    CHECK_EQ_U(o.buffer_size, 128 << 10);

    /* Buffer below the default epoch, epoch not given: silently clamped. */
    char *small_buf[] = {"FBMALLOC_BUFFER_SIZE=64K", "FBMALLOC_EPOCH_SIZE=64K", NULL};
    CHECK_EQ_U(parse(&o, small_buf, 0), 0);
    CHECK_EQ_U(o.epoch_size, 64 << 10);

    /* Unknown names: a "did you mean" for near misses. */
    char *typo[] = {"FBMALLOC_BUFER_SIZE=1M", NULL};
    CHECK_EQ_U(parse(&o, typo, 0), 0);
    CHECK_EQ_U(lines(msg), 1);
    CHECK_STR_CONTAINS(msg, "FBMALLOC_BUFER_SIZE");
    CHECK_STR_CONTAINS(msg, "did you mean FBMALLOC_BUFFER_SIZE");
    char *typo2[] = {"FBMALLOC_STAT=1", NULL};
    parse(&o, typo2, 0);
    CHECK_STR_CONTAINS(msg, "did you mean FBMALLOC_STATS");
    char *far[] = {"FBMALLOC_COMPLETELY_DIFFERENT=1", NULL};
    parse(&o, far, 0);
    CHECK_EQ_U(lines(msg), 1);
    CHECK_STR_CONTAINS(msg, "unknown option FBMALLOC_COMPLETELY_DIFFERENT");

    /* setuid: options naming files are ignored, with a line. */
    char *suid[] = {"FBMALLOC_OUTPUT=/etc/passwd", NULL};
    CHECK_EQ_U(parse(&o, suid, 1), 1);
    CHECK(strcmp(o.output, "stderr") == 0);
    CHECK_STR_CONTAINS(msg, "setuid");

    /* Control bytes are not digits or letters: 0x10 and 0x11 used to
     * fold onto '0' and '1' (c | 0x20), 0x01 onto '!', 0x0e onto '.'. */
    static const char ctl[] = {0x11, 0x10, 0x01, 0x0e, 0x1a, 0x0f};
    for (size_t i = 0; i < sizeof ctl; i++) {
        char v1[] = {ctl[i], 0};
        char v2[] = {'j', 0x13, 'o', 'n', 0};   /* 0x13 | 0x20 = 's' */
        char a[64];
        snprintf(a, sizeof a, "FBMALLOC_STATS=%s", v1);
        bad(a, offsetof(struct fb_options, stats), FB_STATS_OFF);
        CHECK_STR_CONTAINS(msg, "\\x");
        snprintf(a, sizeof a, "FBMALLOC_CHECK=%s", v1);
        bad(a, offsetof(struct fb_options, check), 0);
        snprintf(a, sizeof a, "FBMALLOC_LEAKS=%s", v1);
        bad(a, offsetof(struct fb_options, leaks), 0);
        snprintf(a, sizeof a, "FBMALLOC_VERBOSE=%s", v1);
        bad(a, offsetof(struct fb_options, verbose), 0);
        snprintf(a, sizeof a, "FBMALLOC_STATS=%s", v2);
        bad(a, offsetof(struct fb_options, stats), FB_STATS_OFF);
    }

    /* A bad value is quoted escaped and bounded: one line, no raw control
     * bytes or terminal escapes, at most 64 bytes of the value. */
    {
        static char huge[10100];
        memcpy(huge, "FBMALLOC_STATS=", 15);
        for (int i = 0; i < 10000; i++)
            huge[15 + i] = "\033[2J\n\r\x07x"[i % 8];
        char *env[] = {huge, NULL};
        CHECK_EQ_U(parse(&o, env, 0), 1);
        CHECK_EQ_U(lines(msg), 1);
        CHECK(strlen(msg) < 64 * 4 + 300);
        CHECK_STR_CONTAINS(msg, "(10000 bytes)");
        CHECK_STR_CONTAINS(msg, "\\x1b[2J\\x0a\\x0d\\x07x");
        for (const char *c = msg; *c; c++)
            CHECK((*c >= 0x20 && *c < 0x7f) || (*c == '\n' && c[1] == 0));
        CHECK_EQ_U(o.stats, FB_STATS_OFF);
        char *quotes[] = {"FBMALLOC_ON_BAD_FREE=\"\\\xc3\xa9", NULL};
        CHECK_EQ_U(parse(&o, quotes, 0), 1);
        CHECK_STR_CONTAINS(msg, "FBMALLOC_ON_BAD_FREE=\"\\x22\\x5c\\xc3\\xa9\" is invalid");
        char *name[] = {"FBMALLOC_STAT\033]0;pwned\007=1", NULL};
        parse(&o, name, 0);
        CHECK_EQ_U(lines(msg), 1);
        CHECK_STR_CONTAINS(msg, "FBMALLOC_STAT\\x1b]0;pwned\\x07 ignored");
    }

    /* Booleans as people write them, in any case. */
    static const char *const yes[] = {"1", "yes", "YES", "On", "true", "TRUE", "tRuE"};
    static const char *const no[] = {"0", "no", "NO", "off", "OFF", "false", "False"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        char a[4][64];
        snprintf(a[0], 64, "FBMALLOC_STATS=%s", yes[i]);
        snprintf(a[1], 64, "FBMALLOC_CHECK=%s", yes[i]);
        snprintf(a[2], 64, "FBMALLOC_LEAKS=%s", yes[i]);
        snprintf(a[3], 64, "FBMALLOC_VERBOSE=%s", yes[i]);
        char *env[] = {a[0], a[1], a[2], a[3], NULL};
        CHECK_EQ_U(parse(&o, env, 0), 0);
        CHECK_EQ_U(msg[0], 0);
        CHECK_EQ_U(o.stats, FB_STATS_TEXT);
        CHECK_EQ_U(o.check, 1);
        CHECK_EQ_U(o.leaks, FB_LEAKS_ON);
        CHECK_EQ_U(o.verbose, 1);
        snprintf(a[0], 64, "FBMALLOC_STATS=%s", no[i]);
        snprintf(a[1], 64, "FBMALLOC_CANARY=%s", no[i]);
        snprintf(a[2], 64, "FBMALLOC_LEAKS=%s", no[i]);
        snprintf(a[3], 64, "FBMALLOC_VERBOSE=%s", no[i]);
        o.stats = 7;
        CHECK_EQ_U(parse(&o, env, 0), 0);
        CHECK_EQ_U(msg[0], 0);
        CHECK_EQ_U(o.stats, FB_STATS_OFF);
        CHECK_EQ_U(o.canary, 0);
        CHECK_EQ_U(o.leaks, FB_LEAKS_OFF);
        CHECK((o.given & (1u << FB_OPT_STATS)) != 0);
    }
    /* ...but a size or a number is not a boolean. */
    bad("FBMALLOC_STACK_DEPTH=yes", offsetof(struct fb_options, stack_depth), 16);
    bad("FBMALLOC_BUFFER_SIZE=off", offsetof(struct fb_options, buffer_size), 1 << 20);

    /* The effective configuration: every option, one line each. */
    {
        char *env[] = {"FBMALLOC_BUFFER_SIZE=256KiB", "FBMALLOC_STATS=json",
                       "FBMALLOC_FAIL_RATE=5%", NULL};
        CHECK_EQ_U(parse(&o, env, 0), 0);
        static char out[16384];
        struct fb_buf b;
        fb_fmt_buf_init(&b, out, sizeof out, -1);
        fb_opt_print_config(&b, &o);
        out[b.len] = 0;
        CHECK_EQ_U(lines(out), FB_OPT_COUNT);
        CHECK_STR_CONTAINS(out, "FBMALLOC_BUFFER_SIZE=256K\n");
        CHECK_STR_CONTAINS(out, "FBMALLOC_STATS=json\n");
        CHECK_STR_CONTAINS(out, "FBMALLOC_FAIL_RATE=0.050000\n");
        CHECK_STR_CONTAINS(out, "FBMALLOC_EPOCH_SIZE=16K ");
        CHECK_STR_CONTAINS(out, "FBMALLOC_FAIL_AFTER=off ");
        CHECK_STR_CONTAINS(out, "FBMALLOC_OUTPUT=stderr ");
    }

    /* Sizes. */
    uint64_t v;
    CHECK(fb_opt_parse_size("64K", &v) == 0 && v == 65536);
    CHECK(fb_opt_parse_size("1m", &v) == 0 && v == 1048576);
    CHECK(fb_opt_parse_size("2GB", &v) == 0 && v == 2ULL << 30);
    CHECK(fb_opt_parse_size("10B", &v) == 0 && v == 10);
    CHECK(fb_opt_parse_size("K", &v) != 0);
    CHECK(fb_opt_parse_size("", &v) != 0);
    CHECK(fb_opt_parse_size("12Q", &v) != 0);
    CHECK(fb_opt_parse_size("64KiB", &v) == 0 && v == 65536);
    CHECK(fb_opt_parse_size("64kib", &v) == 0 && v == 65536);
    CHECK(fb_opt_parse_size("2MiB", &v) == 0 && v == 2 << 20);
    CHECK(fb_opt_parse_size("1GiB", &v) == 0 && v == 1 << 30);
    CHECK(fb_opt_parse_size("1TiB", &v) == 0 && v == 1ULL << 40);
    CHECK(fb_opt_parse_size("1Ki", &v) != 0);
    CHECK(fb_opt_parse_size("1KiBB", &v) != 0);
    CHECK(fb_opt_parse_size("1\x11", &v) != 0);
    return check_done("options");
}
