/*
 * Symbolisation (src/symbolize.c), through the interface the leak report
 * uses: (module path, module-relative address) -> function, file:line.
 *
 * Built twice (tests/unit/sym/meson.build): as a PIE and as a non-PIE
 * executable.  argv[1] is a shared library (-g -O0) that is dlopen()ed,
 * described and dlclose()d before it is symbolised; argv[2], if given, is
 * the same library stripped, with a .gnu_debuglink to its debug file.
 *
 * Expected names and files are here; expected lines come from the helpers
 * (tests/unit/sym/), which bracket each function with __LINE__ markers.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "sym/sym_targets.h"
#include "symbolize.h"

/* Test hook in src/symbolize.c: drop caches, act as if libdw were absent. */
void fb_sym_test_disable_libdw(int disable);

/* One frame as the stack capture would record it. */
struct frame {
    const char *func;        /* expected (demangled) name */
    const char *file;        /* expected source basename */
    int static_fn;           /* local: only in .symtab, not .dynsym */
    char module[PATH_MAX];   /* dl_iterate_phdr's name ("" = main program) */
    uintptr_t rel;           /* a few bytes into the function, minus bias */
    int first, last;         /* lines the function spans */
};

static int have_libdw;

#define CHECK_STR_EQ(got, want, what)                                        \
    do {                                                                     \
        check_count++;                                                       \
        if (strcmp((got), (want)) != 0) {                                    \
            check_failures++;                                                \
            fprintf(stderr, "%s:%d: %s: got \"%s\", expected \"%s\"\n",      \
                    __FILE__, __LINE__, (what), (got), (want));              \
        }                                                                    \
    } while (0)

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ---- where the functions run -------------------------------------------- */

struct where {
    uintptr_t addr;
    int found;
    uintptr_t bias;
    char name[PATH_MAX];
};

static int where_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct where *w = data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && w->addr >= lo && w->addr < lo + ph->p_memsz) {
            w->found = 1;
            w->bias = info->dlpi_addr;
            snprintf(w->name, sizeof w->name, "%s", info->dlpi_name);
            return 1;
        }
    }
    return 0;
}

/* Records target t the way the stack capture does: module name and load
 * bias from dl_iterate_phdr, 4 bytes into the function (inside its
 * prologue, like a return address minus one is inside its call). */
static void locate(struct frame *f, const struct sym_target *t)
{
    struct where w = { .addr = (uintptr_t)t->addr };
    dl_iterate_phdr(where_cb, &w);
    CHECK(w.found);
    snprintf(f->module, sizeof f->module, "%s", w.name);
    f->rel = (uintptr_t)t->addr - w.bias + 4;
    f->first = t->first;
    f->last = t->last;
}

/* ---- checks ------------------------------------------------------------- */

/* Looks f up in module; want_func/want_line say what must be known. */
static void check_frame(const struct frame *f, const char *module,
                        int want_func, int want_line)
{
    struct fb_sym s;
    memset(&s, 0x5a, sizeof s);   /* every field must be written */
    fb_sym_lookup(module, f->rel, &s);
    CHECK(memchr(s.func, '\0', sizeof s.func) && memchr(s.file, '\0', sizeof s.file));
    CHECK_STR_EQ(s.func, want_func ? f->func : "", module);
    if (want_line) {
        CHECK_STR_EQ(base_name(s.file), f->file, f->func);
        check_count++;
        if (s.line < f->first || s.line > f->last) {
            check_failures++;
            fprintf(stderr, "%s: line %d not in [%d, %d]\n", f->func, s.line,
                    f->first, f->last);
        }
    } else {
        CHECK_STR_EQ(s.file, "", f->func);
        CHECK_EQ_U(s.line, 0);
    }
}

static void check_empty(const char *module, uintptr_t addr)
{
    struct fb_sym s;
    memset(&s, 0x5a, sizeof s);
    fb_sym_lookup(module, addr, &s);
    CHECK_STR_EQ(s.func, "", module ? module : "(null)");
    CHECK_STR_EQ(s.file, "", module ? module : "(null)");
    CHECK_EQ_U(s.line, 0);
}

