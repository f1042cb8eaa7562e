/*
 * The leak check's roots.  What a program can still reach without a heap
 * pointer of its own to start from:
 *
 *  - the writable PT_LOAD segments of every loaded object but ours (our
 *    tables point at every block);
 *  - each registered thread's stack: the calling thread's live part only
 *    (from the caller of the public check, or at exit from the frame that
 *    called exit(), with that frame's callee-saved registers, up to libc's
 *    start frames); at exit the others from where they stopped or, if they
 *    block the stop signal, from the stack pointer of the system call they
 *    wait in; otherwise whole;
 *  - static TLS and the thread control block of every thread, and its DTV
 *    (ld.so's own allocations hold the only pointers to dynamic TLS);
 *  - blocks ld.so allocated (leakscan's linker blocks);
 *  - the program's anonymous private writable mappings, but ours,
 *    jemalloc's and thread stacks (scan_anon).
 * Every range is clamped to the readable mappings of /proc/self/maps, and
 * allocator state in static TLS (ours and jemalloc's) is skipped.
 *
 * At exit the other threads are stopped (a signal whose handler waits)
 * so that none frees or moves a pointer during the scan; a check on
 * demand leaves them running and scans their stacks whole.  Marking
 * itself is leakscan's.
 */
#define _GNU_SOURCE
#include "leakroots.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "epoch.h"
#include "fb.h"
#include "fmt.h"
#include "leakscan.h"
#include "platform.h"
#include "report.h"
#include "sigpool.h"
#include "track.h"
#include "unwind.h"

/* ---------------------------------------------------------------------- */
/* Thread registry: stacks and thread pointers of live threads             */

struct thread_rec {
    uintptr_t lo, hi, tp;
    pthread_t id;
    pid_t tid;
    int used;
    _Atomic uintptr_t sp;       /* answered by the thread (exit check) */
    _Atomic unsigned ask;       /* nonzero: stop until resume_gen reaches it */
    uintptr_t paused_sp;
};

/* The calling thread's record, for the stop signal's handler. */
static __thread struct thread_rec *my_rec __attribute__((tls_model("initial-exec")));

#define FB_MAX_THREADS 65536
static struct thread_rec *threads;
static size_t nthreads_hw;                  /* high-water mark */
static pthread_mutex_t thread_lock = PTHREAD_MUTEX_INITIALIZER;

static uintptr_t thread_pointer(void)
{
    uintptr_t tp;
    __asm__("mov %%fs:0, %0" : "=r"(tp));
    return tp;
}

