/*
 * Options: one table, the single source of truth for the FBMALLOC_*
 * environment variables, their parsing, defaults and documentation.  The
 * README table and `scripts/fbmalloc --help` are printed from it
 * (src/tools/options_main.c).
 *
 * Read once, during the first allocation or our constructor, without
 * allocating: the parser works on the environment strings in place.
 */
#ifndef FB_OPTIONS_H
#define FB_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

enum fb_opt_type {
    FB_OT_SIZE,   /* bytes, with optional K/M/G/T suffix (KB, KiB alike) */
    FB_OT_INT,    /* plain decimal integer */
    FB_OT_ENUM,   /* one of a '|'-separated list of words */
    FB_OT_PATH,   /* a file path or "stderr"; %p becomes the pid */
    FB_OT_PROB,   /* a probability: 0.05 or 5%; stored as p * 2^32 */
};

/* Flags */
#define FB_OF_POW2 1u   /* must be a power of two */
#define FB_OF_ZERO 2u   /* 0 is allowed even below min (means "off") */
#define FB_OF_FILE 4u   /* names a file: ignored in setuid programs */
#define FB_OF_OFF 8u    /* "off" is accepted and stored as UINT64_MAX */
#define FB_OF_BOOL 16u  /* yes/on/true mean 1 and no/off/false 0, any case */

#define FB_K ((uint64_t)1 << 10)
#define FB_M ((uint64_t)1 << 20)
#define FB_G ((uint64_t)1 << 30)
#define FB_MAX_SIZE_OPT ((uint64_t)1 << 40)

/*
 * X(NAME, field, type, default, min, max, flags, choices, description)
 * For FB_OT_ENUM the field holds the index of the chosen word in choices.
 */