/* Only that it neither crashes nor leaves fields unterminated. */
static void lookup_survives(const char *module, uintptr_t addr)
{
    struct fb_sym s;
    memset(&s, 0x5a, sizeof s);
    fb_sym_lookup(module, addr, &s);
    CHECK(memchr(s.func, '\0', sizeof s.func) && memchr(s.file, '\0', sizeof s.file));
}

static void test_demangle(void)
{
    char b[256];
    CHECK_STR_EQ(fb_sym_demangle("_ZN2ns5Klass6methodEi", b, sizeof b),
                 "ns::Klass::method(int)", "demangle");
    CHECK_STR_EQ(fb_sym_demangle("_ZN2ns5twiceIiEET_S1_", b, sizeof b),
                 "int ns::twice<int>(int)", "demangle template");
    CHECK_STR_EQ(fb_sym_demangle("_ZN2ns1fEv.cold", b, sizeof b),
                 "ns::f() [clone .cold]", "demangle clone");
    CHECK_STR_EQ(fb_sym_demangle("main", b, sizeof b), "main", "C name");
    CHECK_STR_EQ(fb_sym_demangle("_Z", b, sizeof b), "_Z", "invalid");
    CHECK_STR_EQ(fb_sym_demangle("_Zjunk!", b, sizeof b), "_Zjunk!", "invalid");
    CHECK_STR_EQ(fb_sym_demangle(NULL, b, sizeof b), "", "NULL name");
    char small[8];
    CHECK_STR_EQ(fb_sym_demangle("_ZN2ns5Klass6methodEi", small, sizeof small),
                 "ns::Kla", "truncated");
    CHECK_STR_EQ(fb_sym_demangle("a_long_c_name", small, sizeof small),
                 "a_long_", "truncated");
    char one = 'x';
    CHECK(fb_sym_demangle("main", &one, 0) == &one && one == 'x');
}

/* ---- files to feed it --------------------------------------------------- */

static char tmpdir[] = "/tmp/fb_symtest.XXXXXX";
static int tmp_serial;

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(n > 0 ? (size_t)n : 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return p;
}

/* Writes len bytes to a new file (a new path each time: modules are cached
 * by path) and returns its path in a static buffer. */
static const char *write_tmp(const void *p, size_t len)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/f%d", tmpdir, tmp_serial++);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK(fwrite(p, 1, len, f) == len);
        fclose(f);
    }
    return path;
}

