/*
 * OS services: address space, output destination, and the record of
 * every mapping the library makes (see platform.h).
 */
#define _GNU_SOURCE
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fb.h"
#include "fmt.h"
#include "options.h"

void *fb_plat_reserve(size_t size, size_t align)
{
    /* Over-reserve by align and trim both ends, so the region starts on an
     * align boundary (slot and epoch indices are then plain shifts).  mmap
     * itself aligns to pages: no trimming then (two system calls fewer per
     * reservation, at every exec). */
    if (align <= fb_plat_page_size()) {
        void *q = mmap(NULL, size, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        return q == MAP_FAILED ? NULL : q;
    }
    size_t total = size + align;
    if (total < size)
        return NULL;
    char *p = mmap(NULL, total, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uintptr_t start = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)p;
    size_t tail = total - head - size;
    if (head)
        munmap(p, head);
    if (tail)
        munmap((char *)start + size, tail);
    return (void *)start;
}

int fb_plat_commit(void *p, size_t size)
{
    return mprotect(p, size, PROT_READ | PROT_WRITE);
}

void fb_plat_release(void *p, size_t size)
{
    munmap(p, size);
}

/* The kernel counts every mapping against RLIMIT_AS, PROT_NONE and
 * MAP_NORESERVE ones included; /proc/self/statm's first field is that
 * total, in pages.  Read only when a limit is set. */
size_t fb_plat_as_left(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return SIZE_MAX;
    size_t limit = (size_t)rl.rlim_cur, used = 0;
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return limit / 2;            /* unknown: assume half is in use */
    for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
        used = used * 10 + (size_t)(buf[i] - '0');
    used *= fb_plat_page_size();
    return limit > used ? limit - used : 0;
}

int fb_plat_as_limited(void)
{
    struct rlimit as, data;
    return (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) ||
           (getrlimit(RLIMIT_DATA, &data) == 0 && data.rlim_cur != RLIM_INFINITY);
}

size_t fb_plat_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0 || ru.ru_maxrss <= 0)
        return 0;
    return (size_t)ru.ru_maxrss * 1024;    /* Linux counts KiB */
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

void fb_plat_prefault(const void *p, size_t n)
{
    uintptr_t pg = fb_plat_page_size(), lo = (uintptr_t)p & ~(pg - 1);
    uintptr_t hi = ((uintptr_t)p + n + pg - 1) & ~(pg - 1);
    int saved = errno;
    madvise((void *)lo, hi - lo, MADV_POPULATE_READ);
    errno = saved;
}

size_t fb_plat_page_size(void)
{
    static size_t page;
    if (!page) {
        long v = sysconf(_SC_PAGESIZE);
        page = v > 0 ? (size_t)v : 4096;
    }
    return page;
}

void fb_plat_expand_path(const char *spec, pid_t pid, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *s = spec; *s && n + 24 < cap; s++) {
        if (s[0] == '%' && s[1] == 'p') {
            n += fb_fmt_snprintf(out + n, cap - n, "%d", (int)pid);
            s++;
        } else {
            out[n++] = *s;
        }
    }
    out[n] = '\0';
}

static int out_fd = -1;
static pid_t out_pid;

/* FBMALLOC_OUTPUT's standard stream (2 or 1), or -1 for a file. */
static int output_std(void)
{
    const char *spec = fb_opt.output;
    if (spec[0] == '\0' || strcmp(spec, "stderr") == 0)
        return 2;
    return strcmp(spec, "stdout") == 0 ? 1 : -1;
}

/*
 * The standard stream's duplicate (fb_plat_output_keep): programs close
 * their stderr before exit (coreutils' close_stdout closes both streams
 * in an atexit handler, which runs before our destructor), and the leak
 * report or the statistics of `ls` were lost.  Worse, the number 2 was
 * then free for the next descriptor: libunwind's pipe for probing memory
 * took it, and the report went into the pipe; a file the program opened
 * could take it as well, and get the report in its data.  A stream the
 * program set up for itself (its own stderr, or a file it put there with
 * dup2 on purpose) is inheritable; a descriptor that took the number by
 * accident almost always is close-on-exec (pipe2 and open with O_CLOEXEC,
 * as glibc's "e" fopen, Python and libunwind use).  So fd 2 is written to
 * while it is open and inheritable, as before; otherwise the duplicate,
 * as valgrind keeps its log fd out of the program's reach (its "safe
 * fd"), while it is still the file it was made for (a program that closes
 * every descriptor may have reused that number too).  A file opened
 * without O_CLOEXEC after stderr was closed cannot be told from a
 * redirection: it gets the reports, as it would from glibc's own.
 */
