/*
 * trace_prog.c -- a workload whose allocation log is checked by
 * check_trace.py (run with LD_PRELOAD=libfbmalloc.so FBMALLOC_TRACE=...).
 *
 * It counts the events its own calls must produce (calls made from this
 * file: frame #0 of their call site is in this program) and prints them:
 *
 *   KNOWN <what> <ptr> <size> <function>   a few blocks to find in the log
 *   COUNT <pid> malloc N free N realloc N live N
 *                                          MALLOC / FREE / in-place REALLOC
 *                                          events from this program's sites
 *                                          in process <pid>, blocks left live
 *   CHILD <pid> <parent pid>               a forked child (its own COUNT)
 *   FUNC <name> <allocs>                   allocations made in <name>
 *
 * How fbmalloc logs each call (that is what the counts follow):
 *   malloc, calloc, realloc(NULL, n)      MALLOC
 *   free, realloc(p, 0)                   FREE
 *   realloc of a small block that stays   REALLOC (in place)
 *   realloc that moves, or of a large     MALLOC of the result + FREE of
 *   (jemalloc) block                      the old block
 *
 * Threads: a batch that allocates and frees its own blocks, blocks handed
 * to another thread to free (remote frees), 100 short-lived threads one
 * after another (buffers are recycled), and a thread still alive (with
 * unwritten events) when the process forks twice; each child allocates,
 * frees and exits on its own.
 *
 * usage: trace_prog [THREADS=4] [ROUNDS=3000]
 *        trace_prog exec     (see exec_mode)
 *        trace_prog many N   (see many_mode)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static _Atomic long n_malloc, n_free, n_realloc, n_live;

#define FUNC_MAX 16
static struct {
    const char *name;
    long allocs;
} funcs[FUNC_MAX];

static pthread_mutex_t funcs_lock = PTHREAD_MUTEX_INITIALIZER;

static void count_func(const char *name)
{
    pthread_mutex_lock(&funcs_lock);
    for (int i = 0; i < FUNC_MAX; i++) {
        if (!funcs[i].name)
            funcs[i].name = name;
        if (funcs[i].name == name) {
            funcs[i].allocs++;
            break;
        }
    }
    pthread_mutex_unlock(&funcs_lock);
}

/* Each allocating function below calls malloc/calloc/realloc itself, so
 * frame #0 of the site is the function named in its FUNC line. */

__attribute__((noinline)) static void *make_node(size_t n)
{
    void *p = malloc(n);
    if (!p)
        exit(2);
    n_malloc++;
    count_func("make_node");
    return p;
}

__attribute__((noinline)) static void *make_table(size_t count, size_t size)
{
    void *p = calloc(count, size);
    if (!p)
        exit(2);
    n_malloc++;
    count_func("make_table");
    return p;
}

__attribute__((noinline)) static void *make_big(size_t n)
{
    void *p = malloc(n);
    if (!p)
        exit(2);
    memset(p, 1, n);
    n_malloc++;
    count_func("make_big");
    return p;
}

__attribute__((noinline)) static void release(void *p)
{
    free(p);
    n_free++;
}

/* Returns the new block; counts what the log must show. */
__attribute__((noinline)) static void *resize(void *p, size_t old, size_t n,
                                              int *inplace)
{
    void *q = realloc(p, n);
    if (!q)
        exit(2);
    *inplace = q == p && old <= 1024 && n <= 1024;
    if (*inplace) {
        n_realloc++;
    } else {
        n_malloc++;
        n_free++;
        count_func("resize");
    }
    return q;
}

