/*
 * fork() while other threads allocate and free, under a debugging mode
 * (FBMALLOC_CHECK, FBMALLOC_CANARY, ...): every child must run and exit
 * cleanly (issue 13, items 3 and 6).
 *
 * Two threads churn malloc/free of small and jemalloc-sized blocks
 * (writing every byte) while main forks N times (argv[1], default 200).
 * Each child allocates and frees a little, then calls exit() so that
 * every exit-time check runs in it.  A child stuck on a lock held across
 * fork is killed by its alarm and reported as a hang; any other non-zero
 * status is reported too.  Prints "ok ..." and exits 0 when all are clean.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int stop;

static void *churn(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    char *keep[64] = {0};
    while (!atomic_load(&stop)) {
        unsigned i = (seed = seed * 1103515245u + 12345u) >> 16;
        size_t n = (i & 7) == 0 ? 1500 + (i & 1023) : 8 + (i & 255);
        char **slot = &keep[i & 63];
        free(*slot);
        *slot = malloc(n);
        if (*slot)
            memset(*slot, (int)(i & 0xff), n);
    }
    for (int k = 0; k < 64; k++)
        free(keep[k]);
    return NULL;
}

int main(int argc, char **argv)
{
    int forks = argc > 1 ? atoi(argv[1]) : 200;
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, churn, (void *)(uintptr_t)(i + 1));
    int hangs = 0, bad = 0;
    for (int k = 0; k < forks; k++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(5);
            for (int j = 0; j < 100; j++) {
                char *a = malloc(40), *b = malloc(3000);
                memset(a, 1, 40);
                memset(b, 2, 3000);
                free(a);
                free(b);
            }
            exit(0);
        }
        int st;
        if (pid < 0 || waitpid(pid, &st, 0) != pid) {
            perror("fork/waitpid");
            return 2;
        }
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
            hangs++;
        else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            bad++;
            fprintf(stderr, "child %d: %s %d\n", k, WIFSIGNALED(st) ? "signal" : "exit",
                    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    if (hangs || bad) {
        printf("FAIL %d of %d children hung, %d failed\n", hangs, forks, bad);
        return 1;
    }
    printf("ok   %d children forked while 2 threads churned: all exited cleanly\n", forks);
    return 0;
}
