/*
 * Leak check, as valgrind's memcheck and LeakSanitizer classify:
 *
 *  1. collect every tracked live block (buffer objects from the granule
 *     map, jemalloc objects from the tracking table), sorted by address;
 *  2. mark what is reachable, conservatively, from the roots: writable
 *     segments of every loaded object (but ours), the stacks, static TLS
 *     and DTVs of the threads we know (the calling thread from its current
 *     stack pointer, with its callee-saved registers spilled), then
 *     everything reachable from marked blocks.  Interior pointers count;
 *  3. the unmarked blocks leak.  In address order, each one not yet
 *     classified becomes a "direct" leader, and everything reachable from
 *     it "indirect" (a former leader reached this way is demoted), so a
 *     cycle or chain with no outside pointer has exactly one direct block,
 *     as in valgrind's "definitely lost" (clique leaders);
 *  4. group by call site and kind, largest first, symbolise, write.
 *
 * Other threads keep running during the check (nothing stops them), so
 * their stacks are scanned whole: a block they hold in a local is never a
 * direct leak.  Runs with the recursion guard set: the symboliser's and
 * libc's allocations go to jemalloc untracked.
 */
#define _GNU_SOURCE
#include "leak.h"

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
#include <time.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend.h"
#include "canary.h"
#include "epoch.h"
#include "fb.h"
#include "fmt.h"
#include "options.h"
#include "platform.h"
#include "pprof.h"
#include "report.h"
#include "sigpool.h"
#include "symbolize.h"
#include "track.h"

#include "unwind.h"

extern char *program_invocation_name;

/* ---------------------------------------------------------------------- */
/* Growable arrays on mmap                                                 */

struct vec {
    char *p;
    size_t n, cap, elem;
};

static void *vec_push(struct vec *v)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4096;
        void *p = v->p ? mremap(v->p, v->cap * v->elem, cap * v->elem, MREMAP_MAYMOVE)
                       : mmap(NULL, cap * v->elem, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        v->p = p;
        v->cap = cap;
    }
    return v->p + v->elem * v->n++;
}

static void vec_free(struct vec *v)
{
    if (v->p)
        munmap(v->p, v->cap * v->elem);
    v->p = NULL;
    v->n = v->cap = 0;
}

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

void fb_leak_register_thread(void)
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

int fb_leak_on_a_stack(uintptr_t a)
{
    int hit = 0;
    pthread_mutex_lock(&thread_lock);
    for (size_t i = 0; threads && i < nthreads_hw && !hit; i++)
        hit = threads[i].used && a >= threads[i].lo && a < threads[i].hi;
    pthread_mutex_unlock(&thread_lock);
    return hit;
}

void fb_leak_unregister_thread(void)
{
    pthread_t me = pthread_self();
    pthread_mutex_lock(&thread_lock);
    for (size_t i = 0; threads && i < nthreads_hw; i++)
        if (threads[i].used && pthread_equal(threads[i].id, me))
            threads[i].used = 0;
    my_rec = NULL;
    pthread_mutex_unlock(&thread_lock);
}

void fb_leak_fork_child(void)
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

static struct vec readable = {.elem = sizeof(struct range)};

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

static void read_maps(void)
{
    readable.n = 0;
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
                struct range *rg = vec_push(&readable);
                if (rg) {
                    rg->lo = lo;
                    rg->hi = hi;
                }
            }
            line = nl + 1;
        }
        have = (size_t)(buf + have - line);
        memmove(buf, line, have);
    }
    close(fd);
}

/* ---------------------------------------------------------------------- */
/* Blocks                                                                  */

enum { ST_UNSEEN = 0, ST_REACHABLE, ST_DIRECT, ST_INDIRECT, ST_GONE, ST_LIVE };

struct block {
    uintptr_t addr;
    uint64_t usable, request;
    uint32_t site;
    uint8_t state;
};

static struct vec blocks = {.elem = sizeof(struct block)};
static struct vec work = {.elem = sizeof(uint32_t)};
static uintptr_t blocks_lo, blocks_hi;

static struct block *blk(size_t i)
{
    return (struct block *)blocks.p + i;
}

static void add_big(void *ctx, uintptr_t addr, size_t size, uint32_t site)
{
    (void)ctx;
    if (fb_canary_on) {
        size_t inner = fb_canary_request(addr);
        if (inner)
            size = inner;
    }
    struct block *b = vec_push(&blocks);
    if (b)
        *b = (struct block){addr, fb_je_usable((void *)addr), size, site, 0};
}