static void reallocs(void)
{
    int inplace, any_inplace = 0, any_moved = 0;

    /* Grows in place: the last block of the thread's current epoch. */
    char *a = make_node(100);
    memset(a, 'a', 100);
    a = resize(a, 100, 200, &inplace);
    any_inplace |= inplace;
    any_moved |= !inplace;

    /* Shrinks in place. */
    a = resize(a, 200, 40, &inplace);
    any_inplace |= inplace;
    any_moved |= !inplace;

    /* Moves: b is not the last block, and 900 bytes do not fit its slot. */
    char *b = make_node(64);
    char *c = make_node(64);
    b = resize(b, 64, 900, &inplace);
    any_inplace |= inplace;
    any_moved |= !inplace;

    /* A large (jemalloc) block: always logged as free + malloc. */
    char *big = make_big(200000);
    big = resize(big, 200000, 600000, &inplace);
    any_moved |= !inplace;

    /* realloc(NULL, n) is a malloc, realloc(p, 0) a free. */
    char *d = realloc(NULL, 77);
    n_malloc++;
    count_func("reallocs");
    if (realloc(d, 0) != NULL)
        exit(2);
    n_free++;

    release(a);
    release(b);
    release(c);
    release(big);
    if (!any_inplace || !any_moved) {
        fprintf(stderr, "trace_prog: expected both in-place and moving "
                        "reallocs (in place %d, moved %d)\n",
                any_inplace, any_moved);
        exit(3);
    }
}

/* ---- threads ----------------------------------------------------------- */

static long rounds = 3000;

__attribute__((noinline)) static void *worker_alloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        exit(2);
    n_malloc++;
    count_func("worker_alloc");
    return p;
}

static void *churn_thread(void *arg)
{
    uint64_t x = (uint64_t)(uintptr_t)arg * 2654435761u + 1;
    void *keep[16] = { 0 };
    for (long i = 0; i < rounds; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t n = 1 + (size_t)(x >> 33) % ((x >> 20) % 16 == 0 ? 20000 : 700);
        unsigned k = (unsigned)(x >> 40) % 16;
        if (keep[k])
            release(keep[k]);
        keep[k] = worker_alloc(n);
        memset(keep[k], (int)i, n < 32 ? n : 32);
    }
    for (int k = 0; k < 16; k++)
        if (keep[k])
            release(keep[k]);
    return NULL;
}

/* Remote frees: producers allocate, a consumer frees. */
#define HANDOFF 2000
static void *handoff[HANDOFF];
static pthread_barrier_t handoff_barrier;

__attribute__((noinline)) static void *remote_alloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        exit(2);
    n_malloc++;
    count_func("remote_alloc");
    return p;
}

static void *producer(void *arg)
{
    long half = (long)(uintptr_t)arg;
    for (long i = half; i < HANDOFF; i += 2)
        handoff[i] = remote_alloc(16 + (size_t)(i % 300));
    pthread_barrier_wait(&handoff_barrier);
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&handoff_barrier);
    for (long i = 0; i < HANDOFF; i++)
        release(handoff[i]);
    return NULL;
}

static void *short_lived(void *arg)
{
    (void)arg;
    void *p = worker_alloc(48);
    void *q = worker_alloc(3000);
    release(p);
    release(q);
    return NULL;
}

/* Alive across the forks, with events not yet written. */
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static int idle_stop, idle_ready;

static void *idle_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++)
        release(worker_alloc(24));
    pthread_mutex_lock(&idle_lock);
    idle_ready = 1;
    pthread_cond_broadcast(&idle_cond);
    while (!idle_stop)
        pthread_cond_wait(&idle_cond, &idle_lock);
    pthread_mutex_unlock(&idle_lock);
    return NULL;
}

__attribute__((noinline)) static void *child_alloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        _exit(2);
    n_malloc++;
    count_func("child_alloc");
    return p;
}

static void print_counts(void)
{
    printf("COUNT %d malloc %ld free %ld realloc %ld live %ld\n", (int)getpid(),
           (long)n_malloc, (long)n_free, (long)n_realloc, (long)n_live);
    for (int i = 0; i < FUNC_MAX && funcs[i].name; i++)
        printf("FUNC %s %ld\n", funcs[i].name, (long)funcs[i].allocs);
}

static void child(int which)
{
    /* Start counting afresh: the child's log holds only its own events. */
    n_malloc = n_free = n_realloc = n_live = 0;
    memset(funcs, 0, sizeof funcs);
    void *p[100];
    for (int i = 0; i < 100; i++)
        p[i] = child_alloc(32 + (size_t)i * (which + 1));
    for (int i = 0; i < 99; i++)
        release(p[i]);
    n_live = 1;                      /* p[99] stays */
    printf("CHILD %d %d\n", (int)getpid(), (int)getppid());
    print_counts();
    exit(0);
}

