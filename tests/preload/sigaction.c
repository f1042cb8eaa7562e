/*
 * Under LD_PRELOAD, fbmalloc runs the program's handlers through its own
 * wrapper (src/sigwrap.c).  What a program sees of sigaction() and
 * signal() must not change: the old action is the program's handler,
 * SA_SIGINFO handlers get their three arguments, SA_RESETHAND resets,
 * SIG_IGN ignores, the handler's mask applies, errno is what the
 * handler leaves, and exec and fork children behave as without us.
 * Also: a handler that siglongjmps out must not leave the thread broken.
 *
 *   sigaction [exec-child]         prints "ok ..." lines, exit 0 if all pass
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;
#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (cond) {                                                           \
            printf("ok   ");                                                  \
        } else {                                                              \
            printf("FAIL ");                                                  \
            failures++;                                                       \
        }                                                                     \
        printf(__VA_ARGS__);                                                  \
        printf("\n");                                                         \
    } while (0)

static volatile sig_atomic_t hits, errno_seen, blocked_usr2;
static volatile int si_signo, si_val, uc_ok;
static void *volatile from_handler;

static void h1(int sig)
{
    (void)sig;
    hits++;
    errno_seen = errno;
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    blocked_usr2 = sigismember(&cur, SIGUSR2);
    /* Allocates: must neither disturb errno nor the interrupted code. */
    char *p = malloc(100);
    if (p) {
        memset(p, 0x5a, 100);
        free(p);
    }
}

static void h3(int sig, siginfo_t *si, void *uc)
{
    hits++;
    si_signo = si ? si->si_signo : -1;
    si_val = si ? si->si_value.sival_int : -1;
    uc_ok = uc != NULL && sig == SIGUSR1;
}

static void h_errno(int sig)
{
    (void)sig;
    errno = ERANGE;                  /* the handler's own choice */
}

static sigjmp_buf jb;
static void h_jump(int sig)
{
    (void)sig;
    from_handler = malloc(48);       /* from the handler pool */
    siglongjmp(jb, 1);
}