void fb_leakroots_register_thread(void)
{
    pthread_attr_t attr;
    void *addr = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return;
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    pthread_mutex_lock(&thread_lock);
    if (!threads)
        threads = mmap(NULL, FB_MAX_THREADS * sizeof *threads,
                       PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (threads && threads != MAP_FAILED) {
        for (size_t i = 0; i < FB_MAX_THREADS; i++) {
            if (!threads[i].used) {
                threads[i].lo = (uintptr_t)addr;
                threads[i].hi = (uintptr_t)addr + size;
                threads[i].tp = thread_pointer();
                threads[i].id = pthread_self();
                threads[i].tid = (pid_t)syscall(SYS_gettid);
                atomic_store(&threads[i].ask, 0);
                threads[i].used = 1;
                my_rec = &threads[i];
                if (i + 1 > nthreads_hw)
                    nthreads_hw = i + 1;
                break;
            }
        }
    } else {
        threads = NULL;
    }
    pthread_mutex_unlock(&thread_lock);
}

int fb_leakroots_on_a_stack(uintptr_t a)
{
    int hit = 0;
    pthread_mutex_lock(&thread_lock);
    for (size_t i = 0; threads && i < nthreads_hw && !hit; i++)
        hit = threads[i].used && a >= threads[i].lo && a < threads[i].hi;
    pthread_mutex_unlock(&thread_lock);
    return hit;
}

void fb_leakroots_unregister_thread(void)
{
    pthread_t me = pthread_self();
    pthread_mutex_lock(&thread_lock);
    for (size_t i = 0; threads && i < nthreads_hw; i++)
        if (threads[i].used && pthread_equal(threads[i].id, me))
            threads[i].used = 0;
    my_rec = NULL;
    pthread_mutex_unlock(&thread_lock);
}

void fb_leakroots_fork_child(void)
{
    pthread_t me = pthread_self();
    pthread_mutex_init(&thread_lock, NULL);
    for (size_t i = 0; threads && i < nthreads_hw; i++) {
        if (threads[i].used && !pthread_equal(threads[i].id, me))
            threads[i].used = 0;
        else if (threads[i].used)
            threads[i].tid = (pid_t)syscall(SYS_gettid);   /* the child's */
    }
}

/* ---------------------------------------------------------------------- */
/* Readable memory, from /proc/self/maps: every scanned range is clamped   */

struct range {
    uintptr_t lo, hi;
};

static struct fb_leakscan_vec readable = {.elem = sizeof(struct range)};
/* The anonymous private writable mappings (no file, no [name]) that are
 * not thread stacks: candidate roots, filtered by scan_anon below. */
static struct fb_leakscan_vec anon = {.elem = sizeof(struct range)};

static uintptr_t hex(const char **s)
{
    uintptr_t v = 0;
    for (;; (*s)++) {
        char c = **s;
        if (c >= '0' && c <= '9')
            v = v * 16 + (uintptr_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v * 16 + (uintptr_t)(c - 'a' + 10);
        else
            return v;
    }
}

/* Whether the rest of a maps line after the permissions (" offset dev
 * inode [path]") names no file and no pseudo-file: inode 0, no path. */
static int is_anonymous(const char *s)
{
    for (int field = 0; field < 3; field++) {
        while (*s == ' ')
            s++;
        if (field == 2 && !(s[0] == '0' && s[1] == ' '))
            return 0;                          /* inode */
        while (*s && *s != ' ')
            s++;
    }
    while (*s == ' ')
        s++;
    return *s == '\0';
}

/* The largest PROT_NONE mapping taken for a thread stack's guard. */
#define FB_LEAK_MAX_GUARD ((uintptr_t)1 << 20)

static void read_maps(void)
{
    readable.n = 0;
    anon.n = 0;
    uintptr_t guard_hi = 0;      /* end of the last anonymous ---p mapping */
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - have - 1);
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = '\0';             /* one line at a time */
            const char *s = line;
            uintptr_t lo = hex(&s);
            s++;
            uintptr_t hi = hex(&s);
            s++;
            /* Only readable, and never device or guard mappings. */
            if (s[0] == 'r' && !strstr(line, "[vvar]")) {
                struct range *rg = fb_leakscan_vec_push(&readable);
                if (rg) {
                    rg->lo = lo;
                    rg->hi = hi;
                }
            }
            /* A thread stack is an anonymous mapping right above its
             * guard (an anonymous ---p mapping): glibc's stacks, those of
             * live threads (scanned as stacks) and those it keeps cached
             * after a thread exits, whose dead frames hold stale pointers
             * that would hide leaks.  Neither is an anonymous root.  A
             * program's own mapping right above a guard page, or one the
             * kernel merged with a stack above it, is skipped with them:
             * a leak may then be reported that is not one, never hidden.
             * Guards are small (glibc's: a page, or the thread's
             * guardsize); a big ---p region is a reservation, such as
             * our own buffer region, above which the kernel may well put
             * a program's mapping (cc1's GC heap: a false leak in about
             * 1 run in 20 before this bound). */
            int anonymous = is_anonymous(s + 4);
            if (anonymous && strncmp(s, "rw-p", 4) == 0 && guard_hi != lo) {
                struct range *rg = fb_leakscan_vec_push(&anon);
                if (rg)
                    *rg = (struct range){lo, hi};
            }
            guard_hi = anonymous && strncmp(s, "---p", 4) == 0 &&
                               hi - lo <= FB_LEAK_MAX_GUARD
                           ? hi
                           : 0;
            line = nl + 1;
        }
        have = (size_t)(buf + have - line);
        memmove(buf, line, have);
    }
    close(fd);
}

/* Scans [lo, hi) for roots, restricted to readable memory. */
static void scan_root(uintptr_t lo, uintptr_t hi)
{
    const struct range *r = (const struct range *)readable.p;
    for (size_t i = 0; i < readable.n; i++) {
        uintptr_t a = lo > r[i].lo ? lo : r[i].lo;
        uintptr_t b = hi < r[i].hi ? hi : r[i].hi;
        if (a < b)
            fb_leakscan_mark(a, b);
    }
    fb_leakscan_drain();
}

/* Writable segments of every loaded object but ours, listed before other
 * threads are paused: dl_iterate_phdr takes the loader's lock, which a
 * paused thread may hold. */
static struct fb_leakscan_vec segs = {.elem = sizeof(struct range)};

/* What the scan of anonymous mappings skips (page-rounded outward): every
 * mapping of ours and jemalloc's (platform.h), writable segments (scanned
 * as segments, or ours), the stacks and static TLS of registered threads
 * (scanned as such, with our and jemalloc's TLS left out). */
static struct fb_leakscan_vec excl = {.elem = sizeof(struct range)};