static int kept_fd = -1, kept_std;
static dev_t kept_dev;
static ino_t kept_ino;

void fb_plat_output_keep(void)
{
    int std = output_std();
    if (std < 0 || kept_fd >= 0)
        return;
    int saved = errno;
    /* High, where programs rarely dup2 to; any free one if the
     * descriptor limit is lower. */
    int fd = fcntl(std, F_DUPFD_CLOEXEC, 100);
    if (fd < 0)
        fd = fcntl(std, F_DUPFD_CLOEXEC, 3);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0) {
        kept_fd = fd;
        kept_std = std;
        kept_dev = st.st_dev;
        kept_ino = st.st_ino;
    } else if (fd >= 0) {
        close(fd);
    }
    errno = saved;
}

static int std_fd(int std)
{
    struct stat st;
    int saved = errno;
    int flags = fcntl(std, F_GETFD);
    int fd = (flags < 0 || (flags & FD_CLOEXEC)) && kept_fd >= 0 && kept_std == std &&
                     fstat(kept_fd, &st) == 0 && st.st_dev == kept_dev &&
                     st.st_ino == kept_ino
                 ? kept_fd
                 : std;
    errno = saved;
    return fd;
}

int fb_plat_stderr(void)
{
    return std_fd(2);
}

int fb_plat_output_fd(void)
{
    int std = output_std();
    if (std >= 0)
        return std_fd(std);
    const char *spec = fb_opt.output;
    pid_t pid = getpid();
    if (out_fd >= 0 && out_pid == pid)
        return out_fd;

    /* Expand %p to the pid: a make running gcc gets one file per process.
     * Appending (never truncating) keeps processes that share a name
     * from erasing each other's reports. */
    char path[FB_OPT_PATH_MAX + 32];
    fb_plat_expand_path(spec, pid, path, sizeof path);
    int saved = errno;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fb_fmt_dprintf(2,
                       "fbmalloc: cannot open FBMALLOC_OUTPUT file \"%s\" "
                       "(errno %d); writing to stderr\n",
                       path, errno);
        errno = saved;
        return 2;
    }
    errno = saved;
    out_fd = fd;
    out_pid = pid;
    return fd;
}

void fb_plat_output_done(void)
{
    if (out_fd >= 0 && out_pid == getpid()) {
        close(out_fd);
        out_fd = -1;
    }
}

/* ---------------------------------------------------------------------- */
/* The record of our mappings                                              */

/*
 * Range sets: sorted, disjoint, adjacent ranges merged (top-down mmap
 * places most new mappings right below the previous one, so the sets stay
 * short).  The caller holds whatever lock guards the set.
 */

size_t fb_plat_set_find(const struct fb_plat_rangeset *s, uintptr_t a)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->r[mid].hi < a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void fb_plat_set_add(struct fb_plat_rangeset *s, uintptr_t lo, uintptr_t hi)
{
    struct fb_plat_range *r = s->r;
    size_t i = fb_plat_set_find(s, lo), j = i;
    /* Every range from i that touches or overlaps [lo, hi) merges. */
    while (j < s->n && r[j].lo <= hi) {
        if (r[j].lo < lo)
            lo = r[j].lo;
        if (r[j].hi > hi)
            hi = r[j].hi;
        j++;
    }
    if (j == i) {
        if (s->n == s->cap) {
            s->overflow = 1;
            return;
        }
        memmove(&r[i + 1], &r[i], (s->n - i) * sizeof r[0]);
        s->n++;
    } else if (j > i + 1) {
        memmove(&r[i + 1], &r[j], (s->n - j) * sizeof r[0]);
        s->n -= j - i - 1;
    }
    r[i] = (struct fb_plat_range){lo, hi};
}