#define FB_OPTIONS(X)                                                        \
    X(BUFFER_SIZE, buffer_size, FB_OT_SIZE, "1M", 64 * FB_K, FB_G,           \
      FB_OF_POW2 | FB_OF_ZERO, NULL,                                         \
      "Per-thread fixed buffer for small requests (a power of two); "        \
      "0 turns the fast path off.")                                          \
    X(EPOCH_SIZE, epoch_size, FB_OT_SIZE, "16K", 4 * FB_K, FB_G, FB_OF_POW2, \
      NULL,                                                                  \
      "Unit of recycling inside a buffer: an epoch is reset as a whole "     \
      "once all its objects are freed. At most BUFFER_SIZE.")               \
    X(MAX_SMALL, max_small, FB_OT_SIZE, "1024", 1, 4064, 0, NULL,            \
      "Largest request served from the buffer; larger ones go to "          \
      "jemalloc.")                                                           \
    X(LIFETIME, lifetime, FB_OT_ENUM, "1", 0, 0, 0, "0|1|site",              \
      "Lifetime routing: call sites whose small objects outlive their "     \
      "epoch (learned from a sample of epochs) go straight to jemalloc, "   \
      "so they do not pin the buffers; a site whose objects both live and " \
      "die (an allocation wrapper) is routed by its caller too. site: by "  \
      "the call site alone. 0: by size alone.")                             \
    X(PROFILE, profile, FB_OT_PATH, "none", 0, 0, FB_OF_FILE, NULL,          \
      "Lifetime profile: the call sites learned long-lived are loaded "     \
      "from this file at start and saved to it at exit if the run "         \
      "learned or revised any (%p = pid; a directory: one file per "        \
      "program in it), so a second run starts with the right routing.")     \
    X(REGION_SIZE, region_size, FB_OT_SIZE, "64G", 64 * FB_M,                \
      (uint64_t)1 << 46, FB_OF_POW2, NULL,                                   \
      "Address space reserved (not committed) for all buffers; "            \
      "REGION_SIZE / BUFFER_SIZE threads can own a buffer at once. Under "  \
      "ulimit -v, at most 2.5% of the address space left.")                 \
    X(STATS, stats, FB_OT_ENUM, "0", 0, 0, FB_OF_BOOL, "0|1|json",           \
      "Print statistics at exit: 1 for people, json for tools. Counting "   \
      "every call costs a little, so it is off by default.")                \
    X(OUTPUT, output, FB_OT_PATH, "stderr", 0, 0, FB_OF_FILE, NULL,          \
      "Where reports and statistics go: stderr, or a file path in which "   \
      "%p becomes the process id (one file per process).")                  \
    X(ON_BAD_FREE, on_bad_free, FB_OT_ENUM, "abort", 0, 0, 0,                \
      "abort|ignore",                                                        \
      "After reporting a double or invalid free: abort (like glibc) or "    \
      "ignore the call and go on.")                                         \
    X(LEAKS, leaks, FB_OT_ENUM, "0", 0, 0, FB_OF_BOOL, "0|1|all",            \
      "Record a call stack per allocation and report leaks at exit "        \
      "(nothing when nothing leaked); all also lists blocks still "        \
      "reachable, and always reports.")                                     \
    X(STACK_DEPTH, stack_depth, FB_OT_INT, "16", 1, 64, 0, NULL,             \
      "Frames recorded per allocation when tracking leaks.")                \
    X(REPORT_FORMAT, report_format, FB_OT_ENUM, "text", 0, 0, 0,             \
      "text|json|folded|pprof",                                              \
      "Format of leak reports and heap snapshots (folded: stacks for "      \
      "flame-graph tools, weighted by bytes; pprof: a gzipped "             \
      "profile.proto per report, in a file of its own named after "         \
      "FBMALLOC_OUTPUT, for go tool pprof).")                               \
    X(SNAPSHOT_SIGNAL, snapshot_signal, FB_OT_ENUM, "USR2", 0, 0, 0,         \
      "USR2|USR1|none",                                                      \
      "With tracking on, this signal writes a heap snapshot (live blocks "  \
      "by call site) to FBMALLOC_OUTPUT, unless the program handles it.")   \
    X(LEAK_EXITCODE, leak_exitcode, FB_OT_INT, "0", 0, 255, 0, NULL,         \
      "Exit status when leaks are found (0 keeps the program's own).")      \
    X(SUPPRESSIONS, suppressions, FB_OT_PATH, "none", 0, 0, FB_OF_FILE,      \
      NULL,                                                                  \
      "LeakSanitizer-style file of leak:<pattern> lines (function, module " \
      "or source file) whose leaks are not reported.")                      \
    X(DEBUGINFOD, debuginfod, FB_OT_ENUM, "0", 0, 0, FB_OF_BOOL, "0|1",      \
      "1 lets reports fetch missing debug information through libdw's "     \
      "debuginfod client (it follows DEBUGINFOD_URLS); never in setuid "    \
      "programs.")                                                          \
    X(CHECK, check, FB_OT_ENUM, "0", 0, 0, FB_OF_BOOL, "0|1",                \
      "Check every free: double frees, frees of pointers never returned "   \
      "or inside a block, realloc of freed blocks, reported with the "      \
      "stacks of the bad call, the first free and the allocation.")         \
    X(CANARY, canary, FB_OT_ENUM, "0", 0, 0, FB_OF_BOOL, "0|1",              \
      "Guard bytes before and after every block, checked at free, realloc " \
      "and exit; an overrun is reported with its length, the block's size " \
      "and its allocation stack.")                                          \
    X(TRACE, trace, FB_OT_PATH, "none", 0, 0, FB_OF_FILE, NULL,              \
      "Allocation log: every operation, in a compact binary format, to "    \
      "this file (%p = pid); read it with scripts/fbmalloc-trace.")         \
    X(FAIL_AFTER, fail_after, FB_OT_INT, "off", 0, UINT64_MAX - 1,           \
      FB_OF_OFF, NULL,                                                       \
      "Failure injection: the first N allocations succeed, every later "    \
      "one returns NULL with errno ENOMEM.")                                \
    X(FAIL_RATE, fail_rate, FB_OT_PROB, "0", 0, 0, 0, NULL,                  \
      "Failure injection: each allocation fails with this probability "     \
      "(0.01 or 1%), reproducibly for a given FAIL_SEED.")                  \
    X(FAIL_SEED, fail_seed, FB_OT_INT, "1", 0, UINT64_MAX - 1, 0, NULL,      \
      "Seed of FAIL_RATE's choices.")                                       \
    X(FAIL_MIN_SIZE, fail_min_size, FB_OT_SIZE, "0", 0, FB_MAX_SIZE_OPT, 0,  \
      NULL, "Failure injection only hits requests larger than this.")       \
    X(VERBOSE, verbose, FB_OT_INT, "0", 0, 2, FB_OF_BOOL, NULL,              \
      "Informational messages on stderr: 1 = the effective configuration "   \
      "at start-up (one block), 2 = also thread and buffer events.")

