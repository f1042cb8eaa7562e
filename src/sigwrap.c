/*
 * The program's signal handlers, each run through one wrapper that tells
 * the allocator a handler is running on this thread (sigpool.h): inside,
 * small requests come from a lock-free pool instead of the thread's bump
 * pointer, which the interrupted code may be half-way through moving.
 *
 * Exported: sigaction, signal and its aliases bsd_signal and ssignal, and
 * sysv_signal (with glibc's __sysv_signal): every way glibc 2.36 offers a
 * program to install a handler by name, except sigset (System V; rare)
 * and the internal __sigaction (which we call to reach the kernel).  A
 * handler installed those ways, or with the raw system call, is not
 * wrapped and its malloc is as unsafe as with any allocator.
 *
 * What the program sees does not change:
 *  - the kernel gets the program's flags, mask and SA_RESTORER unchanged,
 *    plus SA_SIGINFO (the wrapper needs the ucontext); the wrapper calls
 *    the program's handler with one argument or three, as it asked;
 *  - SIG_DFL and SIG_IGN go to the kernel as they are (so fork, exec and
 *    ignored signals behave as before: exec resets caught signals to
 *    SIG_DFL, our wrapper included);
 *  - the old action reported is the program's handler and SA_SIGINFO bit,
 *    never the wrapper (with the kernel's mask and other flags);
 *  - SA_RESETHAND: the kernel resets the action to SIG_DFL on delivery,
 *    so a later query reports SIG_DFL, as without us;
 *  - errno: the wrapper itself never changes it (it is saved on entry and
 *    put back before the program's handler runs and after it returns, so
 *    what the handler leaves in errno is what the interrupted code sees,
 *    as without the wrapper).
 * Handlers inside this library (the leak check's, leak.c) are passed
 * through unwrapped: they never allocate, and the leak check scans their
 * stacks from the handler up, which must not meet a wrapper's frame
 * holding buffer addresses.
 *
 * The table of the program's handlers is read in the wrapper without a
 * lock: per signal a sequence count, odd while a writer changes the entry
 * (a seqlock).  Writers serialise on a spin lock held with every signal
 * blocked, so a handler on the writer's own thread can never spin on a
 * half-written entry; the lock word holds the owner's pid, so a child
 * forked while another thread held it takes it over.  A process that
 * never had a second thread needs only the mask, and its queries,
 * SIG_DFL / SIG_IGN and handlers the table already holds only the kernel
 * (sigaction below).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <link.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "fb.h"
#include "sigpool.h"

int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);

struct prog_action {
    _Atomic unsigned seq;
    _Atomic(void *) handler;         /* the program's sa_handler/sa_sigaction */
    _Atomic int flags;               /* the program's sa_flags */
};
static struct prog_action table[_NSIG];
static _Atomic int writer;           /* pid of the writer, 0 if none */

/* This library's code, for "is the handler ours?" (leak.c's): its
 * executable segment, from our own program headers (__ehdr_start is the
 * linker's name for our ELF header; no lock, no allocation). */
extern const ElfW(Ehdr) __ehdr_start FB_HIDDEN;
static uintptr_t text_lo, text_hi;

static int ours(void *h)
{
    if (!text_hi) {
        const ElfW(Ehdr) *eh = &__ehdr_start;
        const ElfW(Phdr) *ph = (const ElfW(Phdr) *)((const char *)eh + eh->e_phoff);
        uintptr_t lo = UINTPTR_MAX, hi = 0;
        uintptr_t first = UINTPTR_MAX;     /* the lowest PT_LOAD: at eh */
        for (unsigned i = 0; i < eh->e_phnum; i++)
            if (ph[i].p_type == PT_LOAD && ph[i].p_vaddr < first)
                first = ph[i].p_vaddr & ~(uintptr_t)(ph[i].p_align - 1);
        uintptr_t bias = (uintptr_t)eh - first;
        for (unsigned i = 0; i < eh->e_phnum; i++)
            if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_X)) {
                if (bias + ph[i].p_vaddr < lo)
                    lo = bias + ph[i].p_vaddr;
                if (bias + ph[i].p_vaddr + ph[i].p_memsz > hi)
                    hi = bias + ph[i].p_vaddr + ph[i].p_memsz;
            }
        text_lo = lo;
        text_hi = hi ? hi : 1;
    }
    return (uintptr_t)h - text_lo < text_hi - text_lo;
}

