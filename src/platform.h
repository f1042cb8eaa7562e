/*
 * The few OS services the allocator needs, in one place: address-space
 * reservation and commit, the output destination, fatal errors.
 */
#ifndef FB_PLATFORM_H
#define FB_PLATFORM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Reserves size bytes of address space aligned to align (PROT_NONE,
 * MAP_NORESERVE: no memory is committed).  NULL on failure. */
void *fb_plat_reserve(size_t size, size_t align);
/* Makes [p, p+size) readable and writable.  0 or -1 (e.g. strict
 * overcommit refused it). */
int fb_plat_commit(void *p, size_t size);
void fb_plat_release(void *p, size_t size);

/* Copies an FBMALLOC_* path option to out with "%p" replaced by pid, so
 * that the processes of a make or a shell pipeline each get their file. */
void fb_plat_expand_path(const char *spec, pid_t pid, char *out, size_t cap);

/* The file descriptor reports go to (FBMALLOC_OUTPUT, "%p" = pid), opened
 * on first use in this process (a forked child opens its own).  Returns 2
 * (stderr) when the file cannot be opened, after saying so. */
int fb_plat_output_fd(void);
/* Closes the output file after a report (it is reopened if needed). */
void fb_plat_output_done(void);
/* With reports due at exit and FBMALLOC_OUTPUT a standard stream: keeps a
 * duplicate of it (close-on-exec), which reports go to when the program
 * has closed the stream and the number is free or taken by a
 * close-on-exec descriptor (platform.c). */
void fb_plat_output_keep(void);
/* Where a message for stderr goes: fd 2 while it is open and inheritable,
 * else the duplicate while it is still the same file, else 2. */
int fb_plat_stderr(void);

/* Address space this process may still map under RLIMIT_AS (ulimit -v),
 * or SIZE_MAX when there is no limit. */
size_t fb_plat_as_left(void);
/* 1 if an address-space or data limit (ulimit -v, ulimit -d) is set:
 * then every reservation takes from the program's budget. */
int fb_plat_as_limited(void);

/* Page size, read once. */
size_t fb_plat_page_size(void);

/* The process's peak resident set so far, in bytes (getrusage: one
 * system call, no file), 0 if unknown. */
size_t fb_plat_peak_rss(void);

/* Maps every page of [p, p + n) that is not mapped yet, as a read would
 * (the kernel's zero page for untouched anonymous memory), in one system
 * call: for a zeroed table read at scattered places, which would take a
 * page fault per page it is read in (about 7 us each in a VM, where this
 * costs about one).  Does nothing where the kernel cannot (before Linux
 * 5.14); errno is kept. */
void fb_plat_prefault(const void *p, size_t n);

/*
 * Every mapping libfbmalloc.so makes, its own and embedded jemalloc's:
 * the library is linked with --wrap for mmap, mmap64, munmap and mremap
 * (meson.build), so each such call of any of its objects goes through
 * platform.c, which makes the system call and records the page range in
 * a fixed table (no allocation, one leaf lock).  The leak check scans the
 * program's anonymous mappings as roots and must skip exactly these: the
 * buffers, jemalloc's extents and metadata, our tables and lists all
 * point at blocks.  The program's own calls are not wrapped.
 */
struct fb_plat_range {
    uintptr_t lo, hi;
};
#define FB_PLAT_OWN_MAX 4096

/* A set of address ranges, sorted and disjoint (touching ones merged), in
 * a fixed array of cap ranges; overflow: a change did not fit, and the
 * set is incomplete from then on.  The caller locks. */
struct fb_plat_rangeset {
    struct fb_plat_range *r;
    size_t n, cap;
    int overflow;
};
/* The first range whose hi is >= a (the one a may touch or extend). */
size_t fb_plat_set_find(const struct fb_plat_rangeset *s, uintptr_t a);
void fb_plat_set_add(struct fb_plat_rangeset *s, uintptr_t lo, uintptr_t hi);
void fb_plat_set_remove(struct fb_plat_rangeset *s, uintptr_t lo, uintptr_t hi);
/* Copies the recorded ranges, sorted and disjoint, into out (room for
 * FB_PLAT_OWN_MAX) and returns how many; (size_t)-1 if the table ever
 * overflowed (then it is incomplete and must not be trusted).  Takes the
 * table's lock: never while other threads are stopped. */
size_t fb_plat_own_ranges(struct fb_plat_range *out);
/* on: the calling thread, checking leaks with other threads stopped,
 * records its own mappings only if the lock is free at once; otherwise
 * the record is marked incomplete (a stopped thread may hold it). */
void fb_plat_own_nowait(int on);
/* Around fork(), after every other lock (jemalloc maps under its own). */
void fb_plat_fork_prepare(void);
void fb_plat_fork_parent(void);
void fb_plat_fork_child(void);

#endif