enum fb_opt_id {
#define FB_X(NAME, field, ...) FB_OPT_##NAME,
    FB_OPTIONS(FB_X)
#undef FB_X
    FB_OPT_COUNT
};

enum { FB_STATS_OFF = 0, FB_STATS_TEXT = 1, FB_STATS_JSON = 2 };
enum { FB_BAD_FREE_ABORT = 0, FB_BAD_FREE_IGNORE = 1 };
enum { FB_LEAKS_OFF = 0, FB_LEAKS_ON = 1, FB_LEAKS_ALL = 2 };
enum { FB_FORMAT_TEXT = 0, FB_FORMAT_JSON = 1, FB_FORMAT_FOLDED = 2, FB_FORMAT_PPROF = 3 };
enum { FB_SNAP_USR2 = 0, FB_SNAP_USR1 = 1, FB_SNAP_NONE = 2 };

#define FB_OPT_PATH_MAX 512

#define FB_FIELD_FB_OT_SIZE(f) uint64_t f;
#define FB_FIELD_FB_OT_INT(f)  uint64_t f;
#define FB_FIELD_FB_OT_ENUM(f) uint64_t f;
#define FB_FIELD_FB_OT_PATH(f) char f[FB_OPT_PATH_MAX];
#define FB_FIELD_FB_OT_PROB(f) uint64_t f;

struct fb_options {
#define FB_X(NAME, field, type, ...) FB_FIELD_##type(field)
    FB_OPTIONS(FB_X)
#undef FB_X
    /* Bit i set: option i was given (validly) in the environment. */
    uint32_t given;
};

struct fb_opt_desc {
    const char *name;      /* without the FBMALLOC_ prefix */
    enum fb_opt_type type;
    const char *def;
    uint64_t min, max;
    unsigned flags;
    const char *choices;
    const char *desc;
};

extern struct fb_options fb_opt;
extern const struct fb_opt_desc fb_opt_table[FB_OPT_COUNT];

/*
 * Parses the FBMALLOC_* variables of envp into *o (defaults first).
 * Problems are reported on errfd, one line each.  secure != 0 (setuid,
 * AT_SECURE) ignores options that name files.  Returns the number of
 * problems reported.
 */
int fb_opt_parse(struct fb_options *o, char *const *envp, int secure,
                 int errfd);

/* Parses fb_opt from the process environment.  Safe inside malloc. */
void fb_opt_init(void);

/* Parses a size ("64K", "1M", "4096").  Returns 0 on success. */
int fb_opt_parse_size(const char *s, uint64_t *out);

/* "64K" rather than 65536, "1M", "64G": sizes as options are written. */
void fb_opt_size_str(uint64_t v, char *buf, size_t cap);

/* The chosen word of enum option id (e.g. "json"). */
const char *fb_opt_enum_word(int id, char *buf, size_t cap);

struct fb_buf;
/* Appends the effective value of every option to b, one
 * "fbmalloc:   FBMALLOC_NAME=value" line each, "(default)" where the
 * environment did not set it: FBMALLOC_VERBOSE's start-up block. */
void fb_opt_print_config(struct fb_buf *b, const struct fb_options *o);

/* Help text (format 0), README markdown table (format 1) or the
 * ENVIRONMENT entries of the fbmalloc(1) man page (format 2, roff). */
void fb_opt_print_help(int fd, int format);

#endif
