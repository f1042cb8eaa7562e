/*
 * runstat: run one command, report its wall time, peak RSS and how it
 * ended.  A tiny stand-in for /usr/bin/time with sub-millisecond wall
 * clock, a timeout and LD_PRELOAD applied to the child only (so that the
 * measuring process itself never runs on the allocator under test).
 *
 * usage: runstat [-o FILE] [-t SECONDS] [-p PRELOAD] [--] COMMAND [ARG...]
 *   -o FILE     append the result line to FILE (default: stderr)
 *   -t SECONDS  kill the command's process group after SECONDS (default: none)
 *   -p PRELOAD  set LD_PRELOAD=PRELOAD for the command; "-p ''" unsets it
 *
 * Result line, tab-separated:
 *   STATUS CODE WALL_S MAXRSS_KB USER_S SYS_S
 * STATUS is ok (exit 0), exit (CODE = exit status), signal (CODE = signal
 * number) or timeout.  MAXRSS_KB is the largest resident set of the command
 * and of the children it waited for (as wait4/getrusage report it).
 * runstat exits with the command's status (128 + signal when killed).
 * SIGINT and SIGTERM sent to runstat are passed on to the command.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t timed_out;
static volatile pid_t child;

static void on_alarm(int sig)
{
    (void)sig;
    timed_out = 1;
    if (child > 0)
        kill(-child, SIGKILL);
}

static void on_term(int sig)
{
    if (child > 0)
        kill(-child, sig);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr, "usage: runstat [-o FILE] [-t SECONDS] [-p PRELOAD] "
            "[--] COMMAND [ARG...]\n");
    exit(125);
}

int main(int argc, char **argv)
{
    const char *out = NULL, *preload = NULL;
    int timeout = 0, opt;
    while ((opt = getopt(argc, argv, "+o:t:p:")) != -1) {
        switch (opt) {
        case 'o': out = optarg; break;
        case 't': timeout = atoi(optarg); break;
        case 'p': preload = optarg; break;
        default: usage();
        }
    }
    if (optind >= argc)
        usage();

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    double t0 = now();
    pid_t pid = fork();
    if (pid < 0) {
        perror("runstat: fork");
        return 125;
    }
    if (pid == 0) {
        setpgid(0, 0);
        if (preload != NULL) {
            if (preload[0] != '\0')
                setenv("LD_PRELOAD", preload, 1);
            else
                unsetenv("LD_PRELOAD");
        }
        execvp(argv[optind], &argv[optind]);
        fprintf(stderr, "runstat: cannot run %s: %s\n", argv[optind],
                strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);   /* also here, to win the race with kill(-pid) */
    child = pid;
    if (timeout > 0)
        alarm((unsigned)timeout);

    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("runstat: wait4");
            return 125;
        }
    }
    double wall = now() - t0;
    alarm(0);

    const char *what;
    int code, rc;
    if (timed_out) {
        what = "timeout";
        code = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        rc = 124;
    } else if (WIFSIGNALED(status)) {
        what = "signal";
        code = WTERMSIG(status);
        rc = 128 + code;
    } else {
        code = WEXITSTATUS(status);
        what = code == 0 ? "ok" : "exit";
        rc = code;
    }

    FILE *f = out != NULL ? fopen(out, "a") : stderr;
    if (f == NULL) {
        perror(out);
        return 125;
    }
    fprintf(f, "%s\t%d\t%.6f\t%ld\t%.3f\t%.3f\n", what, code, wall,
            ru.ru_maxrss,
            (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
            (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    if (f != stderr)
        fclose(f);
    return rc;
}
