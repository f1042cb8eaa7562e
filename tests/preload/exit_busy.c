/*
 * A program that exits while its threads are still allocating and
 * writing: exit-time checks (FBMALLOC_CANARY's guard walk, leak reports)
 * must not report blocks that are only half set up (issue 13, item 6).
 *
 * The parent runs N rounds (argv[1], default 200); each round forks a
 * child that starts 3 threads churning malloc/calloc/realloc/aligned
 * blocks of many sizes (every byte written, within bounds), lets them
 * run a little, then calls exit() while they run.  Every child must exit
 * with status 0; the test script checks that nothing was reported.
 *
 * With EXIT_BUSY=damage each child first damages one block that nobody
 * touches afterwards (even rounds: 3 bytes past the end of a 40-byte
 * block; odd rounds: one byte of the guard before a 64-byte aligned
 * block, 20 bytes before it) and keeps it: every child must then be
 * aborted with that one report on its stderr, "found at exit", however
 * busy the other threads are.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Volatile: the compiler may neither drop the writes (a block nobody
 * reads) nor see their bounds. */
static char *volatile damaged;
static volatile size_t small = 40, before = 20;

/* The child's stderr (written to a file) must hold want and "found at
 * exit", and it must have been aborted. */
static int damage_reported(int st, int fd, const char *want)
{
    char buf[8192];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && strstr(buf, want) &&
        strstr(buf, "found at exit"))
        return 1;
    fprintf(stderr, "child %s %d, stderr: %.2000s\n", WIFSIGNALED(st) ? "killed by signal" : "exit",
            WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), buf);
    return 0;
}

static void *churn(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    char *keep[32] = {0};
    size_t len[32] = {0};
    for (;;) {
        unsigned i = (seed = seed * 1103515245u + 12345u) >> 16;
        unsigned k = i & 31;
        size_t n = (i & 3) == 0 ? 1024 + (i & 4095) : 1 + (i & 511);
        free(keep[k]);
        switch ((i >> 5) & 3) {
        case 0: keep[k] = malloc(n); break;
        case 1: keep[k] = calloc(1, n); break;
        case 2: keep[k] = aligned_alloc(64, (n + 63) & ~(size_t)63); n = (n + 63) & ~(size_t)63; break;
        default: keep[k] = realloc(malloc(16), n); break;
        }
        len[k] = keep[k] ? n : 0;
        if (keep[k])
            memset(keep[k], (int)i, len[k]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 200, bad = 0;
    const char *mode = getenv("EXIT_BUSY");
    int damage = mode && !strcmp(mode, "damage");
    char path[] = "/tmp/exit_busy.XXXXXX";
    int fd = damage ? mkstemp(path) : -1;
    if (damage && fd < 0) {
        perror("mkstemp");
        return 2;
    }
    if (fd >= 0)
        unlink(path);
    for (int r = 0; r < rounds; r++) {
        if (fd >= 0 && (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0))
            return 2;
        pid_t pid = fork();
        if (pid == 0) {
            alarm(20);
            if (damage) {
                dup2(fd, 2);
                if (r % 2 == 0) {
                    damaged = malloc(small);
                    memset(damaged + small, 1, 3);
                } else {
                    damaged = aligned_alloc(64, 64);
                    damaged[-(long)before] = 1;
                }
            }
            pthread_t t;
            for (int i = 0; i < 3; i++)
                pthread_create(&t, NULL, churn, (void *)(uintptr_t)(r * 3 + i + 1));
            struct timespec ts = {0, 2000000 + (r % 5) * 1000000};
            nanosleep(&ts, NULL);
            exit(0);
        }
        int st;
        if (pid < 0 || waitpid(pid, &st, 0) != pid) {
            perror("fork/waitpid");
            return 2;
        }
        if (damage) {
            bad += !damage_reported(st, fd, r % 2 == 0
                ? "heap overrun: 3 bytes written past the end of a 40-byte block"
                : "heap underrun: the guard before the block");
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            bad++;
            fprintf(stderr, "round %d: child %s %d\n", r, WIFSIGNALED(st) ? "killed by signal" : "exit",
                    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        }
    }
    if (bad) {
        printf("FAIL %d of %d children exiting during allocation failed\n", bad, rounds);
        return 1;
    }
    if (damage)
        printf("ok   %d children exited while 3 threads allocated, a damaged block "
               "each: each one reported at exit\n", rounds);
    else
        printf("ok   %d children exited while 3 threads allocated: all clean\n", rounds);
    return 0;
}