void fb_plat_set_remove(struct fb_plat_rangeset *s, uintptr_t lo, uintptr_t hi)
{
    struct fb_plat_range *r = s->r;
    size_t i = fb_plat_set_find(s, lo + 1);
    while (i < s->n && r[i].lo < hi) {
        struct fb_plat_range c = r[i];
        if (c.lo < lo && c.hi > hi) {            /* split in two */
            if (s->n == s->cap) {
                s->overflow = 1;
                return;
            }
            memmove(&r[i + 1], &r[i], (s->n - i) * sizeof r[0]);
            s->n++;
            r[i].hi = lo;
            r[i + 1].lo = hi;
            return;
        }
        if (c.lo < lo) {
            r[i++].hi = lo;
        } else if (c.hi > hi) {
            r[i].lo = hi;
            return;
        } else {
            memmove(&r[i], &r[i + 1], (s->n - i - 1) * sizeof r[0]);
            s->n--;
        }
    }
}

/* ---------------------------------------------------------------------- */
/* The record of our mappings                                              */

FB_BIG_BSS static struct fb_plat_range own_r[FB_PLAT_OWN_MAX];
static struct fb_plat_rangeset own = {own_r, 0, FB_PLAT_OWN_MAX, 0};
static pthread_mutex_t own_lock = PTHREAD_MUTEX_INITIALIZER;

static uintptr_t page_up(size_t len)
{
    size_t pg = fb_plat_page_size();
    return (len + pg - 1) & ~(pg - 1);
}

static __thread int own_nowait __attribute__((tls_model("initial-exec")));

void fb_plat_own_nowait(int on)
{
    own_nowait = on;
}

static void own_record(uintptr_t lo, size_t len, int add)
{
    if (!len)
        return;
    if (!own_nowait) {
        pthread_mutex_lock(&own_lock);
    } else if (pthread_mutex_trylock(&own_lock) != 0) {
        own.overflow = 1;          /* its holder is stopped: not updating */
        return;
    }
    if (add)
        fb_plat_set_add(&own, lo, lo + page_up(len));
    else
        fb_plat_set_remove(&own, lo, lo + page_up(len));
    pthread_mutex_unlock(&own_lock);
}

size_t fb_plat_own_ranges(struct fb_plat_range *out)
{
    pthread_mutex_lock(&own_lock);
    size_t n = own.overflow ? (size_t)-1 : own.n;
    if (!own.overflow)
        memcpy(out, own.r, own.n * sizeof own.r[0]);
    pthread_mutex_unlock(&own_lock);
    return n;
}

void fb_plat_fork_prepare(void)
{
    pthread_mutex_lock(&own_lock);
}

void fb_plat_fork_parent(void)
{
    pthread_mutex_unlock(&own_lock);
}

void fb_plat_fork_child(void)
{
    pthread_mutex_init(&own_lock, NULL);
}

/* The wrappers --wrap binds the library's calls to (their names are the
 * linker's convention; hidden like everything of ours).  They make the
 * system calls themselves, so the modules also link without --wrap (unit
 * tests), where nothing calls them. */
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_munmap(void *addr, size_t len);
void *__wrap_mremap(void *old, size_t old_len, size_t new_len, int flags, ...);

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    void *p = (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED)
        own_record((uintptr_t)p, len, 1);
    return p;
}

void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return __wrap_mmap(addr, len, prot, flags, fd, off);
}

int __wrap_munmap(void *addr, size_t len)
{
    int r = (int)syscall(SYS_munmap, addr, len);
    if (r == 0)
        own_record((uintptr_t)addr, len, 0);
    return r;
}

void *__wrap_mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    void *want = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        want = va_arg(ap, void *);
        va_end(ap);
    }
    void *p = (void *)syscall(SYS_mremap, old, old_len, new_len, flags, want);
    if (p != MAP_FAILED) {
        own_record((uintptr_t)old, old_len, 0);
        own_record((uintptr_t)p, new_len, 1);
    }
    return p;
}
