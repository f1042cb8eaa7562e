/*
 * Allocation log (FBMALLOC_TRACE): every malloc-family operation as a
 * fixed-size binary record, written through per-thread buffers.
 *
 * This runs inside malloc: nothing here calls malloc or stdio, and the
 * locks taken (the file's, for the first open; a buffer's, while it is
 * written out; writes to a pipe) cover only open(2), fstat(2), readlink(2)
 * and writev(2), which never allocate.  Our own allocations (made with the
 * recursion guard fb_t.busy set: start-up, stack capture, symbolisation)
 * are not logged.  The fast path: a TLS load, clock_gettime (vDSO), five
 * stores and a release store of the count.
 *
 * Buffers.  A thread's first event claims one of TR_MAX_BUFS slots (a
 * static table: the per-slot control words stay valid for the life of the
 * process, so the exit flush can never touch freed memory), whose record
 * array (TR_BUF_BYTES, mmap'd the first time the slot is used) is kept and
 * reused by later threads: a slot is never unmapped, only handed back.  The
 * owner appends a record and publishes the count with a release store; a
 * full buffer is written out with one writev(2) (a CHUNK record, then the
 * events) to a file opened with O_APPEND, so buffers of different threads
 * (and processes sharing one file) never interleave inside a record.
 * Writing out a slot takes its small spin lock: the owner and the exit
 * flush (which writes other threads' partly filled buffers while they may
 * still be running) never write the same records twice.  A thread that
 * finds no free slot or has gone through its exit (glibc frees during
 * thread teardown) writes each event directly (one writev per event).
 *
 * The file.  FBMALLOC_TRACE, "%p" replaced by the pid, opened on the
 * first write of this process (O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC, 0644)
 * and started with a header.  A pipe works for one process (its writes are
 * then serialised: O_APPEND keeps only regular-file writes whole; several
 * processes sharing one pipe may interleave).  A forked child drops the
 * events it inherited unwritten (they are the parent's), renumbers its
 * threads from 1 and opens its own file.  At exit (our destructor, after
 * the program's own), every buffer still held is written, then the
 * call-site table (modules, symbolised frames, sites) and an END record
 * (symbolising costs tens to hundreds of milliseconds per process, most
 * of it libdw reading debug information); later events
 * (other libraries' destructors, threads still running) are not logged:
 * they would name sites missing from the table, and they include frees of
 * what the symboliser allocated.  A process that ends without running
 * destructors (_exit, a fatal signal, exec) loses what its buffers held;
 * after exec the new image starts again with its own header in the same
 * file (same pid).
 *
 * ---- File format (version 1), all integers little-endian ----
 *
 * Header (starts every process's part of a file; header_len bytes):
 *    0  char[8] "FBTRACE1"
 *    8  u32 version (1)          12  u32 header_len (multiple of 8)
 *   16  u32 record size (32)     20  u32 pid
 *   24  u64 CLOCK_MONOTONIC ns of time 0 (timestamps are relative to it)
 *   32  u64 CLOCK_REALTIME ns at time 0
 *   40  u32 parent pid           44  u32 flags (1: forked child; its time
 *                                    0 is the parent's)
 *   48  u64 reserved (0)
 *   56  char[] executable path, NUL-terminated, zero-padded to header_len
 *
 * Then records.  Each starts with a u64 w0: op = w0 & 0xff, value = w0 >> 8.
 *
 * Fixed 32-byte records:
 *   event (op 1 MALLOC, 2 FREE, 3 REALLOC in place; value = size: the
 *          request, 0 for FREE)
 *      0 u64 w0   8 u64 time ns   16 u64 pointer   24 u32 thread
 *     28 u32 call-site id (0 = unknown; FREE events carry 0)
 *   CHUNK (op 0x10; value = number of event records that follow)
 *      0 u64 w0   8 u64 time ns of the write   16 u64 pid
 *     24 u32 thread   28 u32 0
 *   END (op 0x2f; value = events dropped (no file, failed write))
 *      0 u64 w0   8 u64 time ns   16 u64 pid   24 u32 threads seen
 *     28 u32 SITE records written
 *
 * Variable records (value = total length in bytes, a multiple of 8), after
 * the events; SITE records only for the sites this process's events name,
 * FRAME records for their frames:
 *   MODULE (op 0x20)  8 u32 id  12 u32 0  16 u64 load bias
 *                    24 char[] path, NUL-terminated, zero-padded
 *   FRAME (op 0x21)   8 u32 id  12 u32 module id (0 = unknown)
 *                    16 u64 address of the call instruction (module-relative
 *                       when the module is known: `addr2line -e module`)
 *                    24 u32 line (0 = unknown)  28 u16 function length
 *                    30 u16 file length   32 function bytes, file bytes
 *                       (no NULs), zero-padded
 *   SITE (op 0x22)    8 u32 id  12 u32 frame count  16 u32 frame ids
 *                       (innermost first), zero-padded
 *
 * Events of one thread are in time order; across threads they are not
 * (the decoder merges the threads' streams by time).  A free and a malloc that reuses the same
 * address on another thread at almost the same instant may be stamped in
 * the wrong order (the hooks run after the operation).
 */
