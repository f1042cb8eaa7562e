/*
 * Options parsing (src/options.c): defaults, every kind of bad input, the
 * one-line messages, "did you mean", setuid handling.
 */
#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>

#include "check.h"
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
    CHECK_STR_CONTAINS(msg, strchr(assign, '=') + 1);
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
    bad("FBMALLOC_STATS=yes", offsetof(struct fb_options, stats), FB_STATS_OFF);
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

    /* Sizes. */
    uint64_t v;
    CHECK(fb_opt_parse_size("64K", &v) == 0 && v == 65536);
    CHECK(fb_opt_parse_size("1m", &v) == 0 && v == 1048576);
    CHECK(fb_opt_parse_size("2GB", &v) == 0 && v == 2ULL << 30);
    CHECK(fb_opt_parse_size("10B", &v) == 0 && v == 10);
    CHECK(fb_opt_parse_size("K", &v) != 0);
    CHECK(fb_opt_parse_size("", &v) != 0);
    CHECK(fb_opt_parse_size("12Q", &v) != 0);
    return check_done("options");
}
