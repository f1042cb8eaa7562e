/*
 * Process lifecycle: lazy initialisation, constructor, destructor, fork.
 *
 * The first malloc can come before any constructor runs (ld.so switches to
 * our malloc during start-up; libstdc++ allocates its exception pool from
 * its own constructor).  Initialisation is therefore lazy and re-entrant:
 * while it runs, the calling thread's t->busy sends any allocation it
 * triggers (pthread_atfork, pthread_key_create) straight to jemalloc.  If
 * libc has not yet set up the environment, the options cannot be read:
 * we serve from jemalloc and try again at the next allocation or in our
 * constructor.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <unistd.h>

#include "init.h"

#include "backend.h"
#include "canary.h"
#include "early.h"
#include "check.h"
#include "epoch.h"
#include "fail.h"
#include "fb.h"
#include "leak.h"
#include "fmt.h"
#include "options.h"
#include "platform.h"
#include "profile.h"
#include "report.h"
#include "route.h"
#include "stats.h"
#include "symbolize.h"
#include "trace.h"
#include "track.h"

extern char **environ;

int fb_observe;
int fb_observe_one;

/* NONE is not 0 so that the state lies in .data, on the page ld.so
 * writes anyway (relocation, and the zeroing of .bss's first partial
 * page): in .bss it had a page of its own, and the constructor's and
 * destructor's reads of it were a page fault in every exec. */
enum { FB_INIT_NONE = 1, FB_INIT_RUNNING, FB_INIT_DONE };
static _Atomic int fb_init_state = FB_INIT_NONE;
static pthread_key_t fb_thread_key;
static int fb_key_ok;

static void thread_exit_cb(void *arg)
{
    (void)arg;
    if (fb_trace_on)
        fb_trace_thread_exit();
    fb_epoch_thread_exit();
    if (fb_track_on) {
        fb_track_thread_exit();
        fb_leak_unregister_thread();
    }
}

/*
 * Every lock of ours is held across fork(), so the child inherits
 * consistent tables; the child then drops the other threads' state.
 *
 * Only if the process has ever had a second thread (glibc's
 * __libc_single_threaded stays true until the first pthread_create):
 * otherwise no lock can be held by anyone else at fork, and there is no
 * other thread's state to drop (glibc's fork likewise takes its own
 * malloc's locks only in a multi-threaded process, posix/fork.c).
 * Locking and unlocking them writes the pages holding the mutexes, each
 * a copy-on-write fault in parent and child after the fork (and in the
 * child a lazy binding of pthread_mutex_init): a shell's fork+exec loop
 * took 7 more faults per command (perf record -e page-faults -d).
 * jemalloc's handlers are skipped on the same condition (backend.c tests
 * it too).  Decided once in prepare, so parent and child match it.  The
 * handlers that do more than locks (the log's new file, the leak check's
 * thread list) always run.
 */
static int fork_locks;

static void fork_prepare(void)
{
    /* Written only when it changes: a store would make its page one
     * more copy-on-write fault after every fork. */
    int locks = !__libc_single_threaded;
    if (locks != fork_locks)
        fork_locks = locks;
    if (!locks)
        return;                      /* jemalloc's handlers neither (backend.c) */
    fb_report_fork_prepare();        /* first: a report may allocate */
    fb_epoch_fork_prepare();
    if (fb_track_on)
        fb_track_fork_prepare();
    if (fb_trace_on)
        fb_trace_fork_prepare();
    if (fb_check_on)
        fb_check_fork_prepare();
    fb_je_fork_prepare();            /* we call jemalloc under ours */
    fb_plat_fork_prepare();          /* last: jemalloc maps under its locks */
}
static void fork_parent(void)
{
    if (!fork_locks)
        return;
    fb_plat_fork_parent();
    fb_je_fork_parent();
    if (fb_check_on)
        fb_check_fork_parent();
    if (fb_trace_on)
        fb_trace_fork_parent();
    if (fb_track_on)
        fb_track_fork_parent();
    fb_epoch_fork_parent();
    fb_report_fork_parent();
}
static void fork_child(void)
{
    if (fork_locks) {
        fb_plat_fork_child();
        fb_je_fork_child();
        if (fb_check_on)
            fb_check_fork_child();
    }
    if (fb_trace_on)
        fb_trace_fork_child();       /* also starts the child's own log */
    if (fb_track_on) {
        if (fork_locks)
            fb_track_fork_child();
        fb_leak_fork_child();
    }
    if (fork_locks) {
        fb_epoch_fork_child();
        fb_report_fork_child();
    }
}