static void collect(void)
{
    blocks.n = 0;
    if (fb_g.size) {
        uint32_t used = fb_epoch_slots_used();
        size_t granules = fb_g.slot_size >> FB_GRANULE_SHIFT;
        for (uint32_t s = 0; s < used; s++) {
            uintptr_t base = fb_g.base + ((uintptr_t)s << fb_g.slot_shift);
            const uint8_t *map = fb_g.map + ((base - fb_g.base) >> FB_GRANULE_SHIFT);
            for (size_t g = 0; g < granules;) {
                unsigned v = map[g];
                if (v - 1u >= FB_MAX_GRANULES) {
                    g++;
                    continue;
                }
                uintptr_t addr = base + (g << FB_GRANULE_SHIFT);
                size_t usable = (size_t)v << FB_GRANULE_SHIFT, request;
                uint32_t site = fb_track_buffer_site((void *)addr, usable, &request);
                if (fb_canary_on && site) {
                    size_t inner = fb_canary_request(addr);
                    if (inner)
                        request = inner;       /* the program's size */
                }
                struct block *b = site ? vec_push(&blocks) : NULL;
                if (b)
                    *b = (struct block){addr, usable, request, site, 0};
                g += v;
            }
        }
    }
    fb_track_big_each(add_big, NULL);
}

static int by_addr(const void *x, const void *y)
{
    const struct block *a = x, *b = y;
    return a->addr < b->addr ? -1 : a->addr > b->addr;
}

/* Sorting runs with the recursion guard set and no thread stopped, so
 * qsort's temporary buffer may come from malloc (jemalloc, untracked). */
static void sort_blocks(void)
{
    struct block *a = (struct block *)blocks.p;
    size_t n = blocks.n;
    qsort(a, n, sizeof *a, by_addr);
    blocks_lo = n ? a[0].addr : 1;
    blocks_hi = n ? a[n - 1].addr + a[n - 1].usable : 0;
}

/* The block containing address w, or -1. */
static long find(uintptr_t w)
{
    if (w < blocks_lo || w >= blocks_hi)
        return -1;
    size_t lo = 0, hi = blocks.n;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (blk(mid)->addr <= w)
            lo = mid;
        else
            hi = mid;
    }
    struct block *b = blk(lo);
    return (w >= b->addr && w < b->addr + b->usable) ? (long)lo : -1;
}

/* Marks blocks pointed to from [lo, hi) with state to (only blocks whose
 * state is in the set "from"), queueing them for scanning. */
static void scan(uintptr_t lo, uintptr_t hi, uint8_t to, long self)
{
    lo = (lo + 7) & ~(uintptr_t)7;
    for (uintptr_t p = lo; p + 8 <= hi; p += 8) {
        uintptr_t w = *(const uintptr_t *)p;
        long i = find(w);
        if (i < 0 || i == self)
            continue;
        struct block *b = blk((size_t)i);
        int take = to == ST_REACHABLE ? b->state != ST_REACHABLE
                                      : (b->state == ST_UNSEEN || b->state == ST_DIRECT);
        if (!take)
            continue;
        b->state = to;
        uint32_t *slot = vec_push(&work);
        if (slot)
            *slot = (uint32_t)i;
    }
}

static void drain(uint8_t to, long self)
{
    while (work.n) {
        uint32_t i = ((uint32_t *)work.p)[--work.n];
        struct block *b = blk(i);
        scan(b->addr, b->addr + b->usable, to, self);
    }
}

/* Scans [lo, hi) for roots, restricted to readable memory. */
static void scan_root(uintptr_t lo, uintptr_t hi)
{
    const struct range *r = (const struct range *)readable.p;
    for (size_t i = 0; i < readable.n; i++) {
        uintptr_t a = lo > r[i].lo ? lo : r[i].lo;
        uintptr_t b = hi < r[i].hi ? hi : r[i].hi;
        if (a < b)
            scan(a, b, ST_REACHABLE, -1);
    }
    drain(ST_REACHABLE, -1);
}

/* Writable segments of every loaded object but ours, listed before other
 * threads are paused: dl_iterate_phdr takes the loader's lock, which a
 * paused thread may hold. */
static struct vec segs = {.elem = sizeof(struct range)};

