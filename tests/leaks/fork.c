/*
 * fork.c -- leaks on both sides of a fork.  Run with
 * FBMALLOC_OUTPUT=dir/r.%p.json: the child's and the parent's reports are
 * separate files, each with its own leaks.  Prints "parent=<pid>
 * child=<pid>" on stdout so the driver knows which file is whose.
 *
 * EXPECT(parent): direct 1 block, 333 bytes, from leak_before_fork at @before-fork
 * EXPECT(parent): direct 1 block, 222 bytes, from leak_in_parent at @parent
 * EXPECT(child): direct 1 block, 333 bytes, from leak_before_fork at @before-fork
 * EXPECT(child): direct 2 blocks, 222 bytes, from leak_in_child at @child
 * Parent: 2 leaks, 555 bytes in 2 blocks.  Child (which exits with
 * exit(0), after the fork copied the parent's leak): 2 leaks, 555 bytes in
 * 3 blocks.  The child's leak must not appear in the parent's report and
 * vice versa.
 */
#include <sys/wait.h>
#include <unistd.h>

#include "leaktest.h"

static void leak_before_fork(void)
{
    char *p = malloc(333); /* LEAK: before-fork */
    memset(p, 0, 333);
}

static void leak_in_parent(void)
{
    char *p = malloc(222); /* LEAK: parent */
    memset(p, 0, 222);
}

static void leak_in_child(void)
{
    for (int i = 0; i < 2; i++) {
        char *p = malloc(111); /* LEAK: child */
        memset(p, 0, 111);
    }
}

int main(void)
{
    lt_init();
    leak_before_fork();
    lt_scrub_stack();
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        leak_in_child();
        lt_scrub_stack();
        exit(0);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)
        || WEXITSTATUS(status) != 0)
        return 1;
    leak_in_parent();
    printf("parent=%ld child=%ld\n", (long)getpid(), (long)pid);
    lt_scrub_stack();
    return 0;
}