static void excl_add(uintptr_t lo, uintptr_t hi)
{
    uintptr_t pg = fb_plat_page_size();
    struct range *r = fb_leakscan_vec_push(&excl);
    if (r)
        *r = (struct range){lo & ~(pg - 1), (hi + pg - 1) & ~(pg - 1)};
}

/* To the byte: a thread's static TLS as ld.so reports it may begin below
 * the block it really has (the size counts the thread control block,
 * which sits above the thread pointer), and the main thread's block lies
 * in a small anonymous mapping the kernel may merge with the program's
 * next one: rounded down to a page, the range took in the first page of
 * cc1's GC heap, and leaks-valgrind reported its line table's htab as a
 * false leak in about 1 run in 15. */
static void excl_add_exact(uintptr_t lo, uintptr_t hi)
{
    struct range *r = fb_leakscan_vec_push(&excl);
    if (r)
        *r = (struct range){lo & ~(uintptr_t)7, (hi + 7) & ~(uintptr_t)7};
}

static int list_segments(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        /* Never an anonymous root: its .bss tail is an anonymous mapping. */
        excl_add(lo, lo + ph->p_memsz);
        /* Our own tables point at every block: not a root. */
        if (fb_track_is_own(lo))
            continue;
        struct range *r = fb_leakscan_vec_push(&segs);
        if (r)
            *r = (struct range){lo, lo + ph->p_memsz};
    }
    return 0;
}

static intptr_t je_tls_off;
static size_t je_tls_len;

/* Scans [lo, hi) of a thread's stack or TLS, except our own per-thread
 * record (fb_t), which points into the buffers (slot base, bump) and is
 * not the program's.  It sits at the same offset from every thread's
 * thread pointer tp; non-main threads keep their TLS inside their stack
 * block. */
static void scan_thread_area(uintptr_t lo, uintptr_t hi, uintptr_t tp)
{
    /* Allocator state in static TLS, at fixed offsets from the thread
     * pointer: ours (fb_t) and jemalloc's (its thread cache and counters,
     * where a stray word landing inside a big block hid a real leak).
     * Sorted by offset; scanned around. */
    struct span {
        intptr_t off;
        size_t len;
    } skip[2] = {
        {(intptr_t)((uintptr_t)&fb_t - thread_pointer()), sizeof fb_t},
        {je_tls_off, je_tls_len},
    };
    if (skip[1].len && skip[1].off < skip[0].off) {
        struct span t = skip[0];
        skip[0] = skip[1];
        skip[1] = t;
    }
    uintptr_t at = lo;
    for (int i = 0; i < 2; i++) {
        if (!skip[i].len)
            continue;
        uintptr_t a = tp + (uintptr_t)skip[i].off, b = a + skip[i].len;
        if (b <= at || a >= hi)
            continue;
        if (a > at)
            scan_root(at, a);
        at = b;
    }
    if (at < hi)
        scan_root(at, hi);
}

static void (*tls_info)(size_t *, size_t *);

/* Where jemalloc's static TLS sits relative to the thread pointer.
 * jemalloc is linked into our library (meson.build), so its TLS is part
 * of our module's TLS block, beside fb_t: the block holding fb_t is
 * skipped as a whole, all of it allocator state, none the program's. */
static int find_je_tls(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    if (!info->dlpi_tls_data)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        uintptr_t lo = (uintptr_t)info->dlpi_tls_data;
        if (info->dlpi_phdr[i].p_type == PT_TLS && (uintptr_t)&fb_t >= lo &&
            (uintptr_t)&fb_t < lo + info->dlpi_phdr[i].p_memsz) {
            je_tls_off = (intptr_t)(lo - thread_pointer());
            je_tls_len = info->dlpi_phdr[i].p_memsz;
            return 1;
        }
    }
    return 0;
}

/* Looked up once at start-up: any dlsym() during a check would run
 * glibc's _dlerror_run, which frees the program's pending dlerror()
 * message, i.e. change the heap being checked. */
void fb_leakroots_init(void)
{
    /* libunwind finds the exit() frame and libc's start frames (call
     * stacks themselves are captured by libgcc's unwinder, track.c). */
    if (!fb_unw_load())
        fb_report_note("libunwind.so.8 could not be loaded: the leak check "
                       "scans whole stacks");
    dl_iterate_phdr(find_je_tls, NULL);
    tls_info = (void (*)(size_t *, size_t *))dlsym(RTLD_DEFAULT,
                                                    "_dl_get_tls_static_info");
}