/* "exec": enough events to fill a buffer or two, then the program runs
 * again in the same process ("execd"): the log then holds two images
 * under one pid, the first without an END record (exec runs no
 * destructors, so its unwritten events are lost). */
static int exec_mode(char **argv)
{
    /* 100 ms before the first event: the first image's events then lie
     * after 100 ms of its clock, and the second image's, on its own clock
     * from its start, before that (check_trace.py), however slowly a
     * loaded machine starts it (the 2 ms of events alone were not always
     * longer than the second image's start-up). */
    usleep(100000);
    for (int i = 0; i < 3000; i++)
        release(make_node(16 + (size_t)i % 200));
    fflush(stdout);
    char *args[] = { argv[0], (char *)"execd", NULL };
    execv("/proc/self/exe", args);
    perror("execv");
    return 1;
}

static int execd_mode(void)
{
    void *p[10];
    for (int i = 0; i < 10; i++)
        p[i] = make_node(1000 + (size_t)i);
    for (int i = 0; i < 10; i++)
        release(p[i]);
    print_counts();
    return 0;
}

/* "many N": N threads alive at once, more than the log has buffers
 * (1024): the last ones write each event directly. */
static pthread_barrier_t many_barrier;

static void *many_thread(void *arg)
{
    (void)arg;
    void *p[3];
    for (int i = 0; i < 3; i++)
        p[i] = worker_alloc(100 + (size_t)i * 1000);
    pthread_barrier_wait(&many_barrier);
    for (int i = 0; i < 3; i++)
        release(p[i]);
    return NULL;
}

static int many_mode(int n)
{
    pthread_t *t = calloc((size_t)n, sizeof *t);
    n_malloc++;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_barrier_init(&many_barrier, NULL, (unsigned)n);
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], &attr, many_thread, NULL) != 0) {
            fprintf(stderr, "trace_prog: pthread_create %d failed\n", i);
            return 1;
        }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    release(t);
    print_counts();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "many") == 0)
        return many_mode(atoi(argv[2]));
    if (argc > 1 && strcmp(argv[1], "exec") == 0)
        return exec_mode(argv);
    if (argc > 1 && strcmp(argv[1], "execd") == 0)
        return execd_mode();
    int nthreads = argc > 1 ? atoi(argv[1]) : 4;
    if (argc > 2)
        rounds = atol(argv[2]);

    /* Known blocks. */
    void *node = make_node(40);
    void *table = make_table(3, 100);
    void *big = make_big(100000);
    void *kept = make_node(4000);    /* live at exit */
    n_live = 1;

    reallocs();

    pthread_t t[64];
    if (nthreads > 64)
        nthreads = 64;
    for (int i = 0; i < nthreads; i++)
        pthread_create(&t[i], NULL, churn_thread, (void *)(uintptr_t)i);
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);

    pthread_barrier_init(&handoff_barrier, NULL, 3);
    pthread_create(&t[0], NULL, producer, (void *)0);
    pthread_create(&t[1], NULL, producer, (void *)1);
    pthread_create(&t[2], NULL, consumer, NULL);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);

    for (int i = 0; i < 100; i++) {
        pthread_t s;
        pthread_create(&s, NULL, short_lived, NULL);
        pthread_join(s, NULL);
    }

    pthread_t idle;
    pthread_create(&idle, NULL, idle_thread, NULL);
    pthread_mutex_lock(&idle_lock);
    while (!idle_ready)
        pthread_cond_wait(&idle_cond, &idle_lock);
    pthread_mutex_unlock(&idle_lock);

    fflush(stdout);
    for (int k = 0; k < 2; k++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0)
            child(k);
        int st;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "trace_prog: child failed (status 0x%x)\n", st);
            return 1;
        }
    }

    pthread_mutex_lock(&idle_lock);
    idle_stop = 1;
    pthread_cond_broadcast(&idle_cond);
    pthread_mutex_unlock(&idle_lock);
    pthread_join(idle, NULL);

    printf("KNOWN malloc %p 40 make_node\n", node);
    printf("KNOWN calloc %p 300 make_table\n", table);
    printf("KNOWN big %p 100000 make_big\n", big);
    printf("KNOWN kept %p 4000 make_node\n", kept);
    release(node);
    release(table);
    release(big);
    print_counts();
    return 0;
}
