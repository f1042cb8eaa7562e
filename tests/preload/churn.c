/*
 * A small, deterministic allocation workload for preload tests: prints a
 * checksum that must be the same with and without the library.
 *   churn [fork]   with "fork", a child process runs the workload too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned long work(void)
{
    enum { N = 4096 };
    static char *slots[N];
    unsigned long sum = 0, x = 12345;
    for (int i = 0; i < 200000; i++) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        int k = (int)((x >> 33) % N);
        size_t n = 1 + (size_t)((x >> 13) % ((x & 1) ? 300 : 5000));
        if (slots[k]) {
            sum += (unsigned char)slots[k][0];
            free(slots[k]);
        }
        slots[k] = malloc(n);
        memset(slots[k], (int)(i & 0xff), n);
    }
    for (int k = 0; k < N; k++)
        free(slots[k]);
    return sum;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "fork")) {
        pid_t pid = fork();
        if (pid == 0) {
            printf("child %lu\n", work());
            return 0;
        }
        int st;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return 1;
    }
    printf("checksum %lu\n", work());
    return 0;
}
