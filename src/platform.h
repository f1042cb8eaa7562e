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

/* Address space this process may still map under RLIMIT_AS (ulimit -v),
 * or SIZE_MAX when there is no limit. */
size_t fb_plat_as_left(void);

/* Page size, read once. */
size_t fb_plat_page_size(void);

#endif
