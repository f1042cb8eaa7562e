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
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
    for (int r = 0; r < rounds; r++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(20);
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
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            bad++;
            fprintf(stderr, "round %d: child %s %d\n", r, WIFSIGNALED(st) ? "killed by signal" : "exit",
                    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        }
    }
    if (bad) {
        printf("FAIL %d of %d children exiting during allocation failed\n", bad, rounds);
        return 1;
    }
    printf("ok   %d children exited while 3 threads allocated: all clean\n", rounds);
    return 0;
}