static void wrapper(int sig, siginfo_t *si, void *ucv)
{
    int saved_errno = errno;
    ucontext_t *uc = ucv;
    struct fb_sigpool_frame f;
    uintptr_t alt_lo = 0, alt_hi = 0;
    if (!(uc->uc_stack.ss_flags & SS_DISABLE) && uc->uc_stack.ss_size) {
        alt_lo = (uintptr_t)uc->uc_stack.ss_sp;
        alt_hi = alt_lo + uc->uc_stack.ss_size;
    }
    fb_sigpool_enter(&f, (uintptr_t)uc->uc_mcontext.gregs[REG_RSP], alt_lo, alt_hi);

    struct prog_action *a = &table[sig];
    void *h;
    int flags;
    for (unsigned spins = 0;; spins++) {
        unsigned s = atomic_load_explicit(&a->seq, memory_order_acquire);
        h = atomic_load_explicit(&a->handler, memory_order_relaxed);
        flags = atomic_load_explicit(&a->flags, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (!(s & 1) && atomic_load_explicit(&a->seq, memory_order_relaxed) == s)
            break;
        if (spins > 1000)            /* the writer runs on another CPU */
            syscall(SYS_sched_yield);
    }
    errno = saved_errno;
    /* SIG_IGN / SIG_DFL here: the program changed the action while this
     * signal was on its way; it is delivered to the old handler no more. */
    if (h != (void *)SIG_IGN && h != (void *)SIG_DFL) {
        if (flags & SA_SIGINFO)
            ((void (*)(int, siginfo_t *, void *))h)(sig, si, ucv);
        else
            ((void (*)(int))h)(sig);
    }
    saved_errno = errno;
    fb_sigpool_leave(&f);
    errno = saved_errno;
}

/*
 * A process that never had a second thread (glibc's __libc_single_threaded
 * stays true until the first pthread_create) has no other writer: with
 * every signal blocked, not even a handler of its own thread can come in,
 * so the lock word is left alone (no getpid, no store: its page is not one
 * more copy-on-write fault after each fork).  Decided in lock_writers and
 * passed to unlock_writers, so the two match.
 */
static int lock_writers(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, old);
    if (__libc_single_threaded)
        return 0;
    int me = (int)syscall(SYS_getpid), cur = 0;
    /* Another pid in the word: a writer of the parent process, cut off
     * by the fork that made us: take the lock over. */
    while (!atomic_compare_exchange_weak(&writer, &cur, me)) {
        if (cur != 0 && cur != me && atomic_compare_exchange_strong(&writer, &cur, me))
            break;
        cur = 0;
        syscall(SYS_sched_yield);
    }
    return 1;
}