static void remove_tmp(void)
{
    char path[PATH_MAX];
    for (int i = 0; i < tmp_serial; i++) {
        snprintf(path, sizeof path, "%s/f%d", tmpdir, i);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/fifo", tmpdir);
    unlink(path);
    CHECK(rmdir(tmpdir) == 0);
}

/* The section header of the first section of this type, in an ELF image. */
static Elf64_Shdr *find_section(unsigned char *img, uint32_t type)
{
    Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
    Elf64_Shdr *sh = (Elf64_Shdr *)(img + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum; i++)
        if (sh[i].sh_type == type)
            return &sh[i];
    return NULL;
}

/* Damaged copies of the test program: none may crash the lookup.  With
 * fuzz, also many randomly damaged ones (only when libdw is off: we test
 * our parser, not libelf's). */
static void test_damaged(const struct frame *fr, int fuzz)
{
    size_t len;
    unsigned char *exe = read_file("/proc/self/exe", &len);
    CHECK(exe != NULL && len > 4096);
    if (!exe)
        return;
    unsigned char *img = malloc(len);
    Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
#define DAMAGED(stmt)                                                        \
    do {                                                                     \
        memcpy(img, exe, len);                                               \
        stmt;                                                                \
        const char *p_ = write_tmp(img, len);                                \
        for (int i_ = 0; i_ < SYM_PROG_TARGETS; i_++)                        \
            lookup_survives(p_, fr[i_].rel);                                 \
        lookup_survives(p_, 0);                                              \
    } while (0)
    DAMAGED(eh->e_shoff = (Elf64_Off)len - 8);
    DAMAGED(eh->e_shoff = UINT64_MAX - 100);
    DAMAGED(eh->e_shnum = 0xfeff);
    DAMAGED(eh->e_shnum = 0; eh->e_shstrndx = 0);
    DAMAGED(eh->e_phoff = UINT64_MAX - 100);
    DAMAGED(eh->e_shentsize = 7);
    DAMAGED(find_section(img, SHT_SYMTAB)->sh_offset = UINT64_MAX - 10);
    DAMAGED(find_section(img, SHT_SYMTAB)->sh_size = UINT64_MAX - 10);
    DAMAGED(find_section(img, SHT_SYMTAB)->sh_link = 9999);
    DAMAGED(find_section(img, SHT_SYMTAB)->sh_entsize = 1);
    DAMAGED({
        Elf64_Shdr *st = find_section(img, SHT_SYMTAB);
        Elf64_Shdr *sh = (Elf64_Shdr *)(img + eh->e_shoff);
        sh[st->sh_link].sh_size = UINT64_MAX / 2;
    });
    DAMAGED({
        Elf64_Shdr *st = find_section(img, SHT_SYMTAB);
        Elf64_Shdr *sh = (Elf64_Shdr *)(img + eh->e_shoff);
        /* Strings not NUL-terminated at the end of the table. */
        memset(img + sh[st->sh_link].sh_offset, 'A', sh[st->sh_link].sh_size);
    });
    DAMAGED({
        Elf64_Shdr *st = find_section(img, SHT_SYMTAB);
        Elf64_Sym *s = (Elf64_Sym *)(img + st->sh_offset);
        for (size_t i = 0; i < st->sh_size / sizeof *s; i++) {
            s[i].st_name = 0xfffffff0u - (uint32_t)i;
            s[i].st_shndx = (uint16_t)(0xff00 + i);
            s[i].st_size = UINT64_MAX - i;
        }
    });
    /* Truncated files: the ELF header only, and cut in the middle. */
    write_tmp(exe, 0);
    lookup_survives(write_tmp(exe, 64), fr[0].rel);
    lookup_survives(write_tmp(exe, len / 2), fr[0].rel);
    lookup_survives(write_tmp(exe, len - 1), fr[0].rel);
    lookup_survives(write_tmp("not an ELF file\n", 16), fr[0].rel);

    if (fuzz) {
        /* Random bytes over the headers, the section table and the symbol
         * tables, with a fixed seed so failures can be replayed. */
        srand(12345);
        Elf64_Ehdr *e0 = (Elf64_Ehdr *)exe;
        Elf64_Shdr *st = find_section(exe, SHT_SYMTAB);
        size_t sh_at = e0->e_shoff, sh_len = (size_t)e0->e_shnum * sizeof(Elf64_Shdr);
        size_t sym_at = st ? st->sh_offset : 0, sym_len = st ? st->sh_size : 0;
        for (int round = 0; round < 300; round++) {
            memcpy(img, exe, len);
            for (int k = 0; k < 16; k++) {
                size_t at;
                switch (rand() % 3) {
                case 0: at = (size_t)rand() % sizeof(Elf64_Ehdr); break;
                case 1: at = sh_at + (size_t)rand() % (sh_len ? sh_len : 1); break;
                default: at = sym_at + (size_t)rand() % (sym_len ? sym_len : 1);
                }
                if (at < len)
                    img[at] = (unsigned char)rand();
            }
            const char *p = write_tmp(img, len);
            for (int i = 0; i < SYM_PROG_TARGETS; i++)
                lookup_survives(p, fr[i].rel);
            unlink(p);
        }
    }
#undef DAMAGED
    free(img);
    free(exe);
}

static void test_garbage(const struct frame *fr, int fuzz)
{
    check_empty("/nonexistent/libnope.so", fr[0].rel);
    check_empty("/", fr[0].rel);
    check_empty("/dev/null", fr[0].rel);
    check_empty("linux-vdso.so.1", 0x800);
    check_empty("[vdso]", 0x800);
    lookup_survives(NULL, fr[0].rel);   /* NULL: the main program */
    /* Addresses no function covers. */
    check_empty("", 0);
    check_empty("", 1);
    check_empty("", 0xdeadbeef);
    check_empty("", UINTPTR_MAX);
    check_empty("", UINTPTR_MAX - 3);
    check_empty("", (uintptr_t)1 << 47);
    /* A FIFO must not block the lookup. */
    char fifo[PATH_MAX];
    snprintf(fifo, sizeof fifo, "%s/fifo", tmpdir);
    if (mkfifo(fifo, 0600) == 0)
        check_empty(fifo, fr[0].rel);
    test_damaged(fr, fuzz);
}

/* Many distinct addresses (the cache grows and rehashes) and many repeats
 * (the cache answers): answers must not change. */
static void test_cache(const struct frame *fr)
{
    enum { N = 5000 };
    static struct fb_sym first[N];
    uintptr_t start = fr[0].rel - 4;
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++)
        fb_sym_lookup("", start + (uintptr_t)i, &first[i]);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int same = 1;
    for (int round = 0; round < 4; round++)
        for (int i = 0; i < N; i++) {
            struct fb_sym s;
            fb_sym_lookup("", start + (uintptr_t)i, &s);
            same &= strcmp(s.func, first[i].func) == 0 &&
                    strcmp(s.file, first[i].file) == 0 && s.line == first[i].line;
        }
    clock_gettime(CLOCK_MONOTONIC, &t2);
    CHECK(same);
    CHECK_STR_EQ(first[4].func, fr[0].func, "cache");
    double a = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    double b = (double)(t2.tv_sec - t1.tv_sec) * 1e3 + (double)(t2.tv_nsec - t1.tv_nsec) / 1e6;
    printf("  %d new addresses: %.1f ms; %d cached lookups: %.1f ms\n", N, a,
           4 * N, b);
}

