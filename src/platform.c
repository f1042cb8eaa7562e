/*
 * OS services: address space, output destination.
 */
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
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

int fb_plat_output_fd(void)
{
    const char *spec = fb_opt.output;
    if (spec[0] == '\0' || strcmp(spec, "stderr") == 0)
        return 2;
    if (strcmp(spec, "stdout") == 0)
        return 1;
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