static void unlock_writers(const sigset_t *old, int locked)
{
    if (locked)
        atomic_store(&writer, 0);
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

static void table_set(int sig, void *h, int flags)
{
    struct prog_action *a = &table[sig];
    unsigned s = atomic_load_explicit(&a->seq, memory_order_relaxed);
    s |= 1;                          /* also repairs a writer cut by fork */
    atomic_store_explicit(&a->seq, s, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&a->handler, h, memory_order_relaxed);
    atomic_store_explicit(&a->flags, flags, memory_order_relaxed);
    atomic_store_explicit(&a->seq, s + 1, memory_order_release);
}

/* The kernel's old action k, as the program set it. */
static void report_old(int sig, const struct sigaction *k, void *h, int flags,
                       struct sigaction *out)
{
    *out = *k;
    if (k->sa_sigaction == wrapper) {
        out->sa_sigaction = (void (*)(int, siginfo_t *, void *))h;
        out->sa_flags = (k->sa_flags & ~SA_SIGINFO) | (flags & SA_SIGINFO);
    }
    (void)sig;
}

/* The table entry of sig as a consistent pair (the reader's side of the
 * seqlock, as in wrapper). */
static void table_get(int sig, void **h, int *flags)
{
    struct prog_action *a = &table[sig];
    for (;;) {
        unsigned s = atomic_load_explicit(&a->seq, memory_order_acquire);
        *h = atomic_load_explicit(&a->handler, memory_order_relaxed);
        *flags = atomic_load_explicit(&a->flags, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (!(s & 1) && atomic_load_explicit(&a->seq, memory_order_relaxed) == s)
            return;
    }
}

FB_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *oldact)
{
    if (sig <= 0 || sig >= _NSIG || (act && ours((void *)act->sa_handler)))
        return __sigaction(sig, act, oldact);
    struct sigaction k, mine;
    sigset_t mask;
    /*
     * A query, or SIG_DFL / SIG_IGN, in a process that never had a second
     * thread: only the kernel changes (the table matters only while the
     * kernel's handler is the wrapper: report_old), and no writer can be
     * half-way (a writer blocks every signal, and there is no other
     * thread), so there is nothing to lock: one system call, as without
     * us.  A shell resets half a dozen signals in every child it forks;
     * with the lock each cost three more system calls (mask, getpid,
     * mask) and the stores two page faults.  The table keeps the old
     * handler, so a signal whose delivery began before the change still
     * reaches it, as without us.
     */
    if (__libc_single_threaded &&
        (!act || act->sa_handler == SIG_DFL || act->sa_handler == SIG_IGN)) {
        void *old_h;
        int old_flags;
        table_get(sig, &old_h, &old_flags);
        int r = __sigaction(sig, act, &k);
        if (r == 0 && oldact)
            report_old(sig, &k, old_h, old_flags, oldact);
        return r;
    }
    /*
     * A handler the table already holds, in such a process: only the
     * kernel's action changes (to the wrapper), so again one system call
     * and no store.  A shell does this around every child it waits for
     * (SIGINT to its handler, then back to SIG_DFL, which leaves the
     * table as it was): with the lock each cost two more system calls and
     * a copy-on-write fault on the table's page after every fork.  A
     * handler of this thread that changed the entry meanwhile (the only
     * possible writer) is seen afterwards: then the locked path below
     * sets the program's handler again, as its call would have.
     */
    if (__libc_single_threaded && act) {
        void *cur_h;
        int cur_flags;
        table_get(sig, &cur_h, &cur_flags);
        if (cur_h == (void *)act->sa_handler && cur_flags == act->sa_flags) {
            fb_sigpool_reserve();
            mine = *act;
            mine.sa_sigaction = wrapper;
            mine.sa_flags |= SA_SIGINFO;
            int r = __sigaction(sig, &mine, &k);
            void *now_h;
            int now_flags;
            table_get(sig, &now_h, &now_flags);
            if (now_h == cur_h && now_flags == cur_flags) {
                if (r == 0 && oldact)
                    report_old(sig, &k, cur_h, cur_flags, oldact);
                return r;
            }
        }
    }
    int locked = lock_writers(&mask);
    struct prog_action *a = &table[sig];
    void *old_h = atomic_load_explicit(&a->handler, memory_order_relaxed);
    int old_flags = atomic_load_explicit(&a->flags, memory_order_relaxed);
    int r;
    if (!act) {
        r = __sigaction(sig, NULL, &k);
    } else {
        void *h = (void *)act->sa_handler;
        if (h == (void *)SIG_DFL || h == (void *)SIG_IGN) {
            /* The kernel first, then the table: a signal in between still
             * finds the old handler in it. */
            r = __sigaction(sig, act, &k);
            if (r == 0)
                table_set(sig, h, act->sa_flags);
        } else {
            fb_sigpool_reserve();    /* outside any handler, usually */
            mine = *act;
            mine.sa_sigaction = wrapper;
            mine.sa_flags |= SA_SIGINFO;
            table_set(sig, h, act->sa_flags);
            r = __sigaction(sig, &mine, &k);
            if (r != 0)
                table_set(sig, old_h, old_flags);
        }
    }
    int err = errno;
    unlock_writers(&mask, locked);
    if (r == 0 && oldact)
        report_old(sig, &k, old_h, old_flags, oldact);
    errno = err;
    return r;
}

/* glibc 2.36's signal(): BSD semantics (SA_RESTART, the signal blocked
 * while its handler runs). */
static __sighandler_t install(int sig, __sighandler_t h, int flags, int self_mask)
{
    struct sigaction sa, old;
    if (h == SIG_ERR || sig <= 0 || sig >= _NSIG) {
        errno = EINVAL;
        return SIG_ERR;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sigemptyset(&sa.sa_mask);
    if (self_mask)
        sigaddset(&sa.sa_mask, sig);
    sa.sa_flags = flags;
    if (sigaction(sig, &sa, &old) < 0)
        return SIG_ERR;
    return old.sa_handler;
}

FB_EXPORT __sighandler_t signal(int sig, __sighandler_t h)
{
    return install(sig, h, SA_RESTART, 1);
}

FB_EXPORT __sighandler_t bsd_signal(int sig, __sighandler_t h)
{
    return install(sig, h, SA_RESTART, 1);
}

FB_EXPORT __sighandler_t ssignal(int sig, __sighandler_t h)
{
    return install(sig, h, SA_RESTART, 1);
}

/* System V: one shot, not blocked while it runs, no restart. */
FB_EXPORT __sighandler_t sysv_signal(int sig, __sighandler_t h)
{
    return install(sig, h, SA_RESETHAND | SA_NODEFER, 0);
}

FB_EXPORT __sighandler_t __sysv_signal(int sig, __sighandler_t h)
{
    return install(sig, h, SA_RESETHAND | SA_NODEFER, 0);
}