/* ---- the cases ----------------------------------------------------------- */

static void expect_exe_type(void)
{
    int fd = open("/proc/self/exe", O_RDONLY);
    Elf64_Ehdr eh;
    CHECK(fd >= 0 && read(fd, &eh, sizeof eh) == (ssize_t)sizeof eh);
    if (fd >= 0)
        close(fd);
    /* The build flags did what the test name says. */
    CHECK_EQ_U(eh.e_type, SYM_EXPECT_PIE ? ET_DYN : ET_EXEC);
}

static int prog_frames(struct frame *fr)
{
    struct sym_target t[SYM_PROG_TARGETS];
    sym_prog_describe(t);
    static const struct { const char *func, *file; int static_fn; } want[] = {
        { "sym_prog_c", "sym_prog.c", 0 },
        { "sym_prog_static", "sym_prog.c", 1 },
        { "ns::Klass::method(int)", "sym_prog_cxx.cpp", 0 },
    };
    for (int i = 0; i < SYM_PROG_TARGETS; i++) {
        fr[i].func = want[i].func;
        fr[i].file = want[i].file;
        fr[i].static_fn = want[i].static_fn;
        locate(&fr[i], &t[i]);
        CHECK_STR_EQ(fr[i].module, "", "main program's name");
        if (!SYM_EXPECT_PIE)
            CHECK(fr[i].rel == (uintptr_t)t[i].addr + 4);
    }
    return SYM_PROG_TARGETS;
}