/* Static TLS below the thread pointer, the thread control block above it,
 * and the DTV it points to: ld.so's own allocations (the main thread's DTV
 * and static TLS come from its private allocator) hold the only pointers
 * to dynamic TLS blocks.
 *
 * live_sp: where the thread's live stack begins (0: unknown).  A thread
 * glibc created keeps its static TLS at the top of its stack block, right
 * above its stack, and the size ld.so reports is the largest static TLS
 * any thread may need (surplus included), so tp - static_size can reach
 * below the stack pointer of a thread with a shallow stack: into its dead
 * frames and, on the thread running the check, our own, where stale
 * copies of leaked pointers lie (exit() from a thread's start routine hid
 * both leaks of tests/leaks/exit_thread_leak.c).  The live stack from
 * live_sp up is scanned as the stack anyway. */
static void scan_tls(uintptr_t tp, uintptr_t live_sp)
{
    size_t static_size = 4096, align = 64;
    if (tls_info)
        tls_info(&static_size, &align);
    uintptr_t lo = tp - static_size;
    if (live_sp > lo && live_sp < tp)
        lo = live_sp;
    scan_thread_area(lo, tp + 4096, tp);
    uintptr_t *dtv = ((uintptr_t **)tp)[1];
    if (dtv && fb_leakscan_find((uintptr_t)dtv) < 0) {
        /* dtv[-1] holds the number of entries; each entry is two words. */
        size_t len = dtv[-2];
        if (len < 1u << 20)
            scan_root((uintptr_t)(dtv - 2), (uintptr_t)(dtv + 2 * (len + 1)));
    }
}

static uintptr_t stack_end_of(uintptr_t sp)
{
    const struct range *r = (const struct range *)readable.p;
    for (size_t i = 0; i < readable.n; i++)
        if (sp >= r[i].lo && sp < r[i].hi)
            return r[i].hi;
    return sp;
}

/* Marks a single word (a register value) as a root. */
static void scan_word(uintptr_t w)
{
    uintptr_t cell = w;
    fb_leakscan_mark((uintptr_t)&cell, (uintptr_t)&cell + sizeof cell);
    fb_leakscan_drain();
}

/*
 * At exit, the frames below exit() (our destructor, ld.so's _dl_fini,
 * libc's exit handlers) are not the program's, and the stack below the
 * caller of exit() holds only dead frames whose stale pointers would hide
 * real leaks; valgrind checks once the process is gone and sees neither.
 * So the root is the live part of the stack: from the frame that called
 * exit() up, plus that frame's callee-saved registers.
 *
 * The top is cut too: libc's start frames above main()
 * (__libc_start_call_main, __libc_start_main, _start) hold no pointer of
 * the program's, but their uninitialised slots (a jmp_buf for thread
 * cancellation) keep words written by ld.so's start-up before main, e.g.
 * the address of the first buffer block, freed since and handed out again
 * to a block that then leaks.  So the scan stops at the first frame, at
 * or above main's caller, that belongs to libc and sits just below
 * __libc_start_main.  Returns 0 if no exit() frame was found.
 */
struct exit_frame {
    uintptr_t sp, top; /* live stack [sp, top); top 0 = up to its end */
    uintptr_t regs[6];
};

static int same_module(uintptr_t a, uintptr_t b)
{
    Dl_info ia, ib;
    return dladdr((void *)a, &ia) && dladdr((void *)b, &ib) && ia.dli_fbase == ib.dli_fbase;
}

/* Walks up from cur to __libc_start_main; returns the stack pointer where
 * libc's start frames begin (0 if not found: another thread, a static
 * program). */
static uintptr_t start_frames_bottom(unw_cursor_t *cur)
{
    uintptr_t start_main = (uintptr_t)dlsym(RTLD_DEFAULT, "__libc_start_main");
    unw_word_t v;
    unw_get_reg(cur, UNW_REG_SP, &v);
    uintptr_t prev_sp = v;
    unw_get_reg(cur, UNW_REG_IP, &v);
    uintptr_t prev_ip = v;
    for (int up = 0; start_main && up < 256 && unw_step(cur) > 0; up++) {
        unw_proc_info_t pi;
        if (unw_get_proc_info(cur, &pi) != 0)
            continue;
        unw_get_reg(cur, UNW_REG_SP, &v);
        if (pi.start_ip == start_main)
            return same_module(prev_ip, start_main) ? prev_sp : v;
        prev_sp = v;
        unw_get_reg(cur, UNW_REG_IP, &v);
        prev_ip = v;
    }
    return 0;
}

/* On demand, from the calling thread: where libc's start frames begin. */
static uintptr_t caller_top(void)
{
    unw_context_t uc;
    unw_cursor_t cur;
    if (unw_getcontext(&uc) != 0 || unw_init_local(&cur, &uc) != 0)
        return 0;
    return start_frames_bottom(&cur);
}

