/*
 * In the default mode (no FBMALLOC_* variable) fbmalloc initialises on the
 * first allocation, not in its constructor (src/init.c), so a process that
 * never allocates reserves no address space: every command of a shell loop
 * inherits LD_PRELOAD.  Checked from /proc/self/maps, with no malloc (and
 * no stdio, which may allocate) before the first check:
 *  - before any allocation: no anonymous PROT_NONE mapping of 64 MiB or
 *    more (the buffers' region and its tables);
 *  - after one malloc: the region is there (the fast path is on);
 *  - a fork in this single-threaded process (its handlers skip the locks)
 *    leaves a child that allocates and frees.
 * Run with LD_PRELOAD=libfbmalloc.so and no FBMALLOC_* in the environment.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char maps[1 << 16];

static void say(const char *s)
{
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

static uintptr_t hex(const char **s)
{
    uintptr_t v = 0;
    for (;; (*s)++) {
        char c = **s;
        if (c >= '0' && c <= '9')
            v = v * 16 + (uintptr_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v * 16 + (uintptr_t)(c - 'a' + 10);
        else
            return v;
    }
}

/* Bytes in anonymous PROT_NONE mappings of at least 64 MiB each. */
static uintptr_t big_reserved(void)
{
    int fd = open("/proc/self/maps", O_RDONLY);
    if (fd < 0) {
        say("lazy_start: cannot open /proc/self/maps\n");
        exit(2);
    }
    size_t n = 0;
    ssize_t r;
    while (n < sizeof maps - 1 && (r = read(fd, maps + n, sizeof maps - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    maps[n] = '\0';
    uintptr_t total = 0;
    for (const char *l = maps; *l;) {
        /* lo-hi perms offset dev inode [path] */
        const char *s = l;
        uintptr_t lo = hex(&s);
        s++;
        uintptr_t hi = hex(&s);
        int none = strncmp(s + 1, "---p", 4) == 0;
        for (int f = 0; f < 4 && *s && *s != '\n'; f++) {
            while (*s == ' ')
                s++;
            while (*s && *s != ' ' && *s != '\n')
                s++;
        }
        while (*s == ' ')
            s++;
        int anon = *s == '\n' || *s == '\0';   /* no path, no [name] */
        if (none && anon && hi - lo >= ((uintptr_t)64 << 20))
            total += hi - lo;
        while (*s && *s != '\n')
            s++;
        l = *s ? s + 1 : s;
    }
    return total;
}

extern char **environ;

int main(void)
{
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "FBMALLOC_", 9) == 0) {
            say("lazy_start: skipped, an FBMALLOC_* variable is set\n");
            return 77;
        }
    int bad = 0;
    if (big_reserved() != 0) {
        say("lazy_start: address space reserved before any allocation\n");
        bad = 1;
    }
    void *p = malloc(32);
    if (!p || big_reserved() == 0) {
        say("lazy_start: no buffer region after the first malloc\n");
        bad = 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        void *q[64];
        for (int i = 0; i < 64; i++)
            q[i] = malloc((size_t)i * 24 + 1);
        for (int i = 0; i < 64; i++)
            free(q[i]);
        _exit(0);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        say("lazy_start: the forked child failed\n");
        bad = 1;
    }
    free(p);
    return bad;
}