#define _GNU_SOURCE
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "epoch.h"
#include "fmt.h"
#include "options.h"
#include "platform.h"
#include "symbolize.h"
#include "track.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the log format is little-endian; add byte swapping for this target"
#endif

int fb_trace_on;

enum {
    TR_CHUNK = 0x10,
    TR_MODULE = 0x20,
    TR_FRAME = 0x21,
    TR_SITE = 0x22,
    TR_END = 0x2f,
};

#define TR_VERSION 1u
#define TR_BUF_BYTES (64u * 1024)
#define TR_CAP (TR_BUF_BYTES / sizeof(struct tr_rec))
#define TR_MAX_BUFS 1024u
#define TR_SIZE_MAX (((uint64_t)1 << 56) - 1)

struct tr_rec {
    uint64_t w0;         /* op | value << 8 */
    uint64_t time;
    uint64_t ptr;
    uint32_t thread;
    uint32_t site;
};
_Static_assert(sizeof(struct tr_rec) == 32, "record layout");

/* One per-thread buffer.  n is written by the owner only (release, so a
 * concurrent exit flush sees whole records); start (records already
 * written out by the exit flush) is read and written under lock. */
struct tr_slot {
    _Atomic uint32_t n;
    uint32_t start;
    _Atomic int lock;
    _Atomic int owned;
    uint32_t tid;        /* the owner's thread number (CHUNK records) */
    struct tr_rec *rec;  /* TR_CAP records, mmap'd once, never unmapped */
} __attribute__((aligned(64)));

FB_BIG_BSS static struct tr_slot tr_slots[TR_MAX_BUFS];
static _Atomic uint32_t tr_slots_hw;        /* slots ever claimed */

enum { TR_T_NEW = 0, TR_T_BUF, TR_T_DIRECT, TR_T_DEAD };

struct tr_tls {
    struct tr_slot *slot;
    uint32_t tid;
    uint8_t state;
};
static __thread struct tr_tls tr_t __attribute__((tls_model("initial-exec")));

static _Atomic uint32_t tr_next_tid;
static _Atomic int tr_closed;               /* exit flush done */
static _Atomic uint64_t tr_dropped;
static uint64_t tr_base_ns, tr_real_base_ns;
static pid_t tr_pid, tr_ppid;
static uint32_t tr_flags;

/* Sites named by this process's events (one byte per site id, written
 * with plain stores of 1): only those go into the site table, so a forked
 * child does not symbolise every site it inherited. */
#define TR_SEEN_CAP ((size_t)1 << 22)
static uint8_t *tr_seen;