static int find_exit_frame(struct exit_frame *ef)
{
    unw_context_t uc;
    unw_cursor_t cur;
    if (unw_getcontext(&uc) != 0 || unw_init_local(&cur, &uc) != 0)
        return 0;
    uintptr_t exit_fn = (uintptr_t)&exit;
    for (int depth = 0; depth < 64 && unw_step(&cur) > 0; depth++) {
        unw_proc_info_t pi;
        if (unw_get_proc_info(&cur, &pi) != 0 || pi.start_ip != exit_fn)
            continue;
        if (unw_step(&cur) <= 0)
            return 0;
        unw_word_t v;
        unw_get_reg(&cur, UNW_REG_SP, &v);
        ef->sp = v;
        ef->top = 0;
        static const int saved[] = {UNW_X86_64_RBX, UNW_X86_64_RBP,
                                    UNW_X86_64_R12, UNW_X86_64_R13,
                                    UNW_X86_64_R14, UNW_X86_64_R15};
        for (size_t i = 0; i < 6; i++)
            ef->regs[i] = unw_get_reg(&cur, saved[i], &v) == 0 ? v : 0;
        ef->top = start_frames_bottom(&cur);
        return 1;
    }
    return 0;
}

/*
 * The program's anonymous memory as roots: pymalloc's arenas, gcc's GC
 * heap, any mmap'd pool of a program's own allocator hold the only
 * pointers to blocks it got from malloc (valgrind scans them too).  The
 * candidates are the anonymous private writable mappings of
 * /proc/self/maps but thread stacks (read_maps), minus the exclusions
 * above, which must be exact: a scanned mapping of jemalloc's or ours
 * would hold a pointer to every block and hide every leak.  If the record
 * of our mappings overflowed, nothing anonymous is scanned (as before).
 *
 * Only resident pages are read (mincore): a page never touched is zero,
 * and reading it would fault it in (a program may keep gigabytes of
 * untouched NORESERVE memory).  A swapped-out page is skipped too: under
 * memory pressure a leak may be reported that is not one, never hidden.
 * Pages are copied with process_vm_readv before they are scanned, so a
 * mapping another running thread unmaps during a check on demand costs a
 * short read, not a fault.
 */
FB_BIG_BSS static struct fb_plat_range own_copy[FB_PLAT_OWN_MAX];
static int anon_ok;
FB_BIG_BSS static unsigned char anon_buf[64 * 1024] __attribute__((aligned(64)));

static int by_lo(const void *x, const void *y)
{
    const struct range *a = x, *b = y;
    return a->lo < b->lo ? -1 : a->lo > b->lo;
}

/* Before other threads are stopped: takes the record's lock, and qsort may
 * call malloc. */
static void prepare_anon(uintptr_t me_tp)
{
    anon_ok = 0;
    if (!anon.n)
        return;
    size_t n = fb_plat_own_ranges(own_copy);
    if (n == (size_t)-1)
        return;
    for (size_t i = 0; i < n; i++)
        excl_add(own_copy[i].lo, own_copy[i].hi);
    size_t static_size = 4096, align = 64;
    if (tls_info)
        tls_info(&static_size, &align);
    excl_add_exact(me_tp - static_size, me_tp + 4096);
    for (size_t i = 0; threads && i < nthreads_hw; i++) {
        const struct thread_rec *t = &threads[i];
        if (!t->used)
            continue;
        excl_add(t->lo, t->hi);
        excl_add_exact(t->tp - static_size, t->tp + 4096);
    }
    struct range *e = (struct range *)excl.p;
    qsort(e, excl.n, sizeof *e, by_lo);
    /* Merged into disjoint ranges, in place. */
    size_t m = 0;
    for (size_t i = 0; i < excl.n; i++) {
        if (m && e[i].lo <= e[m - 1].hi) {
            if (e[i].hi > e[m - 1].hi)
                e[m - 1].hi = e[i].hi;
        } else {
            e[m++] = e[i];
        }
    }
    excl.n = m;
    anon_ok = 1;
}

/* Marks from the resident pages of [lo, hi) (page-aligned). direct_ok:
 * no other thread runs, so the memory may be read in place when
 * process_vm_readv is refused (a seccomp sandbox). */
