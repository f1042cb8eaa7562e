/*
 * pprof output: leak reports and heap snapshots as gzipped profile.proto
 * messages (FBMALLOC_REPORT_FORMAT=pprof), for `go tool pprof`, its web UI
 * and the fleet profilers that ingest pprof (Parca, Pyroscope).
 *
 * Written by our own small protobuf encoder and a gzip writer that uses
 * deflate's "stored" blocks (valid gzip, no compression, no zlib): reports
 * are small next to what they describe, and the allocator keeps no
 * dependency it does not need.  Streamed: protobuf lets the repeated
 * fields of the top-level message come in any order, so each string,
 * function, location and mapping is written the first time a sample needs
 * it, then the sample; memory is one 64 KiB block buffer and the
 * deduplication tables (mmap, never malloc).
 *
 * One report at a time (the leak checker's lock serialises callers); runs
 * with the recursion guard set, after fb_sym_open().
 */
#ifndef FB_PPROF_H
#define FB_PPROF_H

#include <stdint.h>

#include "track.h"

enum fb_pprof_report { FB_PPROF_LEAKS, FB_PPROF_SNAPSHOT, FB_PPROF_SCOPE };

/*
 * Starts a profile.  fd: where the caller would write a text report; when
 * that is FBMALLOC_OUTPUT (out_fd), the profile goes to a new file of its
 * own instead (a binary profile never lands on a terminal or after other
 * reports in one file): FBMALLOC_OUTPUT's path ("fbmalloc.%p" for stderr)
 * plus ".leaks.pb.gz", ".heap.pb.gz" or ".scope.pb.gz", numbered when the
 * name exists, announced in one line on stderr.  Sample types: leak
 * reports leaked_objects, leaked_space, reachable_objects and
 * reachable_space (default leaked_space); snapshots and scopes
 * inuse_objects and inuse_space.  Returns 0, or -1 (nothing is written).
 */
int fb_pprof_begin(int fd, int out_fd, enum fb_pprof_report what);

/* One group of blocks with the same call site.  kind: "direct",
 * "indirect", "reachable" or "live" (a sample label); reachable counts
 * in the reachable_* values of a leak report. */
void fb_pprof_sample(const struct fb_track_site *s, const char *kind,
                     uint64_t bytes, uint64_t blocks);

/* Writes the rest and closes the file it opened.  Returns 0 or -1. */
int fb_pprof_end(void);

/* The gzip writer and protobuf varints, exposed for the unit test. */
struct fb_gz {
    int fd, err;
    uint32_t crc, size;
    uint32_t n;                  /* bytes pending in buf */
    unsigned char buf[65535];    /* one stored block */
};
void fb_gz_begin(struct fb_gz *z, int fd);
void fb_gz_write(struct fb_gz *z, const void *p, size_t n);
int fb_gz_end(struct fb_gz *z);
uint32_t fb_gz_crc32(uint32_t crc, const void *p, size_t n);

#endif