static _Atomic int tr_fd = -1;
static _Atomic int tr_failed;               /* open or write failed: say once */
static pthread_mutex_t tr_open_lock = PTHREAD_MUTEX_INITIALIZER;
/* A pipe or other non-regular file: O_APPEND does not keep writes larger
 * than PIPE_BUF whole, so writes are serialised by this lock. */
static int tr_serial;
static pthread_mutex_t tr_write_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t clock_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC) - tr_base_ns;
}

static void spin_lock(_Atomic int *l)
{
    while (atomic_exchange_explicit(l, 1, memory_order_acquire))
        while (atomic_load_explicit(l, memory_order_relaxed))
            sched_yield();
}

static void spin_unlock(_Atomic int *l)
{
    atomic_store_explicit(l, 0, memory_order_release);
}

/* ---------------------------------------------------------------------- */
/* The file                                                                */

static void fail_once(const char *what, const char *path, int err)
{
    int expected = 0;
    if (atomic_compare_exchange_strong(&tr_failed, &expected, 1))
        fb_fmt_dprintf(2, "fbmalloc: cannot %s FBMALLOC_TRACE file \"%s\" "
                          "(errno %d); events are dropped\n",
                       what, path, err);
}

static int write_iov(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t w = writev(fd, iov, cnt);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        size_t left = (size_t)w;
        while (cnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

static int write_all_iov(int fd, struct iovec *iov, int cnt)
{
    if (!tr_serial)
        return write_iov(fd, iov, cnt);
    pthread_mutex_lock(&tr_write_lock);
    int r = write_iov(fd, iov, cnt);
    pthread_mutex_unlock(&tr_write_lock);
    return r;
}

/* The header, written by whoever opens the file, before anyone else can
 * write to it. */
static int write_header(int fd)
{
    union {
        char bytes[56 + 520];
        uint64_t align;
    } h;
    memset(&h, 0, sizeof h);
    char exe[512];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len < 0)
        len = 0;
    exe[len] = '\0';
    uint32_t hlen = (uint32_t)((56 + (size_t)len + 1 + 7) & ~(size_t)7);
    uint32_t u32[6] = { TR_VERSION, hlen, (uint32_t)sizeof(struct tr_rec),
                        (uint32_t)tr_pid, 0, 0 };
    memcpy(h.bytes, "FBTRACE1", 8);
    memcpy(h.bytes + 8, u32, 16);
    memcpy(h.bytes + 24, &tr_base_ns, 8);
    memcpy(h.bytes + 32, &tr_real_base_ns, 8);
    u32[0] = (uint32_t)tr_ppid;
    u32[1] = tr_flags;
    memcpy(h.bytes + 40, u32, 8);
    memcpy(h.bytes + 56, exe, (size_t)len + 1);
    struct iovec iov = { h.bytes, hlen };
    return write_all_iov(fd, &iov, 1);
}

/* The file descriptor, opened (with its header) on first use; -1 if the
 * file cannot be written. */
static int trace_fd(void)
{
    int fd = atomic_load_explicit(&tr_fd, memory_order_acquire);
    if (fb_likely(fd >= 0))
        return fd;
    if (atomic_load_explicit(&tr_failed, memory_order_relaxed))
        return -1;
    pthread_mutex_lock(&tr_open_lock);
    fd = atomic_load_explicit(&tr_fd, memory_order_acquire);
    if (fd < 0 && !atomic_load_explicit(&tr_failed, memory_order_relaxed)) {
        char path[FB_OPT_PATH_MAX + 32];
        fb_plat_expand_path(fb_opt.trace, tr_pid, path, sizeof path);
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        struct stat st;
        if (fd >= 0)
            tr_serial = fstat(fd, &st) != 0 || !S_ISREG(st.st_mode);
        if (fd < 0) {
            fail_once("open", path, errno);
        } else if (write_header(fd) != 0) {
            fail_once("write", path, errno);
            close(fd);
            fd = -1;
        } else {
            atomic_store_explicit(&tr_fd, fd, memory_order_release);
        }
    }
    pthread_mutex_unlock(&tr_open_lock);
    return fd;
}

/* Writes a CHUNK record and n events in one writev.  Keeps errno. */
static void write_events(const struct tr_rec *r, uint32_t n, uint32_t tid)
{
    if (n == 0)
        return;
    int saved = errno;
    int fd = trace_fd();
    if (fd >= 0) {
        struct tr_rec chunk = {
            .w0 = TR_CHUNK | (uint64_t)n << 8,
            .time = now_ns(),
            .ptr = (uint64_t)tr_pid,
            .thread = tid,
            .site = 0,
        };
        struct iovec iov[2] = {
            { &chunk, sizeof chunk },
            { (void *)r, (size_t)n * sizeof *r },
        };
        if (write_all_iov(fd, iov, 2) != 0) {
            atomic_fetch_add_explicit(&tr_dropped, n, memory_order_relaxed);
            fail_once("write", fb_opt.trace, errno);
        }
    } else {
        atomic_fetch_add_explicit(&tr_dropped, n, memory_order_relaxed);
    }
    errno = saved;
}

/* Writes out what slot s holds and has not written yet.  reset: the owner
 * empties its buffer (full, or at thread exit); otherwise (the exit flush
 * of another thread's buffer) only the written prefix advances. */
static void flush_slot(struct tr_slot *s, int reset)
{
    spin_lock(&s->lock);
    uint32_t n = atomic_load_explicit(&s->n, memory_order_acquire);
    if (n > s->start && s->rec)
        write_events(s->rec + s->start, n - s->start, s->tid);
    if (reset) {
        s->start = 0;
        atomic_store_explicit(&s->n, 0, memory_order_relaxed);
    } else {
        s->start = n;
    }
    spin_unlock(&s->lock);
}

/* ---------------------------------------------------------------------- */
/* Events                                                                  */

static struct tr_slot *claim_slot(uint32_t tid)
{
    for (uint32_t i = 0; i < TR_MAX_BUFS; i++) {
        struct tr_slot *s = &tr_slots[i];
        int expected = 0;
        if (atomic_load_explicit(&s->owned, memory_order_relaxed) ||
            !atomic_compare_exchange_strong(&s->owned, &expected, 1))
            continue;
        if (!s->rec) {
            void *m = mmap(NULL, TR_BUF_BYTES, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) {
                atomic_store(&s->owned, 0);
                return NULL;
            }
            s->rec = m;
        }
        spin_lock(&s->lock);
        s->tid = tid;
        s->start = 0;
        atomic_store_explicit(&s->n, 0, memory_order_relaxed);
        spin_unlock(&s->lock);
        uint32_t hw = atomic_load(&tr_slots_hw);
        while (hw < i + 1 && !atomic_compare_exchange_weak(&tr_slots_hw, &hw, i + 1))
            ;
        return s;
    }
    return NULL;
}

static FB_NOINLINE void event_slow(struct tr_tls *t, const struct tr_rec *r)
{
    if (t->state == TR_T_NEW) {
        int saved = errno;
        t->tid = atomic_fetch_add(&tr_next_tid, 1) + 1;
        t->slot = claim_slot(t->tid);
        t->state = t->slot ? TR_T_BUF : TR_T_DIRECT;
        errno = saved;
        if (t->slot && !atomic_load_explicit(&tr_closed, memory_order_acquire)) {
            struct tr_rec *d = &t->slot->rec[0];
            *d = *r;
            d->thread = t->tid;
            atomic_store_explicit(&t->slot->n, 1, memory_order_release);
            return;
        }
    }
    struct tr_rec one = *r;
    one.thread = t->tid;
    write_events(&one, 1, t->tid);
}

void fb_trace_event(enum fb_trace_op op, const void *ptr, size_t size,
                    uint32_t site)
{
    if (fb_unlikely(fb_t.busy))
        return;                      /* our own allocations */
    struct tr_tls *t = &tr_t;
    struct tr_slot *s = t->slot;
    uint64_t w0 = (uint64_t)op |
                  (uint64_t)(size < TR_SIZE_MAX ? size : TR_SIZE_MAX) << 8;
    if (fb_unlikely(!s || atomic_load_explicit(&tr_closed, memory_order_relaxed))) {
        if (atomic_load_explicit(&tr_closed, memory_order_relaxed))
            return;                  /* after the exit flush: teardown */
        if (site < TR_SEEN_CAP && tr_seen)
            tr_seen[site] = 1;
        struct tr_rec r = { w0, now_ns(), (uintptr_t)ptr, 0, site };
        event_slow(t, &r);
        return;
    }
    if (site < TR_SEEN_CAP && tr_seen)
        tr_seen[site] = 1;
    uint32_t n = atomic_load_explicit(&s->n, memory_order_relaxed);
    struct tr_rec *r = &s->rec[n];
    r->w0 = w0;
    r->time = now_ns();
    r->ptr = (uintptr_t)ptr;
    r->thread = t->tid;
    r->site = site;
    atomic_store_explicit(&s->n, n + 1, memory_order_release);
    if (fb_unlikely(n + 1 == TR_CAP))
        flush_slot(s, 1);
}

/* ---------------------------------------------------------------------- */
/* Lifecycle                                                               */

FB_COLD int fb_trace_init(void)
{
    if (fb_opt.trace[0] == '\0' || strcmp(fb_opt.trace, "none") == 0)
        return 0;
    tr_base_ns = clock_ns(CLOCK_MONOTONIC);
    tr_real_base_ns = clock_ns(CLOCK_REALTIME);
    tr_pid = getpid();
    tr_ppid = getppid();
    void *seen = mmap(NULL, TR_SEEN_CAP, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    tr_seen = seen == MAP_FAILED ? NULL : seen;  /* NULL: every site */
    fb_trace_on = 1;
    return 1;
}

void fb_trace_thread_exit(void)
{
    struct tr_tls *t = &tr_t;
    struct tr_slot *s = t->slot;
    t->slot = NULL;
    t->state = TR_T_DEAD;            /* later events are written directly */
    if (!s)
        return;
    flush_slot(s, 1);
    atomic_store_explicit(&s->owned, 0, memory_order_release);
}

void fb_trace_fork_prepare(void)
{
    /* No thread may hold our locks (opening the file, writing to a pipe)
     * at fork. */
    pthread_mutex_lock(&tr_open_lock);
    pthread_mutex_lock(&tr_write_lock);
}

void fb_trace_fork_parent(void)
{
    pthread_mutex_unlock(&tr_write_lock);
    pthread_mutex_unlock(&tr_open_lock);
}

void fb_trace_fork_child(void)
{
    pthread_mutex_init(&tr_open_lock, NULL);
    pthread_mutex_init(&tr_write_lock, NULL);
    int fd = atomic_exchange(&tr_fd, -1);
    if (fd >= 0)
        close(fd);                   /* the parent's file */
    atomic_store(&tr_failed, 0);
    atomic_store(&tr_closed, 0);
    atomic_store(&tr_dropped, 0);
    tr_ppid = tr_pid;
    tr_pid = getpid();
    tr_flags = 1;

    /* Only this thread exists now: every other buffer is free again and
     * this one is emptied (what it holds is the parent's to write). */
    struct tr_tls *t = &tr_t;
    uint32_t hw = atomic_load(&tr_slots_hw);
    for (uint32_t i = 0; i < hw; i++) {
        struct tr_slot *s = &tr_slots[i];
        atomic_store(&s->lock, 0);
        s->start = 0;
        atomic_store(&s->n, 0);
        if (s != t->slot)
            atomic_store(&s->owned, 0);
    }
    if (tr_seen) {
        size_t used = fb_track_site_count();
        memset(tr_seen, 0, used < TR_SEEN_CAP ? used : TR_SEEN_CAP);
    }
    atomic_store(&tr_next_tid, 0);
    if (t->state != TR_T_NEW)
        t->tid = atomic_fetch_add(&tr_next_tid, 1) + 1;
    if (t->slot)
        t->slot->tid = t->tid;
}

/* ---- The call-site table, at exit -------------------------------------- */

/* Output of variable records through an mmap'd staging area. */
struct out {
    char *p;
    size_t len, cap;
};

static void out_flush(struct out *o)
{
    int fd = trace_fd();
    if (fd >= 0 && o->len) {
        struct iovec iov = { o->p, o->len };
        if (write_all_iov(fd, &iov, 1) != 0)
            fail_once("write", fb_opt.trace, errno);
    }
    o->len = 0;
}

/* Room for need bytes (need <= cap), zeroed; returns where to write. */
static char *out_room(struct out *o, size_t need)
{
    if (o->cap - o->len < need)
        out_flush(o);
    char *r = o->p + o->len;
    memset(r, 0, need);
    return r;
}

static void put_w0(char *at, unsigned op, size_t len)
{
    uint64_t w0 = (uint64_t)op | (uint64_t)len << 8;
    memcpy(at, &w0, 8);
}

#define PAD8(x) (((x) + 7) & ~(size_t)7)

/* Frames deduplicated by address: a table in mmap'd memory. */
struct frame_tab {
    uintptr_t *key;      /* return address + 1 (0 = empty) */
    uint32_t *id;
    size_t mask;
    uint32_t next;
};

static uint32_t frame_id(struct frame_tab *ft, uintptr_t ra, int *fresh)
{
    size_t h = (size_t)((ra * 0x9e3779b97f4a7c15ull) >> 20) & ft->mask;
    while (ft->key[h] && ft->key[h] != ra + 1)
        h = (h + 1) & ft->mask;
    *fresh = ft->key[h] == 0;
    if (*fresh) {
        ft->key[h] = ra + 1;
        ft->id[h] = ++ft->next;
    }
    return ft->id[h];
}

static void write_frame(struct out *o, uint32_t id, uintptr_t ra,
                        uint32_t mod, struct fb_sym *sym)
{
    const struct fb_track_module *m = fb_track_module(mod);
    uintptr_t pc = ra - 1;           /* the call, not the return */
    uintptr_t addr = m ? pc - m->bias : pc;
    memset(sym, 0, sizeof *sym);
    if (m)
        fb_sym_lookup(m->path, addr, sym);
    size_t flen = strnlen(sym->func, sizeof sym->func - 1);
    size_t slen = strnlen(sym->file, sizeof sym->file - 1);
    size_t len = PAD8(32 + flen + slen);
    char *r = out_room(o, len);
    put_w0(r, TR_FRAME, len);
    uint32_t u[2] = { id, m ? mod : 0 };
    memcpy(r + 8, u, 8);
    uint64_t a = addr;
    memcpy(r + 16, &a, 8);
    uint32_t line = sym->line > 0 ? (uint32_t)sym->line : 0;
    uint16_t l16[2] = { (uint16_t)flen, (uint16_t)slen };
    memcpy(r + 24, &line, 4);
    memcpy(r + 28, l16, 4);
    memcpy(r + 32, sym->func, flen);
    memcpy(r + 32 + flen, sym->file, slen);
    o->len += len;
}

static int site_seen(uint32_t id)
{
    return !tr_seen || id >= TR_SEEN_CAP || tr_seen[id];
}

/* Every module, then the sites named by this process's events and their
 * frames.  Returns the number of sites written. */
static uint32_t write_site_table(struct out *o)
{
    /* Modules. */
    for (uint32_t i = 1;; i++) {
        const struct fb_track_module *m = fb_track_module(i);
        if (!m)
            break;
        size_t plen = strlen(m->path);
        if (plen > 4096)
            plen = 4096;
        size_t len = PAD8(24 + plen + 1);
        char *r = out_room(o, len);
        put_w0(r, TR_MODULE, len);
        memcpy(r + 8, &i, 4);
        uint64_t bias = m->bias;
        memcpy(r + 16, &bias, 8);
        memcpy(r + 24, m->path, plen);
        o->len += len;
    }

    uint32_t nsites = fb_track_site_count(), written = 0;
    size_t total = 0;
    for (uint32_t id = 1; id < nsites; id++) {
        const struct fb_track_site *s = fb_track_site(id);
        if (s && site_seen(id))
            total += s->depth;
    }
    if (!total)
        return 0;
    size_t cap = 16;
    while (cap < total * 2)
        cap <<= 1;
    struct frame_tab ft = { 0 };
    size_t tab_bytes = cap * (sizeof *ft.key + sizeof *ft.id);
    char *tab = mmap(NULL, tab_bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (tab == MAP_FAILED)
        return 0;
    ft.key = (uintptr_t *)tab;
    ft.id = (uint32_t *)(tab + cap * sizeof *ft.key);
    ft.mask = cap - 1;

    static struct fb_sym sym;        /* 1 KiB: not on the stack */
    fb_sym_open();
    for (uint32_t id = 1; id < nsites; id++) {
        const struct fb_track_site *s = fb_track_site(id);
        if (!s || !site_seen(id))
            continue;
        unsigned depth = s->depth < FB_TRACK_MAX_DEPTH ? s->depth : FB_TRACK_MAX_DEPTH;
        uint32_t fids[FB_TRACK_MAX_DEPTH];
        for (unsigned k = 0; k < depth; k++) {
            int fresh;
            fids[k] = frame_id(&ft, s->frames[k], &fresh);
            if (fresh)
                write_frame(o, fids[k], s->frames[k], s->modules[k], &sym);
        }
        size_t len = PAD8(16 + 4 * (size_t)depth);
        char *r = out_room(o, len);
        put_w0(r, TR_SITE, len);
        uint32_t u[2] = { id, depth };
        memcpy(r + 8, u, 8);
        memcpy(r + 16, fids, 4 * (size_t)depth);
        o->len += len;
        written++;
    }
    fb_sym_close();
    munmap(tab, tab_bytes);
    return written;
}

void fb_trace_at_exit(void)
{
    uint8_t was = fb_t.busy;
    fb_t.busy = 1;                   /* symbolisation allocates: not logged */
    int saved = errno;

    /* From now on events are dropped; every buffer still held is written
     * (other threads may be running: their buffers are written up to what
     * they had published). */
    atomic_store_explicit(&tr_closed, 1, memory_order_seq_cst);
    uint32_t hw = atomic_load(&tr_slots_hw);
    for (uint32_t i = 0; i < hw; i++) {
        struct tr_slot *s = &tr_slots[i];
        if (s->rec && atomic_load_explicit(&s->owned, memory_order_acquire))
            flush_slot(s, s == tr_t.slot);
    }

    /* Nothing was ever logged: no file. */
    if (atomic_load(&tr_fd) >= 0) {
        struct out o = { 0 };
        o.cap = 256u * 1024;         /* > one FRAME record of 1 KiB */
        o.p = mmap(NULL, o.cap, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (o.p != MAP_FAILED) {
            uint32_t sites = write_site_table(&o);
            char *r = out_room(&o, 32);
            struct tr_rec end = {
                .w0 = TR_END | atomic_load(&tr_dropped) << 8,
                .time = now_ns(),
                .ptr = (uint64_t)tr_pid,
                .thread = atomic_load(&tr_next_tid),
                .site = sites,
            };
            memcpy(r, &end, sizeof end);
            o.len += 32;
            out_flush(&o);
            munmap(o.p, o.cap);
        }
    }
    errno = saved;
    fb_t.busy = was;
}