static void scan_resident(uintptr_t lo, uintptr_t hi, pid_t pid, int direct_ok)
{
    size_t pg = fb_plat_page_size();
    unsigned char res[sizeof anon_buf / 4096 + 1];
    size_t step = pg < sizeof anon_buf ? sizeof anon_buf : pg;
    lo = (lo + 7) & ~(uintptr_t)7;
    /* mincore wants page-aligned addresses; [lo, hi) need not be (a
     * thread's TLS is excluded to the byte, see prepare_anon): pages
     * from lo's, each copy clamped to [lo, hi). */
    for (uintptr_t at = lo & ~(uintptr_t)(pg - 1); at < hi; at += step) {
        size_t len = hi - at < step ? ((hi - at + pg - 1) & ~(pg - 1)) : step;
        size_t npg = len / pg;
        if (npg > sizeof res)
            continue;
        if (mincore((void *)at, len, res) != 0) {
            /* Part of the chunk is no longer mapped (a mapping listed
             * before it was unmapped, or one merged by the kernel with an
             * anonymous neighbour and moved since: our own vectors grow
             * with mremap while /proc/self/maps is read).  Page by page,
             * rather than losing the whole 64 KiB. */
            for (size_t i = 0; i < npg; i++)
                if (mincore((void *)(at + i * pg), pg, &res[i]) != 0)
                    res[i] = 0;
        }
        for (size_t i = 0; i < npg;) {
            if (!(res[i] & 1)) {
                i++;
                continue;
            }
            size_t j = i;
            while (j < npg && (res[j] & 1))
                j++;
            uintptr_t a = at + i * pg, b = at + j * pg;
            i = j;
            if (a < lo)
                a = lo;
            if (b > hi)
                b = hi;
            if (a >= b)
                continue;
            struct iovec local = {anon_buf, b - a}, remote = {(void *)a, b - a};
            ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
            if (got > 0)
                fb_leakscan_mark((uintptr_t)anon_buf, (uintptr_t)anon_buf + (size_t)got);
            else if (got < 0 && errno != EFAULT && errno != ESRCH && direct_ok)
                fb_leakscan_mark(a, b);
        }
    }
}

static void scan_anon(int direct_ok)
{
    if (!anon_ok)
        return;
    pid_t pid = getpid();
    const struct range *e = (const struct range *)excl.p;
    size_t j = 0;
    for (size_t i = 0; i < anon.n; i++) {
        const struct range *r = (const struct range *)anon.p + i;
        for (uintptr_t at = r->lo; at < r->hi;) {
            while (j < excl.n && e[j].hi <= at)
                j++;
            if (j < excl.n && e[j].lo <= at) {
                at = e[j].hi;
                continue;
            }
            uintptr_t end = j < excl.n && e[j].lo < r->hi ? e[j].lo : r->hi;
            scan_resident(at, end, pid, direct_ok);
            at = end;
        }
    }
    fb_leakscan_drain();
}

/*
 * Stopping the other threads at exit.  They keep running otherwise, and a
 * thread that frees or moves a pointer while we scan makes a live block
 * look leaked (LeakSanitizer stops the world with ptrace for this).  We
 * signal every registered thread at once; each handler notes its stack
 * pointer and waits until the scan is over.  The handler's frame sits
 * right below the interrupted one, with the interrupted registers in the
 * signal frame just above, so scanning from that stack pointer covers the
 * thread's live frames and registers and skips its dead frames.  While
 * threads wait, the scan takes no lock (a waiting thread may hold any).
 * Only at exit: the signal cuts a sleep() short, harmless when the
 * process is ending.
 *
 * A thread that blocks the signal (thread pools block every signal in
 * their workers) would never answer: its mask is read from
 * /proc/self/task/<tid>/status first and it is not asked at all (its
 * whole stack is scanned instead).  The others get one deadline for all of
 * them, never one per thread: 50 threads blocking signals made exit take
 * 10 s when each cost a 200 ms timeout.
 *
 * A thread asked in one check stops only until resume_gen reaches the
 * generation it was asked for, so an answer that comes late (after the
 * deadline) returns at once instead of waiting for a later check; and the
 * handler stays installed if anyone did not answer, so a late signal
 * never meets the default action (which for a real-time signal is death).
 */
#define FB_LEAK_SIGNAL (SIGRTMIN + 6)
static _Atomic unsigned resume_gen;
static sem_t answered;
static struct sigaction pause_old;
static int paused_any, handler_installed;

static void pause_handler(int sig)
{
    (void)sig;
    int saved = errno;
    struct thread_rec *t = my_rec;
    unsigned gen = t ? atomic_load(&t->ask) : 0;
    if (gen && atomic_load(&resume_gen) < gen) {
        atomic_store(&t->sp, (uintptr_t)__builtin_frame_address(0));
        sem_post(&answered);
        struct timespec ms = {0, 1000 * 1000};
        while (atomic_load(&resume_gen) < gen)
            nanosleep(&ms, NULL);
    }
    errno = saved;
}