static int exec_child(void)
{
    /* After exec: SIGUSR2 (SIG_IGN in the parent) still ignored, SIGUSR1
     * (a handler in the parent) back to SIG_DFL. */
    struct sigaction a, b;
    sigaction(SIGUSR1, NULL, &a);
    sigaction(SIGUSR2, NULL, &b);
    return (a.sa_handler == SIG_DFL && b.sa_handler == SIG_IGN) ? 0 : 3;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "exec-child") == 0)
        return exec_child();
    struct sigaction sa, old;

    /* 1. one-argument handler; oldact reports it, flags as set. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h1;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sa.sa_flags = SA_RESTART;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction installs a handler");
    memset(&old, 0, sizeof old);
    sigaction(SIGUSR1, NULL, &old);
    CHECK(old.sa_handler == h1, "oldact is the program's handler (%p, want %p)",
          (void *)old.sa_handler, (void *)h1);
    CHECK(!(old.sa_flags & SA_SIGINFO) && (old.sa_flags & SA_RESTART),
          "oldact flags: SA_RESTART, no SA_SIGINFO (0x%x)", old.sa_flags);
    CHECK(sigismember(&old.sa_mask, SIGUSR2) == 1, "oldact mask holds SIGUSR2");
    errno = EDOM;
    raise(SIGUSR1);
    int e = errno;
    CHECK(hits == 1, "the handler ran once");
    CHECK(errno_seen == EDOM, "the handler saw the interrupted errno (%d)", (int)errno_seen);
    CHECK(e == EDOM, "errno after a handler that allocates is unchanged (%d)", e);
    CHECK(blocked_usr2 == 1, "sa_mask applies while the handler runs");

    /* 2. a handler that sets errno: the interrupted code sees it, as
     * without the wrapper. */
    sa.sa_handler = h_errno;
    sigaction(SIGUSR1, &sa, &old);
    CHECK(old.sa_handler == h1, "replacing returns the previous handler");
    errno = 0;
    raise(SIGUSR1);
    CHECK(errno == ERANGE, "errno left by the handler reaches the program (%d)", errno);

    /* 3. SA_SIGINFO: three arguments, the queued value. */
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h3;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR1, NULL, &old);
    CHECK(old.sa_sigaction == h3 && (old.sa_flags & SA_SIGINFO),
          "oldact of a SA_SIGINFO handler: its sa_sigaction and SA_SIGINFO");
    hits = 0;
    sigqueue(getpid(), SIGUSR1, (union sigval){.sival_int = 4242});
    CHECK(hits == 1 && si_signo == SIGUSR1 && si_val == 4242 && uc_ok,
          "SA_SIGINFO handler got signo %d, value %d, a ucontext", si_signo, si_val);

    /* 4. SA_RESETHAND: one delivery, then SIG_DFL. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h1;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    hits = 0;
    raise(SIGUSR1);
    sigaction(SIGUSR1, NULL, &old);
    CHECK(hits == 1 && old.sa_handler == SIG_DFL, "SA_RESETHAND: ran once, then SIG_DFL");

    /* 5. SIG_IGN: ignored, reported as such. */
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR2);                  /* would kill us if not ignored */
    sigaction(SIGUSR2, NULL, &old);
    CHECK(old.sa_handler == SIG_IGN, "SIG_IGN ignores and is reported");

    /* 6. signal(), bsd_signal, sysv_signal: previous handlers returned. */
    hits = 0;
    CHECK(signal(SIGUSR1, h1) == SIG_DFL, "signal() returns the previous SIG_DFL");
    raise(SIGUSR1);
    raise(SIGUSR1);
    CHECK(hits == 2, "signal(): handler stays installed (BSD semantics)");
    sigaction(SIGUSR1, NULL, &old);
    CHECK((old.sa_flags & SA_RESTART) && !(old.sa_flags & SA_SIGINFO),
          "signal(): SA_RESTART, no SA_SIGINFO (0x%x)", old.sa_flags);
    CHECK(signal(SIGUSR1, SIG_DFL) == h1, "signal() returns the previous handler");
    CHECK(signal(SIGKILL, h1) == SIG_ERR && errno == EINVAL, "signal(SIGKILL) fails, EINVAL");
    CHECK(sysv_signal(SIGUSR1, h1) == SIG_DFL, "sysv_signal installs");
    hits = 0;
    raise(SIGUSR1);
    sigaction(SIGUSR1, NULL, &old);
    CHECK(hits == 1 && old.sa_handler == SIG_DFL, "sysv_signal: one shot");

    /* 7. siglongjmp out of a handler that allocated: the block is
     * usable and freeable, and the thread allocates normally afterwards
     * (many more small blocks than a handler pool class holds). */
    signal(SIGUSR1, h_jump);
    if (sigsetjmp(jb, 1) == 0)
        raise(SIGUSR1);
    CHECK(from_handler != NULL, "malloc in a handler that siglongjmps out");
    memset(from_handler, 1, 48);
    free(from_handler);
    enum { N = 200000 };
    void **v = malloc(N * sizeof *v);
    int ok = v != NULL;
    for (int i = 0; ok && i < N; i++)
        ok = (v[i] = malloc(64)) != NULL;
    for (int i = 0; v && i < N; i++)
        free(v[i]);
    free(v);
    CHECK(ok, "after siglongjmp: %d live 64-byte blocks, none NULL", N);

    /* 8. A shell's pattern around every child it waits for: a handler,
     * SIG_DFL, the same handler again (and the same one-shot handler
     * again after it fired): each time delivered to it, the old actions
     * reported as they were. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h1;
    sigemptyset(&sa.sa_mask);
    signal(SIGUSR1, SIG_DFL);
    for (int round = 0; round < 3; round++) {
        memset(&old, 0, sizeof old);
        sigaction(SIGUSR1, &sa, &old);
        CHECK(old.sa_handler == SIG_DFL, "round %d: the action before is SIG_DFL", round);
        hits = 0;
        raise(SIGUSR1);
        CHECK(hits == 1, "round %d: the reinstalled handler runs", round);
        sigaction(SIGUSR1, NULL, &old);
        CHECK(old.sa_handler == h1 && !(old.sa_flags & SA_SIGINFO),
              "round %d: oldact is the program's handler, no SA_SIGINFO", round);
        signal(SIGUSR1, SIG_DFL);
    }
    sa.sa_flags = SA_RESETHAND;
    for (int round = 0; round < 2; round++) {
        sigaction(SIGUSR1, &sa, NULL);
        hits = 0;
        raise(SIGUSR1);
        sigaction(SIGUSR1, NULL, &old);
        CHECK(hits == 1 && old.sa_handler == SIG_DFL,
              "round %d: the same SA_RESETHAND handler again: ran once, then SIG_DFL", round);
    }

    /* 9. fork: the child's handlers work; exec resets caught signals and
     * keeps ignored ones. */
    signal(SIGUSR1, h1);
    pid_t pid = fork();
    if (pid == 0) {
        hits = 0;
        raise(SIGUSR1);
        _exit(hits == 1 ? 0 : 4);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork child: handler runs");
    pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", argv[0], "exec-child", (char *)NULL);
        _exit(5);
    }
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "exec child: caught -> SIG_DFL, SIG_IGN kept (status %d)", WEXITSTATUS(st));
    return failures ? 1 : 0;
}