/* FBMALLOC_VERBOSE=1: the effective configuration in one block (one
 * write when it fits), so a user can see the preload took effect and
 * which values it runs with. */
static FB_COLD void verbose_summary(void)
{
    char mem[8192], slot[24], epoch[24];
    struct fb_buf b;
    fb_fmt_buf_init(&b, mem, sizeof mem, 2);
    fb_opt_size_str(fb_g.slot_size, slot, sizeof slot);
    fb_opt_size_str(fb_g.epoch_size, epoch, sizeof epoch);
    fb_fmt_append(&b,
                  "fbmalloc %s: preloaded in pid %d; %s: %u buffers of %s, "
                  "epochs of %s, requests up to %lu bytes\n",
                  FB_VERSION, (int)getpid(),
                  fb_g.size ? "fast path on" : "fast path OFF", fb_g.nslots,
                  slot, epoch, (unsigned long)fb_g.max_small);
    fb_opt_print_config(&b, &fb_opt);
    fb_fmt_flush(&b);
}

/* FBMALLOC_PROFILE is set.  Tested here, not only inside profile.c:
 * loading and saving have frames of 4 and 16 KiB, and merely calling them
 * touches a stack page a process without a profile never needs (a page
 * fault in every exec). */
static int profile_named(void)
{
    return fb_opt.profile[0] && strcmp(fb_opt.profile, "none") != 0;
}
static int profile_set(void)
{
    return fb_route_on && profile_named();
}

/* pthread_atfork itself, as glibc's libc_nonshared.a defines it: linked
 * into us, it lands after all our code and jemalloc's, and calling it
 * there was one more page fault (mapping 64 KiB of code nothing else
 * needs) in every process that allocates.  __dso_handle: our handlers go
 * away with this library, as pthread_atfork's would. */
extern void *__dso_handle;
int __register_atfork(void (*prepare)(void), void (*parent)(void),
                      void (*child)(void), void *dso);
static int register_atfork(void (*prepare)(void), void (*parent)(void),
                           void (*child)(void))
{
    return __register_atfork(prepare, parent, child, __dso_handle);
}

/* Returns 1 once the process is initialised, 0 if not (yet). */
int fb_init(void)
{
    int s = atomic_load_explicit(&fb_init_state, memory_order_acquire);
    if (fb_likely(s == FB_INIT_DONE))
        return 1;
    if (!environ)
        return 0;
    int expected = FB_INIT_NONE;
    if (!atomic_compare_exchange_strong(&fb_init_state, &expected,
                                        FB_INIT_RUNNING))
        return 0;                    /* another thread is at it */
    fb_je_mark_init();
    fb_opt_init();
    fb_sym_debuginfod = (int)fb_opt.debuginfod;
    fb_stats_on = fb_opt.stats != FB_STATS_OFF;
    /* Lifetime routing samples epochs whose granule index fits 15 bits
     * (route.h); 2: wrappers are routed by their callers too. */
    fb_route_init(fb_opt.buffer_size == 0 ||
                  (fb_opt.epoch_size >> FB_GRANULE_SHIFT) > FB_ROUTE_MAX_GRANULES ? 0
                  : fb_opt.lifetime == 1 ? 2 : fb_opt.lifetime == 2 ? 1 : 0,
                  profile_named());
    /* Tracking's per-granule site map is committed with each slot. */
    struct fb_epoch_hooks hooks = {fb_track_commit_slot};
    if (!fb_epoch_init(&hooks) && fb_opt.buffer_size && fb_opt.verbose >= 1)
        fb_report_note("could not reserve address space for the buffers; "
                       "fast path off, everything goes to jemalloc");
    fb_trace_init();
    if (fb_track_init(fb_trace_on)) {
        fb_leak_init();
        fb_leak_install_snapshot_signal();
    }
    fb_fail_init();
    fb_check_init(fb_leak_on_a_stack);
    fb_canary_init();
    /* Reports at exit (or of bad frees) reach stderr even where the
     * program closed it first (platform.h). */
    if (fb_stats_on || fb_track_on || fb_check_on || fb_canary_on)
        fb_plat_output_keep();
    /* The quarantine releases blocks from whichever thread frees next;
     * reused at once from the early arena's shared free lists, one went
     * to another thread, which then took the first thread's double free
     * for its own (jemalloc keeps it in the releasing thread's cache). */
    if (fb_check_on || fb_canary_on)
        fb_early_keep_freed();
    /* The modes decide the buffers' gates, before any thread takes a
     * slot.  With statistics or tracking on, the malloc gate stays shut
     * so every allocation is seen by the generic path, which does the
     * same work.  The owner's free gate only needs shutting for
     * statistics, the log, checks and canaries: tracking reads the
     * granule map's "freed" mark, which the fast free writes. */
    fb_observe = fb_stats_on || fb_track_on || fb_fail_on || fb_trace_on ||
                 fb_canary_on;
    if (!fb_fail_on && !fb_trace_on && !fb_canary_on && !fb_check_on)
        fb_observe_one = fb_track_on && !fb_stats_on   ? FB_OBSERVE_TRACK
                         : fb_stats_on && !fb_track_on ? FB_OBSERVE_STATS
                                                       : 0;
    fb_epoch_set_gates(!fb_observe,
                       !fb_stats_on && !fb_trace_on && !fb_check_on && !fb_canary_on);
    fb_key_ok = pthread_key_create(&fb_thread_key, thread_exit_cb) == 0;
    register_atfork(fork_prepare, fork_parent, fork_child);
    atomic_store_explicit(&fb_init_state, FB_INIT_DONE, memory_order_release);
    if (fb_opt.verbose >= 1)
        verbose_summary();
    return 1;
}