/* Reads /proc/self/task/<tid>/<what> into buf (NUL-terminated, at most
 * cap - 1 bytes); returns the length, or <= 0. */
static ssize_t read_task_file(pid_t tid, const char *what, char *buf, size_t cap)
{
    char path[64];
    struct fb_buf b;
    fb_fmt_buf_init(&b, path, sizeof path, -1);
    fb_fmt_append(&b, "/proc/self/task/%d/%s", (int)tid, what);
    path[b.len < sizeof path ? b.len : sizeof path - 1] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return n;
}

/* Whether thread tid blocks sig, from its SigBlk line (a hex mask, bit
 * sig-1).  Unknown counts as not blocked: then the deadline decides. */
static int signal_blocked(pid_t tid, int sig)
{
    char buf[2048];
    if (read_task_file(tid, "status", buf, sizeof buf) <= 0)
        return 0;
    const char *l = strstr(buf, "\nSigBlk:");
    if (!l)
        return 0;
    l += 9;
    while (*l == ' ' || *l == '\t')
        l++;
    uint64_t mask = hex(&l);
    return (mask >> (sig - 1)) & 1;
}

/* The user stack pointer of thread tid if it is blocked in a system call,
 * from /proc/self/task/<tid>/syscall ("nr args... sp pc"), else 0.  For a
 * thread that cannot be stopped: while it waits in the kernel its live
 * stack is exactly [sp, top), and scanning only that keeps its dead frames
 * (stale pointers) out and the untouched rest of an 8 MiB stack unread. */
static uintptr_t blocked_sp(pid_t tid)
{
    char buf[512];
    if (read_task_file(tid, "syscall", buf, sizeof buf) <= 0 ||
        buf[0] == 'r')                       /* "running" */
        return 0;
    /* The last two fields: sp and pc. */
    const char *f[2] = {NULL, NULL};
    for (char *c = buf; *c; c++)
        if (*c == ' ' && c[1] == '0' && c[2] == 'x') {
            f[0] = f[1];
            f[1] = c + 3;
        }
    if (!f[0])
        return 0;
    return hex(&f[0]);
}

/* Stops every registered thread but the caller; each one's paused_sp is
 * its stack pointer, or 0 if it did not answer (signal blocked, or gone)
 * within 200 ms of the first request. */
static void pause_threads(pthread_t me)
{
    static int ready;
    if (!ready) {
        if (sem_init(&answered, 0, 0) != 0)
            return;
        ready = 1;
    }
    if (!handler_installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = pause_handler;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (sigaction(FB_LEAK_SIGNAL, &sa, &pause_old) != 0)
            return;
        handler_installed = 1;
    }
    paused_any = 1;
    unsigned gen = atomic_load(&resume_gen) + 1;
    size_t sent = 0;
    for (size_t i = 0; i < nthreads_hw; i++) {
        struct thread_rec *t = &threads[i];
        if (!t->used || pthread_equal(t->id, me))
            continue;
        if (signal_blocked(t->tid, FB_LEAK_SIGNAL)) {
            /* Not stopped: what it waits in may return while we scan,
             * as before this check stopped threads at all.  128: the
             * red zone below sp that a leaf function may use. */
            uintptr_t sp = blocked_sp(t->tid);
            t->paused_sp = sp > t->lo + 128 && sp < t->hi ? sp - 128 : 0;
            continue;
        }
        atomic_store(&t->sp, 0);
        atomic_store(&t->ask, gen);
        if (pthread_kill(t->id, FB_LEAK_SIGNAL) == 0)
            sent++;
        else
            atomic_store(&t->ask, 0);
    }
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += 200 * 1000 * 1000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    for (size_t got = 0; got < sent;) {
        if (sem_timedwait(&answered, &deadline) == 0)
            got++;
        else if (errno != EINTR)
            break;
    }
    for (size_t i = 0; i < nthreads_hw; i++)
        if (threads[i].used && atomic_load(&threads[i].ask) == gen)
            threads[i].paused_sp = atomic_load(&threads[i].sp);
}