static int list_segments(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        /* Our own tables point at every block: not a root. */
        if (fb_track_is_own(lo))
            continue;
        struct range *r = vec_push(&segs);
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
void fb_leak_init(void)
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
    if (dtv && find((uintptr_t)dtv) < 0) {
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
    scan((uintptr_t)&cell, (uintptr_t)&cell + sizeof cell, ST_REACHABLE, -1);
    drain(ST_REACHABLE, -1);
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

/* Blocks the dynamic linker allocated (DTVs and TLS blocks of threads
 * whose stacks glibc keeps cached after they exit, link maps) are its own
 * bookkeeping, referenced from memory we cannot see as roots: they count
 * as reachable, as LeakSanitizer treats them. */
static int from_dynamic_linker(uint32_t site)
{
    const struct fb_track_site *s = fb_track_site(site);
    const struct fb_track_module *m = s && s->depth ? fb_track_module(s->modules[0]) : NULL;
    if (!m)
        return 0;
    const char *base = strrchr(m->path, '/');
    base = base ? base + 1 : m->path;
    return strncmp(base, "ld-linux", 8) == 0 || strncmp(base, "ld.so", 5) == 0;
}

static void mark_linker_blocks(void)
{
    for (size_t i = 0; i < blocks.n; i++) {
        struct block *b = blk(i);
        if (b->state == ST_REACHABLE || !from_dynamic_linker(b->site))
            continue;
        b->state = ST_REACHABLE;
        scan(b->addr, b->addr + b->usable, ST_REACHABLE, -1);
        drain(ST_REACHABLE, -1);
    }
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

/* A candidate leak that was freed while we looked (between collecting the
 * blocks and stopping the threads) is not a leak. */
static int still_live(const struct block *b)
{
    if (fb_epoch_owns((void *)b->addr)) {
        unsigned v = fb_g.map[(b->addr - fb_g.base) >> FB_GRANULE_SHIFT];
        return v - 1u < FB_MAX_GRANULES && ((size_t)v << FB_GRANULE_SHIFT) == b->usable;
    }
    /* With threads parked (one may hold a shard lock) read without it;
     * otherwise take the lock (a running thread may grow the table). */
    return paused_any ? fb_track_big_present_stopped(b->addr)
                      : fb_track_big_lookup(b->addr, NULL, NULL);
}

static FB_NOINLINE void mark_roots(int at_exit, const struct fb_leak_caller *caller)
{
    uintptr_t me_tp = thread_pointer();
    pthread_t me = pthread_self();
    struct exit_frame ef = {0, 0, {0}};
    int have_exit_frame = 0;
    uintptr_t top = 0, my_sp = 0;   /* the live part of our stack */

    /* Everything that takes a lock comes first. */
    segs.n = 0;
    dl_iterate_phdr(list_segments, NULL);
    if (at_exit && !caller)
        have_exit_frame = find_exit_frame(&ef);
    else if (caller)
        top = caller_top();
    for (size_t i = 0; threads && i < nthreads_hw; i++)
        threads[i].paused_sp = 0;     /* 0: scan the whole stack */
    if (threads && at_exit)
        pause_threads(me);

    /* Other threads are stopped (at exit): no locks from here on. */
    mark_linker_blocks();
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
}

static void classify(void)
{
    for (size_t i = 0; i < blocks.n; i++) {
        struct block *b = blk(i);
        if (b->state != ST_UNSEEN)
            continue;
        b->state = ST_DIRECT;
        scan(b->addr, b->addr + b->usable, ST_INDIRECT, (long)i);
        drain(ST_INDIRECT, (long)i);
    }
}

/* ---------------------------------------------------------------------- */
/* Suppressions (LeakSanitizer's format: leak:<pattern>)                   */

static struct vec supp = {.elem = sizeof(char *)};
static char *supp_text;
static size_t supp_len;

static void load_suppressions(void)
{
    supp.n = 0;
    if (strcmp(fb_opt.suppressions, "none") == 0 || supp_text)
        return;
    int fd = open(fb_opt.suppressions, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fb_fmt_dprintf(2, "fbmalloc: cannot read FBMALLOC_SUPPRESSIONS file "
                          "\"%s\" (errno %d)\n",
                       fb_opt.suppressions, errno);
        return;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    if (size > 0 && size < (1 << 24)) {
        supp_len = (size_t)size + 1;
        supp_text = mmap(NULL, supp_len, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (supp_text == MAP_FAILED)
            supp_text = NULL;
        else if (pread(fd, supp_text, (size_t)size, 0) != size)
            supp_text[0] = '\0';
    }
    close(fd);
    for (char *line = supp_text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == ' ' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (strncmp(line, "leak:", 5) == 0 && line[5]) {
            char **slot = vec_push(&supp);
            if (slot)
                *slot = line + 5;
        }
        line = nl ? nl + 1 : line + n;
    }
}

/* Glob match of p against the start of s: '*' matches any run, '$' at the
 * end of p requires the end of s. */
static int match_here(const char *p, const char *s)
{
    for (; *p; p++, s++) {
        if (*p == '*') {
            for (;; s++) {
                if (match_here(p + 1, s))
                    return 1;
                if (!*s)
                    return 0;
            }
        }
        if (*p == '$' && p[1] == '\0')
            return *s == '\0';
        if (*s != *p)
            return 0;
    }
    return 1;
}

static int match(const char *pat, const char *s)
{
    if (!s[0])
        return 0;
    if (pat[0] == '^')
        return match_here(pat + 1, s);
    for (; *s; s++)
        if (match_here(pat, s))
            return 1;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Groups and the report                                                   */

struct group {
    uint32_t site;
    uint8_t kind;             /* ST_DIRECT, ST_INDIRECT, ST_REACHABLE */
    uint8_t suppressed;
    uint64_t bytes, blocks;
};

static struct vec groups = {.elem = sizeof(struct group)};

/* Orders blocks by (kind, site) to aggregate them. */
static int by_kind_site(const void *x, const void *y)
{
    const struct block *a = x, *b = y;
    if (a->state != b->state)
        return a->state < b->state ? -1 : 1;
    return a->site < b->site ? -1 : a->site > b->site;
}

static void build_groups(void)
{
    struct block *a = (struct block *)blocks.p;
    size_t n = blocks.n;
    /* Blocks are no longer needed in address order: regroup in place. */
    qsort(a, n, sizeof *a, by_kind_site);
    groups.n = 0;
    for (size_t i = 0; i < n; i++) {
        if (a[i].state == ST_GONE)
            continue;
        struct group *g = groups.n ? (struct group *)groups.p + groups.n - 1 : NULL;
        if (!g || g->site != a[i].site || g->kind != a[i].state) {
            g = vec_push(&groups);
            if (!g)
                return;
            *g = (struct group){a[i].site, a[i].state, 0, 0, 0};
        }
        g->bytes += a[i].request;
        g->blocks++;
    }
    /* Largest first (insertion sort: groups are few). */
    struct group *gs = (struct group *)groups.p;
    for (size_t i = 1; i < groups.n; i++) {
        struct group t = gs[i];
        size_t j = i;
        while (j > 0 && gs[j - 1].bytes < t.bytes) {
            gs[j] = gs[j - 1];
            j--;
        }
        gs[j] = t;
    }
}



static int suppressed(const struct fb_track_site *s)
{
    if (!supp.n || !s)
        return 0;
    for (unsigned i = 0; i < s->depth; i++) {
        struct fb_report_frame f[FB_SYM_MAX_INLINE];
        unsigned n = fb_report_frames(s, i, f, FB_SYM_MAX_INLINE);
        for (unsigned j = 0; j < n; j++) {
            for (size_t k = 0; k < supp.n; k++) {
                const char *pat = ((char **)supp.p)[k];
                if (match(pat, f[j].sym.func) || match(pat, f[j].module) ||
                    match(pat, f[j].sym.file))
                    return 1;
            }
        }
    }
    return 0;
}


static void json_str(struct fb_buf *b, const char *s)
{
    fb_fmt_puts(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fb_fmt_append(b, "\\%c", c);
        else if (c < 0x20)
            fb_fmt_append(b, "\\u%04x", c);
        else
            fb_fmt_append(b, "%c", c);
    }
    fb_fmt_puts(b, "\"");
}

static const char *kind_name(uint8_t kind)
{
    return kind == ST_DIRECT     ? "direct"
           : kind == ST_INDIRECT ? "indirect"
           : kind == ST_LIVE     ? "live"
                                 : "reachable";
}


static void write_stack_json(struct fb_buf *b, const struct fb_track_site *s)
{
    fb_fmt_puts(b, "[");
    int first = 1;
    for (unsigned i = 0; s && i < s->depth; i++) {
        struct fb_report_frame fs[FB_SYM_MAX_INLINE];
        unsigned n = fb_report_frames(s, i, fs, FB_SYM_MAX_INLINE);
        for (unsigned j = 0; j < n; j++, first = 0) {
            const struct fb_report_frame *f = &fs[j];
            fb_fmt_puts(b, first ? "{\"function\":" : ",{\"function\":");
            json_str(b, f->sym.func);
            fb_fmt_puts(b, ",\"file\":");
            json_str(b, f->sym.file);
            fb_fmt_append(b, ",\"line\":%d,\"module\":", f->sym.line);
            json_str(b, f->module);
            fb_fmt_append(b, ",\"offset\":%lu}", (unsigned long)f->offset);
        }
    }
    fb_fmt_puts(b, "]");
}

/* Folded stacks, as flame-graph tools read them: outermost frame first,
 * ';'-separated, then the weight (bytes). */
static void write_stack_folded(struct fb_buf *b, const struct fb_track_site *s,
                               uint64_t bytes)
{
    for (unsigned i = s ? s->depth : 0; i-- > 0;) {
        struct fb_report_frame fs[FB_SYM_MAX_INLINE];
        unsigned n = fb_report_frames(s, i, fs, FB_SYM_MAX_INLINE);
        for (unsigned j = n; j-- > 0;) {      /* outermost first */
            const struct fb_report_frame *f = &fs[j];
            if (f->sym.func[0]) {
                /* ';' and ' ' separate fields: keep them out of names. */
                for (const char *c = f->sym.func; *c; c++)
                    fb_fmt_append(b, "%c", (*c == ';' || *c == ' ') ? '_' : *c);
            } else {
                fb_fmt_append(b, "%s+0x%lx", fb_report_base_name(f->module),
                              (unsigned long)f->offset);
            }
            fb_fmt_puts(b, i || j ? ";" : "");
        }
    }
    fb_fmt_append(b, " %lu\n", (unsigned long)bytes);
}

struct totals {
    uint64_t groups, bytes, blocks;
    uint64_t direct_bytes, direct_blocks, indirect_bytes, indirect_blocks;
    uint64_t reach_bytes, reach_blocks, supp_bytes, supp_blocks;
};

enum report_mode { FB_REPORT_LEAKS, FB_REPORT_SNAPSHOT, FB_REPORT_SCOPE };

static void write_report(int fd, const struct totals *t, enum report_mode mode)
{
    char mem[8192];
    struct fb_buf b;
    int json = fb_opt.report_format == FB_FORMAT_JSON;
    int folded = fb_opt.report_format == FB_FORMAT_FOLDED;
    int all = fb_opt.leaks == FB_LEAKS_ALL || mode != FB_REPORT_LEAKS;
    int snap = mode != FB_REPORT_LEAKS;
    int scope = mode == FB_REPORT_SCOPE;
    if (fb_opt.report_format == FB_FORMAT_PPROF) {
        /* the same groups as a gzipped profile.proto (src/pprof.c) */
        if (fb_pprof_begin(fd, fb_plat_output_fd(),
                           scope ? FB_PPROF_SCOPE : snap ? FB_PPROF_SNAPSHOT : FB_PPROF_LEAKS) == 0) {
            for (size_t i = 0; i < groups.n; i++) {
                const struct group *g = (const struct group *)groups.p + i;
                if (!g->suppressed && (g->kind != ST_REACHABLE || all))
                    fb_pprof_sample(fb_track_site(g->site), kind_name(g->kind), g->bytes,
                                    g->blocks);
            }
            fb_pprof_end();
        }
        (void)t;
        return;
    }
    fb_fmt_buf_init(&b, mem, sizeof mem, fd);
    const char *prog = program_invocation_name ? program_invocation_name : "";
    if (json) {
        fb_fmt_append(&b, "{\"%s\":{\"pid\":%d,\"program\":",
                      scope  ? "fbmalloc_scope_check"
                      : snap ? "fbmalloc_heap_snapshot"
                             : "fbmalloc_leak_report",
                      (int)getpid());
        json_str(&b, prog);
        fb_fmt_puts(&b, snap ? ",\"live\":[" : ",\"leaks\":[");
    } else if (!folded) {
        fb_fmt_append(&b, "fbmalloc: %s for pid %d (%s)\n",
                      scope ? "scope check" : snap ? "heap snapshot" : "leak report",
                      (int)getpid(), prog);
    }
    int first = 1;
    for (size_t i = 0; i < groups.n; i++) {
        const struct group *g = (const struct group *)groups.p + i;
        if (g->suppressed || (g->kind == ST_REACHABLE && !all))
            continue;
        const struct fb_track_site *s = fb_track_site(g->site);
        if (folded) {
            write_stack_folded(&b, s, g->bytes);
        } else if (json) {
            fb_fmt_append(&b, "%s{\"kind\":\"%s\",\"bytes\":%lu,\"blocks\":%lu,\"stack\":",
                          first ? "" : ",", kind_name(g->kind),
                          (unsigned long)g->bytes, (unsigned long)g->blocks);
            write_stack_json(&b, s);
            fb_fmt_puts(&b, "}");
        } else {
            const char *unit = g->blocks == 1 ? "block" : "blocks";
            if (g->kind == ST_LIVE)
                fb_fmt_append(&b, "fbmalloc: %s: %'lu bytes in %'lu %s, allocated from:\n",
                              scope ? "still live at scope end" : "live",
                              (unsigned long)g->bytes, (unsigned long)g->blocks, unit);
            else if (g->kind == ST_REACHABLE)
                fb_fmt_append(&b, "fbmalloc: still reachable: %'lu bytes in %'lu %s, "
                                  "allocated from:\n",
                              (unsigned long)g->bytes, (unsigned long)g->blocks, unit);
            else
                fb_fmt_append(&b, "fbmalloc: %s leak of %'lu bytes in %'lu %s, "
                                  "allocated from:\n",
                              kind_name(g->kind), (unsigned long)g->bytes,
                              (unsigned long)g->blocks, unit);
            fb_report_stack(&b, s);
        }
        first = 0;
    }
    if (folded) {
        /* Nothing else: the file stays a valid folded-stack input. */
    } else if (snap && json) {
        fb_fmt_append(&b, "],\"summary\":{\"sites\":%lu,\"bytes\":%lu,\"blocks\":%lu}}}\n",
                      (unsigned long)t->groups, (unsigned long)t->bytes,
                      (unsigned long)t->blocks);
    } else if (scope) {
        fb_fmt_append(&b, "fbmalloc: scope end: %'lu %s (%'lu bytes) allocated in the "
                          "scope %s still live\n",
                      (unsigned long)t->blocks, t->blocks == 1 ? "block" : "blocks",
                      (unsigned long)t->bytes, t->blocks == 1 ? "is" : "are");
    } else if (snap) {
        fb_fmt_append(&b, "fbmalloc: %'lu bytes live in %'lu %s from %'lu call %s\n",
                      (unsigned long)t->bytes, (unsigned long)t->blocks,
                      t->blocks == 1 ? "block" : "blocks", (unsigned long)t->groups,
                      t->groups == 1 ? "site" : "sites");
    } else if (json) {
        fb_fmt_append(&b, "],\"summary\":{\"leaks\":%lu,\"bytes\":%lu,\"blocks\":%lu,"
                          "\"direct_bytes\":%lu,\"direct_blocks\":%lu,"
                          "\"indirect_bytes\":%lu,\"indirect_blocks\":%lu,"
                          "\"reachable_bytes\":%lu,\"reachable_blocks\":%lu,"
                          "\"suppressed_bytes\":%lu,\"suppressed_blocks\":%lu}}}\n",
                      (unsigned long)t->groups, (unsigned long)t->bytes,
                      (unsigned long)t->blocks, (unsigned long)t->direct_bytes,
                      (unsigned long)t->direct_blocks, (unsigned long)t->indirect_bytes,
                      (unsigned long)t->indirect_blocks, (unsigned long)t->reach_bytes,
                      (unsigned long)t->reach_blocks, (unsigned long)t->supp_bytes,
                      (unsigned long)t->supp_blocks);
    } else {
        fb_fmt_append(&b, "fbmalloc: %'lu %s (%'lu bytes in %'lu %s); %'lu %s still reachable",
                      (unsigned long)t->groups, t->groups == 1 ? "leak" : "leaks",
                      (unsigned long)t->bytes, (unsigned long)t->blocks,
                      t->blocks == 1 ? "block" : "blocks",
                      (unsigned long)t->reach_blocks,
                      t->reach_blocks == 1 ? "block" : "blocks");
        if (t->supp_blocks)
            fb_fmt_append(&b, "; %'lu suppressed", (unsigned long)t->supp_blocks);
        fb_fmt_puts(&b, "\n");
    }
    fb_fmt_flush(&b);
}

static pthread_mutex_t check_lock = PTHREAD_MUTEX_INITIALIZER;

/* Every check, snapshot or walk runs alone, with the recursion guard set
 * (its own allocations go to jemalloc untracked) and errno kept. */
struct guard {
    uint8_t was_busy;
    int saved_errno;
};

static void enter(struct guard *g)
{
    pthread_mutex_lock(&check_lock);
    g->was_busy = fb_t.busy;
    fb_t.busy = 1;
    g->saved_errno = errno;
}

static void leave(const struct guard *g)
{
    errno = g->saved_errno;
    fb_t.busy = g->was_busy;
    pthread_mutex_unlock(&check_lock);
}

long fb_leak_check(int at_exit, const struct fb_leak_caller *caller)
{
    if (!fb_track_on)
        return -1;
    struct guard g;
    enter(&g);

    /* The thread registry may not change while stacks are scanned: a
     * thread that unregisters could otherwise free its stack under us. */
    pthread_mutex_lock(&thread_lock);
    read_maps();
    collect();
    sort_blocks();
    mark_roots(at_exit, caller);
    classify();
    for (size_t i = 0; i < blocks.n; i++) {
        struct block *b = blk(i);
        if ((b->state == ST_DIRECT || b->state == ST_INDIRECT) && !still_live(b))
            b->state = ST_GONE;
    }
    resume_threads();
    pthread_mutex_unlock(&thread_lock);
    build_groups();

    /* Symbolisation loads libdw with dlopen(), which (like any dl*
     * call) clears the program's pending dlerror() message: only when
     * there is something to name. */
    load_suppressions();
    int printable = supp.n > 0;
    for (size_t i = 0; i < groups.n && !printable; i++) {
        const struct group *g = (const struct group *)groups.p + i;
        printable = g->kind != ST_REACHABLE || fb_opt.leaks == FB_LEAKS_ALL;
    }
    if (printable)
        fb_sym_open();
    struct totals t;
    memset(&t, 0, sizeof t);
    for (size_t i = 0; i < groups.n; i++) {
        struct group *g = (struct group *)groups.p + i;
        if (g->kind == ST_REACHABLE) {
            t.reach_bytes += g->bytes;
            t.reach_blocks += g->blocks;
            continue;
        }
        if (suppressed(fb_track_site(g->site))) {
            g->suppressed = 1;
            t.supp_bytes += g->bytes;
            t.supp_blocks += g->blocks;
            continue;
        }
        t.groups++;
        t.bytes += g->bytes;
        t.blocks += g->blocks;
        if (g->kind == ST_DIRECT) {
            t.direct_bytes += g->bytes;
            t.direct_blocks += g->blocks;
        } else {
            t.indirect_bytes += g->bytes;
            t.indirect_blocks += g->blocks;
        }
    }
    /* At exit, nothing to say is said by nothing (as LeakSanitizer does):
     * a program whose stderr is part of its output must not change under
     * tracking.  FBMALLOC_LEAKS=all and FBMALLOC_VERBOSE ask for the
     * report anyway; a check on demand was asked for. */
    if (!at_exit || t.groups || fb_opt.leaks == FB_LEAKS_ALL || fb_opt.verbose) {
        int fd = fb_plat_output_fd();
        write_report(fd, &t, FB_REPORT_LEAKS);
        fb_plat_output_done();
    }
    fb_sym_close();

    vec_free(&blocks);
    vec_free(&work);
    vec_free(&groups);
    long leaked = (long)t.blocks;
    leave(&g);
    return leaked;
}

/* Calls fn for every tracked live block (address, usable size, site);
 * fn runs with the check lock held and the recursion guard set. */
void fb_leak_for_each_live(void (*fn)(void *ctx, uintptr_t addr, size_t usable,
                                      uint32_t site),
                           void *ctx)
{
    if (!fb_track_on)
        return;
    struct guard g;
    enter(&g);
    collect();
    for (size_t i = 0; i < blocks.n; i++) {
        const struct block *b = blk(i);
        fn(ctx, b->addr, b->usable, b->site);
    }
    vec_free(&blocks);
    leave(&g);
}

/* Groups the collected live blocks by site and writes them to fd (-1:
 * FBMALLOC_OUTPUT); with nothing to report, writes only if always.
 * Returns the number of blocks.  Frees the block and group lists. */
static long write_live(int fd, enum report_mode mode, int always)
{
    build_groups();
    struct totals t;
    memset(&t, 0, sizeof t);
    for (size_t i = 0; i < groups.n; i++) {
        const struct group *g = (const struct group *)groups.p + i;
        t.groups++;
        t.bytes += g->bytes;
        t.blocks += g->blocks;
    }
    if (groups.n || always) {
        if (groups.n)
            fb_sym_open();
        int out = fd >= 0 ? fd : fb_plat_output_fd();
        write_report(out, &t, mode);
        if (fd < 0)
            fb_plat_output_done();
        fb_sym_close();
    }
    vec_free(&blocks);
    vec_free(&groups);
    return (long)t.blocks;
}

/*
 * Heap snapshot: every tracked live block, grouped by call site, largest
 * first; no reachability scan, so other threads are not stopped and the
 * program is held up only for the collection and the writing.
 */
int fb_leak_snapshot(int fd)
{
    if (!fb_track_on)
        return -1;
    struct guard g;
    enter(&g);
    collect();
    for (size_t i = 0; i < blocks.n; i++)
        blk(i)->state = ST_LIVE;
    write_live(fd, FB_REPORT_SNAPSHOT, 1);
    leave(&g);
    return 0;
}

/* The snapshot signal only raises this flag (a handler may neither lock
 * nor allocate); the next allocation, which with tracking on always takes
 * the slow path, writes the snapshot. */
_Atomic int fb_leak_snapshot_pending;

static void snapshot_signal(int sig)
{
    (void)sig;
    atomic_store(&fb_leak_snapshot_pending, 1);
}

void fb_leak_snapshot_pending_run(void)
{
    if (atomic_exchange(&fb_leak_snapshot_pending, 0))
        fb_leak_snapshot(-1);
}

void fb_leak_install_snapshot_signal(void)
{
    int sig = fb_opt.snapshot_signal == FB_SNAP_USR2   ? SIGUSR2
              : fb_opt.snapshot_signal == FB_SNAP_USR1 ? SIGUSR1
                                                       : 0;
    struct sigaction sa, old;
    if (!sig || sigaction(sig, NULL, &old) != 0 || old.sa_handler != SIG_DFL)
        return;                      /* the program's own handler wins */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = snapshot_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/*
 * Scoped leak checks (fbmalloc_scope_begin/end): while a scope is open on
 * a thread, each block that thread allocates is noted; at the end, the
 * noted blocks still live are reported, grouped by call site.  Scopes
 * nest.  The list lives in mmap'd memory of the thread's own.
 */
#define FB_SCOPE_DEPTH 32

struct scope_state {
    uintptr_t *v;
    size_t n, cap;
    unsigned depth;
    size_t marks[FB_SCOPE_DEPTH];
};

static __thread struct scope_state *fb_scope __attribute__((tls_model("initial-exec")));

void fb_leak_scope_note(const void *p)
{
    struct scope_state *s = fb_scope;
    if (fb_likely(!s || !s->depth))
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        void *v = s->v ? mremap(s->v, s->cap * sizeof *s->v, cap * sizeof *s->v, MREMAP_MAYMOVE)
                       : mmap(NULL, cap * sizeof *s->v, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (v == MAP_FAILED)
            return;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (uintptr_t)p;
}

int fb_leak_scope_begin(void)
{
    if (!fb_track_on)
        return -1;
    struct scope_state *s = fb_scope;
    if (!s) {
        s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (s == MAP_FAILED)
            return -1;
        fb_scope = s;
    }
    if (s->depth == FB_SCOPE_DEPTH)
        return -1;
    s->marks[s->depth++] = s->n;
    return (int)s->depth;
}

static int cmp_uintptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

long fb_leak_scope_end(void)
{
    struct scope_state *s = fb_scope;
    if (!fb_track_on || !s || !s->depth)
        return -1;
    size_t from = s->marks[--s->depth];
    struct guard g;
    enter(&g);
    /* One entry per address (a block freed and another allocated at the
     * same place inside the scope was noted twice). */
    uintptr_t *v = s->v + from;
    size_t n = s->n - from;
    qsort(v, n, sizeof *v, cmp_uintptr);
    blocks.n = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && v[i] == v[i - 1])
            continue;
        void *p = (void *)v[i];
        size_t usable, request = 0;
        uint32_t site;
        if (fb_epoch_owns(p)) {
            usable = fb_epoch_usable(p);
            if (!usable)
                continue;
            site = fb_track_buffer_site(p, usable, &request);
        } else if (fb_track_big_lookup(v[i], &request, &site)) {
            usable = request;
        } else {
            continue;
        }
        /* ld.so's bookkeeping (a thread's DTV) is not the scope's. */
        if (from_dynamic_linker(site))
            continue;
        if (fb_canary_on) {
            size_t inner = fb_canary_request(v[i]);
            if (inner)
                request = inner;
        }
        struct block *b = vec_push(&blocks);
        if (b)
            *b = (struct block){v[i], usable, request, site, ST_LIVE};
    }
    s->n = from;
    long live = write_live(-1, FB_REPORT_SCOPE, 0);
    leave(&g);
    return live;
}