void fb_init_register_thread(void)
{
    if (fb_key_ok)
        pthread_setspecific(fb_thread_key, (void *)1);
    if (fb_track_on)
        fb_leak_register_thread();
}

/* Is any FBMALLOC_* variable set?  The environment is the options' only
 * source (options.c).  Compared byte by byte against immediates: no
 * literal to read from .rodata (a page fault) and no strncmp to bind. */
static int any_option_set(void)
{
    for (char **e = environ; e && *e; e++) {
        const char *v = *e;
        if (v[0] == 'F' && v[1] == 'B' && v[2] == 'M' && v[3] == 'A' &&
            v[4] == 'L' && v[5] == 'L' && v[6] == 'O' && v[7] == 'C' &&
            v[8] == '_')
            return 1;
    }
    return 0;
}

/*
 * With no FBMALLOC_* variable the process runs in the default mode, where
 * initialising does nothing a process that never allocates would miss: no
 * report, no file, no handler, nothing at exit.  So it is left to the
 * first allocation (fb_init is lazy anyway), and a process that never
 * calls malloc (/bin/true, the commands of a shell loop) makes none of its
 * system calls (getrlimit, the three reservations) and touches none of
 * its pages: /bin/true under fbmalloc took 9 page faults and ~15,000
 * instructions fewer.  A bad free before any malloc is still refused:
 * jemalloc's memory map (backend.h's fb_je_foreign) needs no start-up.
 * With any option set, everything is set up here as before (a
 * configuration printed at start-up, a log file, a profile loaded,
 * warnings for misspelt names).
 */
__attribute__((constructor)) static void fb_ctor(void)
{
    struct fb_tls *t = &fb_t;
    if (atomic_load_explicit(&fb_init_state, memory_order_acquire) == FB_INIT_NONE &&
        !any_option_set())
        return;
    int was = t->busy;
    t->busy = 1;
    if (fb_init() && profile_set())
        fb_profile_load();       /* needs dl_iterate_phdr: not in early mallocs */
    t->busy = (uint8_t)was;
}

/* Runs after the program's own destructors and atexit handlers (we are
 * initialised before it, so finalised after), once per process: a leak
 * report then sees what the program really left behind. */
__attribute__((destructor)) static void fb_dtor(void)
{
    if (atomic_load(&fb_init_state) != FB_INIT_DONE)
        return;
    long leaked = 0;
    /* The canary check at exit is inside the leak check when there is one
     * (one stop of the other threads for both). */
    if (fb_track_on && fb_opt.leaks != FB_LEAKS_OFF)
        leaked = fb_leak_check(1, NULL);
    else if (fb_canary_on)
        fb_leak_canary_at_exit();
    fb_stats_at_exit();
    if (profile_set())
        fb_profile_save();
    if (fb_trace_on)
        fb_trace_at_exit();
    /* Last: every report is written before the exit status is changed. */
    if (leaked > 0 && fb_opt.leak_exitcode)
        _exit((int)fb_opt.leak_exitcode);
}