static void resume_threads(void)
{
    if (!paused_any)
        return;
    int all_answered = 1;
    for (size_t i = 0; i < nthreads_hw; i++) {
        struct thread_rec *t = &threads[i];
        if (atomic_load(&t->ask)) {
            all_answered &= atomic_load(&t->sp) != 0;
            atomic_store(&t->ask, 0);
        }
    }
    atomic_fetch_add(&resume_gen, 1);
    /* Late answers were counted on the semaphore: drop them. */
    while (sem_trywait(&answered) == 0)
        ;
    if (all_answered && handler_installed) {
        sigaction(FB_LEAK_SIGNAL, &pause_old, NULL);
        handler_installed = 0;
    }
    paused_any = 0;
}
FB_NOINLINE void fb_leakroots_mark(int at_exit, const struct fb_leak_caller *caller)
{
    uintptr_t me_tp = thread_pointer();
    pthread_t me = pthread_self();
    struct exit_frame ef = {0, 0, {0}};
    int have_exit_frame = 0;
    uintptr_t top = 0, my_sp = 0;   /* the live part of our stack */

    /* Everything that takes a lock comes first. */
    segs.n = 0;
    excl.n = 0;
    dl_iterate_phdr(list_segments, NULL);
    prepare_anon(me_tp);
    if (at_exit && !caller)
        have_exit_frame = find_exit_frame(&ef);
    else if (caller)
        top = caller_top();
    for (size_t i = 0; threads && i < nthreads_hw; i++)
        threads[i].paused_sp = 0;     /* 0: scan the whole stack */
    int others = 0;
    for (size_t i = 0; threads && i < nthreads_hw; i++)
        others |= threads[i].used && !pthread_equal(threads[i].id, me);
    if (threads && at_exit) {
        /* Our own mmaps from here on must not wait for the record's lock,
         * which a stopped thread may hold (platform.c). */
        fb_plat_own_nowait(1);
        pause_threads(me);
    }

    /* Other threads are stopped (at exit): no locks from here on. */
    fb_leakscan_mark_linker_blocks();
    if (caller) {
        /* On demand: the caller's live stack and callee-saved registers
         * (the jmp_buf's signal-mask area is not written by setjmp), not
         * our own frames, whose uninitialised slots hold stale pointers. */
        scan_root((uintptr_t)caller->regs,
                  (uintptr_t)caller->regs + sizeof caller->regs[0].__jmpbuf);
        scan_thread_area(caller->sp, top > caller->sp ? top : stack_end_of(caller->sp), me_tp);
        my_sp = caller->sp;
    } else if (have_exit_frame) {
        for (size_t i = 0; i < 6; i++)
            scan_word(ef.regs[i]);
        scan_thread_area(ef.sp, ef.top ? ef.top : stack_end_of(ef.sp), me_tp);
        my_sp = ef.sp;
    } else {
        /* Exit without an exit() frame: the whole live stack, with our
         * registers spilled into a jmp_buf on it. */
        jmp_buf regs;
        __builtin_unwind_init();
        setjmp(regs);
        uintptr_t sp = (uintptr_t)&regs;
        scan_thread_area(sp, stack_end_of(sp), me_tp);
        my_sp = sp;
    }
    scan_tls(me_tp, my_sp);
    for (size_t i = 0; i < segs.n; i++) {
        const struct range *r = (const struct range *)segs.p + i;
        scan_root(r->lo, r->hi);
    }
    fb_sigpool_each_live(scan_root);  /* blocks allocated in signal handlers */
    for (size_t i = 0; threads && i < nthreads_hw; i++) {
        struct thread_rec *t = &threads[i];
        if (!t->used || pthread_equal(t->id, me))
            continue;
        uintptr_t from = t->paused_sp;
        /* Without an answer: the whole stack, dead frames included (a
         * stale pointer there may hide a leak, never invent one). */
        int live = from >= t->lo && from < t->hi;
        scan_thread_area(live ? from : t->lo, t->hi, t->tp);
        scan_tls(t->tp, live ? from : 0);
    }
    scan_anon(!others);
}


/* Stops the other threads for a walk at exit that needs a still heap (the
 * canary check): the registry locked as in a check (no thread frees its
 * stack under us), our own mmaps without waiting for the record's lock,
 * then every registered thread asked as above (one that blocks the
 * signal, or does not answer by the deadline, runs on). */
void fb_leakroots_pause_others(void)
{
    pthread_mutex_lock(&thread_lock);
    pthread_t me = pthread_self();
    int others = 0;
    for (size_t i = 0; threads && i < nthreads_hw; i++)
        others |= threads[i].used && !pthread_equal(threads[i].id, me);
    if (!others)
        return;                      /* nobody to stop: no handler either */
    fb_plat_own_nowait(1);
    pause_threads(me);
}

void fb_leakroots_begin(void)
{
    pthread_mutex_lock(&thread_lock);
    read_maps();
}

int fb_leakroots_stopped(void)
{
    return paused_any;
}

void fb_leakroots_end(void)
{
    resume_threads();
    fb_plat_own_nowait(0);
    pthread_mutex_unlock(&thread_lock);
}