/* dlopen()s the library, records its frames, dlclose()s it. */
static int lib_frames(const char *path, struct frame *fr)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL);
    if (!h) {
        fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
        return 0;
    }
    void (*describe)(struct sym_target *) =
        (void (*)(struct sym_target *))dlsym(h, "sym_lib_describe");
    CHECK(describe != NULL);
    if (!describe)
        return 0;
    struct sym_target t[SYM_LIB_TARGETS];
    describe(t);
    static const struct { const char *func, *file; int static_fn; } want[] = {
        { "sym_lib_c", "sym_lib.c", 0 },
        { "sym_lib_static", "sym_lib.c", 1 },
        { "symlib::Widget::poke(long)", "sym_lib_cxx.cpp", 0 },
    };
    for (int i = 0; i < SYM_LIB_TARGETS; i++) {
        fr[i].func = want[i].func;
        fr[i].file = want[i].file;
        fr[i].static_fn = want[i].static_fn;
        locate(&fr[i], &t[i]);
        CHECK_STR_EQ(fr[i].module, path, "library's name");
    }
    CHECK(dlclose(h) == 0);
    /* Gone before the lookups, as with a library unloaded before exit. */
    CHECK(dlopen(path, RTLD_NOW | RTLD_NOLOAD) == NULL);
    return SYM_LIB_TARGETS;
}

/* All frames, with libdw (names + file:line) or without (names). */
static void check_all(const struct frame *prog, const struct frame *lib,
                      int nlib, const char *split, int dw)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0);
    exe[n > 0 ? n : 0] = '\0';
    for (int i = 0; i < SYM_PROG_TARGETS; i++) {
        check_frame(&prog[i], "", 1, dw);       /* as recorded */
        check_frame(&prog[i], exe, 1, dw);      /* by its path */
    }
    for (int i = 0; i < nlib; i++)
        check_frame(&lib[i], lib[i].module, 1, dw);
    /* The stripped copy has the same layout (objcopy keeps the loadable
     * segments): the same addresses apply.  libdw finds everything in the
     * debug file; our reader sees .dynsym only, without static functions. */
    if (split)
        for (int i = 0; i < nlib; i++)
            check_frame(&lib[i], split, dw || !lib[i].static_fn, dw);
}

int main(int argc, char **argv)
{
    /* Not linked: libdw must appear only once symbolisation starts. */
    CHECK(dlopen("libdw.so.1", RTLD_NOW | RTLD_NOLOAD) == NULL);
    CHECK(mkdtemp(tmpdir) != NULL);
    expect_exe_type();
    test_demangle();

    struct frame prog[SYM_PROG_TARGETS], lib[SYM_LIB_TARGETS];
    int nlib = 0;
    prog_frames(prog);
    const char *lib_path = argc > 1 ? argv[1] : NULL;
    const char *split = argc > 2 ? argv[2] : NULL;
    CHECK(lib_path != NULL);
    if (lib_path)
        nlib = lib_frames(lib_path, lib);

    fb_sym_open();
    fb_sym_open();   /* idempotent */
    /* Lazy: libdw is loaded at the first address no cache knows, not by
     * fb_sym_open.  Whether it is installed decides what to expect. */
    CHECK(dlopen("libdw.so.1", RTLD_NOW | RTLD_NOLOAD) == NULL);
    void *dw = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
    have_libdw = dw != NULL;
    printf("  libdw %s, __cxa_demangle %s\n",
           have_libdw ? "loaded" : "MISSING: file:line checks skipped",
           dlsym(RTLD_DEFAULT, "__cxa_demangle") ? "in the program"
                                                 : "from a dlopen()ed libstdc++");

    /* With libdw: names and file:line. */
    check_all(prog, lib, nlib, split, have_libdw);
    test_cache(prog);
    test_garbage(prog, 0);
    fb_sym_close();
    fb_sym_close();   /* idempotent */

    /* Reopens implicitly after a close. */
    check_frame(&prog[0], "", 1, have_libdw);

    /* Without libdw: names from the ELF symbol tables, no file:line. */
    fb_sym_test_disable_libdw(1);
    fb_sym_open();
    check_all(prog, lib, nlib, split, 0);
    test_cache(prog);
    test_garbage(prog, 1);
    fb_sym_test_disable_libdw(0);
    fb_sym_close();

    remove_tmp();
    return check_done(SYM_EXPECT_PIE ? "symbolize (PIE)" : "symbolize (non-PIE)");
}
