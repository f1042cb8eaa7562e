/*
 * Symbolisation for reports: (module path, module-relative address) ->
 * function, file:line.  See symbolize.h for the contract.
 *
 * Two sources, tried in order for each address:
 *
 *  1. elfutils' libdwfl, dlopen()ed on first use.  It is never linked: a
 *     program that writes no report must not load libdw (nor what libdw
 *     loads in turn, such as libdebuginfod).  Each module file gets its own
 *     offline Dwfl, so modules never share an address space and one bad
 *     file cannot spoil the others.  libdw gives the symbol (from the file
 *     or its separate debug file) and the file:line from DWARF, found in
 *     the file itself or through dwfl_standard_find_debuginfo (build-id
 *     under /usr/lib/debug/.build-id, or .gnu_debuglink).
 *
 *  2. Our own reader of the ELF symbol tables (.symtab, else .dynsym):
 *     function names only.  Used when libdw is missing or knows no
 *     function at the address.
 *
 * A report repeats the same frames many times, so everything is cached:
 * modules by path (the Dwfl, the mapped file and its sorted function
 * table), results by (module, address), and result strings interned once.
 *
 * This code runs only while a report is written (the callers hold the
 * recursion guard, so our mallocs go to jemalloc untracked), hence plain
 * libc (stdio, qsort, strdup) is fine here, unlike in the allocator.
 */
#define _GNU_SOURCE            /* secure_getenv */
#include "symbolize.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

/* Types and prototypes only (libdw-dev): every function is reached through
 * a pointer from dlsym, declared with __typeof__ so the compiler checks our
 * calls against the real prototypes. */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

#include "fb.h"

/* Test hook (tests/unit/test_symbolize.c): drops every cache and, while
 * disable is nonzero, behaves as if libdw were not installed, so the ELF
 * fallback can be tested on a machine that has libdw. */
void fb_sym_test_disable_libdw(int disable);

/* ---- libdw, loaded on demand ------------------------------------------ */

#define FB_SYM_DW_FN(name) __typeof__(name) *name

static struct {
    bool tried;          /* dlopen attempted (once per process) */
    bool ok;             /* every function below was found */
    void *handle;
    FB_SYM_DW_FN(dwfl_begin);
    FB_SYM_DW_FN(dwfl_end);
    FB_SYM_DW_FN(dwfl_report_offline);
    FB_SYM_DW_FN(dwfl_report_end);
    FB_SYM_DW_FN(dwfl_module_getelf);
    FB_SYM_DW_FN(dwfl_module_addrinfo);
    FB_SYM_DW_FN(dwfl_module_getsrc);
    FB_SYM_DW_FN(dwfl_lineinfo);
    FB_SYM_DW_FN(dwfl_line_comp_dir);
    FB_SYM_DW_FN(dwfl_build_id_find_elf);
    FB_SYM_DW_FN(dwfl_standard_find_debuginfo);
    FB_SYM_DW_FN(dwfl_build_id_find_debuginfo);
    FB_SYM_DW_FN(dwfl_offline_section_address);
    /* Inlined frames (optional: without them, one frame per address). */
    bool inline_ok;
    FB_SYM_DW_FN(dwfl_module_addrdie);
    FB_SYM_DW_FN(dwarf_getscopes);
    FB_SYM_DW_FN(dwarf_getscopes_die);
    FB_SYM_DW_FN(dwarf_tag);
    FB_SYM_DW_FN(dwarf_attr_integrate);
    FB_SYM_DW_FN(dwarf_formstring);
    FB_SYM_DW_FN(dwarf_formudata);
    FB_SYM_DW_FN(dwarf_diename);
    FB_SYM_DW_FN(dwarf_getsrcfiles);
    FB_SYM_DW_FN(dwarf_filesrc);
    Dwfl_Callbacks callbacks;
} fb_sym_dw;

static bool fb_sym_dw_disabled;   /* fb_sym_test_disable_libdw */

int fb_sym_debuginfod;

/* CRC-32 (the polynomial of .gnu_debuglink) of a whole file; -1 on error. */
static int64_t fb_sym_file_crc(int fd)
{
    uint32_t crc = 0xffffffffu;
    unsigned char buf[8192];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++) {
            crc ^= buf[i];
            for (int k = 0; k < 8; k++)
                crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
        }
    if (n < 0)
        return -1;
    return (int64_t)(crc ^ 0xffffffffu);
}

/*
 * The local half of dwfl_standard_find_debuginfo, without its debuginfod
 * fallback: the build-id tree (/usr/lib/debug/.build-id, also for dwz
 * alternate files), then the .gnu_debuglink name next to the file, in its
 * .debug directory and under /usr/lib/debug, checked against the link's
 * CRC (as gdb and libdw do).  Paths come from the module's own file only,
 * never from the environment.
 */
static int fb_sym_find_local_debuginfo(Dwfl_Module *mod, void **userdata,
                                       const char *modname, Dwarf_Addr base,
                                       const char *file_name,
                                       const char *debuglink_file,
                                       GElf_Word debuglink_crc,
                                       char **debuginfo_file_name)
{
    int fd = fb_sym_dw.dwfl_build_id_find_debuginfo(mod, userdata, modname, base,
                                                    file_name, debuglink_file,
                                                    debuglink_crc, debuginfo_file_name);
    if (fd >= 0 || !debuglink_file || !file_name || strchr(debuglink_file, '/'))
        return fd;
    const char *slash = strrchr(file_name, '/');
    int dirlen = slash ? (int)(slash - file_name) : 1;
    const char *dir = slash ? file_name : ".";
    static const char *const fmt[] = {"%.*s/%s", "%.*s/.debug/%s", "/usr/lib/debug%.*s/%s"};
    for (unsigned i = 0; i < sizeof fmt / sizeof fmt[0]; i++) {
        char path[PATH_MAX];
        if (i == 2 && dir[0] != '/')
            break;
        if (snprintf(path, sizeof path, fmt[i], dirlen, dir, debuglink_file) >=
                (int)sizeof path ||
            strcmp(path, file_name) == 0)
            continue;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (fb_sym_file_crc(fd) == (int64_t)debuglink_crc &&
            lseek(fd, 0, SEEK_SET) == 0 && (*debuginfo_file_name = strdup(path))) {
            return fd;
        }
        close(fd);
    }
    errno = ENOENT;
    return -1;
}

/* find_elf for offline modules, which never need it (and must not reach
 * debuginfod through dwfl_build_id_find_elf). */
static int fb_sym_find_no_elf(Dwfl_Module *mod, void **userdata, const char *modname,
                              Dwarf_Addr base, char **file_name, Elf **elfp)
{
    (void)mod;
    (void)userdata;
    (void)modname;
    (void)base;
    (void)file_name;
    *elfp = NULL;
    return -1;
}

static void fb_sym_dw_load(void)
{
    if (fb_sym_dw.tried)
        return;
    fb_sym_dw.tried = true;
    /* RTLD_LOCAL: libdw's symbols must not interpose on the program's. */
    void *h = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return;
    fb_sym_dw.handle = h;
    bool ok = true;
#define FB_SYM_DW_GET(name)                                                   \
    do {                                                                      \
        fb_sym_dw.name = (__typeof__(fb_sym_dw.name))dlsym(h, #name);         \
        ok = ok && fb_sym_dw.name != NULL;                                    \
    } while (0)
    FB_SYM_DW_GET(dwfl_begin);
    FB_SYM_DW_GET(dwfl_end);
    FB_SYM_DW_GET(dwfl_report_offline);
    FB_SYM_DW_GET(dwfl_report_end);
    FB_SYM_DW_GET(dwfl_module_getelf);
    FB_SYM_DW_GET(dwfl_module_addrinfo);
    FB_SYM_DW_GET(dwfl_module_getsrc);
    FB_SYM_DW_GET(dwfl_lineinfo);
    FB_SYM_DW_GET(dwfl_line_comp_dir);
    FB_SYM_DW_GET(dwfl_build_id_find_elf);
    FB_SYM_DW_GET(dwfl_standard_find_debuginfo);
    FB_SYM_DW_GET(dwfl_build_id_find_debuginfo);
    FB_SYM_DW_GET(dwfl_offline_section_address);
    if (!ok)
        return;   /* a libdw too old or too odd: use the ELF fallback */
    FB_SYM_DW_GET(dwfl_module_addrdie);
    FB_SYM_DW_GET(dwarf_getscopes);
    FB_SYM_DW_GET(dwarf_getscopes_die);
    FB_SYM_DW_GET(dwarf_tag);
    FB_SYM_DW_GET(dwarf_attr_integrate);
    FB_SYM_DW_GET(dwarf_formstring);
    FB_SYM_DW_GET(dwarf_formudata);
    FB_SYM_DW_GET(dwarf_diename);
    FB_SYM_DW_GET(dwarf_getsrcfiles);
    FB_SYM_DW_GET(dwarf_filesrc);
#undef FB_SYM_DW_GET
    fb_sym_dw.inline_ok = ok;
    ok = true;
    /* What eu-addr2line uses for files on disk.  find_elf is never needed
     * for offline modules (the file is opened when reported) but libdwfl
     * expects a valid callback.  debuginfo_path NULL is the default
     * ":.debug:/usr/lib/debug". */
    fb_sym_dw.callbacks.find_elf = fb_sym_dw.dwfl_build_id_find_elf;
    /* libdw's standard lookups end in its debuginfod client, which follows
     * DEBUGINFOD_URLS onto the network and creates and reads its cache at
     * DEBUGINFOD_CACHE_PATH: never in a setuid program (the user would
     * choose what root writes and parses), and otherwise only when the
     * user asks for it with FBMALLOC_DEBUGINFOD=1. */
    fb_sym_dw.callbacks.find_debuginfo =
        fb_sym_debuginfod && !getauxval(AT_SECURE) ? fb_sym_dw.dwfl_standard_find_debuginfo
                                                   : fb_sym_find_local_debuginfo;
    if (fb_sym_dw.callbacks.find_debuginfo == fb_sym_find_local_debuginfo)
        fb_sym_dw.callbacks.find_elf = fb_sym_find_no_elf;
    fb_sym_dw.callbacks.section_address = fb_sym_dw.dwfl_offline_section_address;
    fb_sym_dw.callbacks.debuginfo_path = NULL;
    fb_sym_dw.ok = true;
}

static bool fb_sym_dw_usable(void)
{
    return fb_sym_dw.ok && !fb_sym_dw_disabled;
}

/* ---- demangler, found on demand ----------------------------------------- */

typedef char *(*fb_sym_cxa_demangle_fn)(const char *, char *, size_t *, int *);

static fb_sym_cxa_demangle_fn fb_sym_demangler(void)
{
    static bool tried;
    static fb_sym_cxa_demangle_fn fn;
    if (tried)
        return fn;
    tried = true;
    /* A C++ program already has libstdc++ loaded; only C programs pay for
     * loading it (locally, so it cannot change their symbol bindings). */
    fn = (fb_sym_cxa_demangle_fn)dlsym(RTLD_DEFAULT, "__cxa_demangle");
    if (!fn) {
        void *h = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_LOCAL);
        if (h)
            fn = (fb_sym_cxa_demangle_fn)dlsym(h, "__cxa_demangle");
    }
    return fn;
}

static void fb_sym_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

char *fb_sym_demangle(const char *name, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return buf;
    if (!name)
        name = "";
    if (name[0] == '_' && name[1] == 'Z') {
        fb_sym_cxa_demangle_fn fn = fb_sym_demangler();
        if (fn) {
            int status = -1;
            char *d = fn(name, NULL, NULL, &status);
            if (d && status == 0) {
                fb_sym_copy(buf, cap, d);
                free(d);
                return buf;
            }
            free(d);
        }
    }
    fb_sym_copy(buf, cap, name);
    return buf;
}

/* ---- interned strings ---------------------------------------------------- */

/* Results keep pointers to interned copies: a report names the same few
 * hundred functions and files thousands of times. */
struct fb_sym_chunk {
    struct fb_sym_chunk *next;
    size_t used, cap;
    char mem[];
};

struct fb_sym_istr {
    uint64_t hash;
    const char *s;
};

static uint64_t fb_sym_hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;   /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static uint64_t fb_sym_hash_key(const void *mod, uintptr_t addr)
{
    uint64_t h = (uint64_t)(uintptr_t)mod * 0x9e3779b97f4a7c15ULL ^ addr;
    h ^= h >> 31;   /* splitmix64's finaliser */
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

/* ---- modules --------------------------------------------------------------- */

struct fb_sym_func {
    uint64_t start, end;     /* [start, end) in the file's address space */
    const char *name;        /* into the mapped file */
    uint8_t sized;           /* end came from st_size (else: section end) */
    uint8_t rank;            /* LOCAL 0 < WEAK 1 < GLOBAL 2, for aliases */
};

struct fb_sym_mod {
    struct fb_sym_mod *next;
    uint64_t hash;
    char *key;               /* the module string as given */
    char *path;              /* the file we open ("" -> the executable) */
    bool dw_tried, elf_tried;
    Dwfl *dwfl;              /* NULL: libdw unusable for this module */
    Dwfl_Module *dwmod;
    GElf_Addr dw_bias;       /* Dwfl address = file address + dw_bias */
    void *map;               /* the whole file, for the names */
    size_t map_len;
    struct fb_sym_func *funcs;
    size_t nfuncs;
    int disk_fd;             /* the on-disk cache, appended to; -1: none */
};

struct fb_sym_entry {
    const struct fb_sym_mod *mod;   /* NULL: empty slot */
    uintptr_t addr;
    const char *func, *file;        /* interned */
    int line;
    /* The frames of the address with its inlined calls, innermost first
     * (fb_sym_lookup_inline), once known: nchain of them, all present
     * when have == all bits of nchain. */
    uint8_t nchain, have;
    struct fb_sym *chain;
};

static struct {
    bool opened;
    struct fb_sym_mod *mods, *last;
    struct fb_sym_entry *cache;     /* open addressing, power of 2 */
    size_t cache_cap, cache_count;
    struct fb_sym_istr *strs;       /* open addressing, power of 2 */
    size_t strs_cap, strs_count;
    struct fb_sym_chunk *chunks;
} fb_sym;

static const char *fb_sym_arena_dup(const char *s, size_t len)
{
    struct fb_sym_chunk *c = fb_sym.chunks;
    if (!c || c->cap - c->used < len + 1) {
        size_t cap = len + 1 > 65536 ? len + 1 : 65536;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = fb_sym.chunks;
        fb_sym.chunks = c;
    }
    char *p = c->mem + c->used;
    memcpy(p, s, len + 1);
    c->used += len + 1;
    return p;
}

static bool fb_sym_strs_grow(void)
{
    size_t cap = fb_sym.strs_cap ? fb_sym.strs_cap * 2 : 256;
    struct fb_sym_istr *t = calloc(cap, sizeof *t);
    if (!t)
        return false;
    for (size_t i = 0; i < fb_sym.strs_cap; i++) {
        if (!fb_sym.strs[i].s)
            continue;
        size_t j = fb_sym.strs[i].hash & (cap - 1);
        while (t[j].s)
            j = (j + 1) & (cap - 1);
        t[j] = fb_sym.strs[i];
    }
    free(fb_sym.strs);
    fb_sym.strs = t;
    fb_sym.strs_cap = cap;
    return true;
}

/* Returns a copy of s that lives until fb_sym_close, or NULL (no memory). */
static const char *fb_sym_intern(const char *s)
{
    if (!*s)
        return "";
    if ((fb_sym.strs_count + 1) * 2 > fb_sym.strs_cap && !fb_sym_strs_grow())
        return NULL;
    uint64_t h = fb_sym_hash_str(s);
    size_t mask = fb_sym.strs_cap - 1, j = h & mask;
    for (; fb_sym.strs[j].s; j = (j + 1) & mask)
        if (fb_sym.strs[j].hash == h && strcmp(fb_sym.strs[j].s, s) == 0)
            return fb_sym.strs[j].s;
    const char *copy = fb_sym_arena_dup(s, strlen(s));
    if (!copy)
        return NULL;
    fb_sym.strs[j].hash = h;
    fb_sym.strs[j].s = copy;
    fb_sym.strs_count++;
    return copy;
}

/* The executable's real path when /proc/self/exe still names it: libdw
 * looks for a .gnu_debuglink file next to the binary and under
 * /usr/lib/debug/<its directory>, which /proc/self/exe would defeat.  When
 * the file was replaced or deleted, /proc/self/exe still opens the right
 * inode, so it is the fallback. */
static char *fb_sym_exe_path(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) {
        buf[n] = '\0';
        struct stat a, b;
        if (stat(buf, &a) == 0 && stat("/proc/self/exe", &b) == 0 &&
            a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            return strdup(buf);
    }
    return strdup("/proc/self/exe");
}

/* Whether path is a regular 64-bit executable or shared object of our
 * byte order.  Checked before libdw sees the file: a FIFO would block the
 * open, an ar archive would be reported member by member, and other junk
 * has no business reaching a parser. */
static bool fb_sym_is_elf(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size < (off_t)sizeof(Elf64_Ehdr))
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return false;
    Elf64_Ehdr eh;
    ssize_t n = pread(fd, &eh, sizeof eh, 0);
    close(fd);
    return n == (ssize_t)sizeof eh &&
           memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
           eh.e_ident[EI_CLASS] == ELFCLASS64 &&
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
           eh.e_ident[EI_DATA] == ELFDATA2LSB &&
#else
           eh.e_ident[EI_DATA] == ELFDATA2MSB &&
#endif
           (eh.e_type == ET_EXEC || eh.e_type == ET_DYN);
}

static void fb_sym_dw_attach(struct fb_sym_mod *m)
{
    m->dw_tried = true;
    /* Loaded at the first address no cache knows (dlopen costs ~1 ms). */
    if (!fb_sym_dw_disabled)
        fb_sym_dw_load();
    if (!fb_sym_dw_usable() || !fb_sym_is_elf(m->path))
        return;
    Dwfl *d = fb_sym_dw.dwfl_begin(&fb_sym_dw.callbacks);
    if (!d)
        return;
    Dwfl_Module *mod = fb_sym_dw.dwfl_report_offline(d, m->path, m->path, -1);
    GElf_Addr bias = 0;
    /* Offline reporting places an ET_DYN file at an address of libdwfl's
     * choosing (ET_EXEC stays where it was linked): the ELF bias converts
     * our file addresses (what addr2line takes) into that space. */
    if (!mod || fb_sym_dw.dwfl_report_end(d, NULL, NULL) != 0 ||
        !fb_sym_dw.dwfl_module_getelf(mod, &bias)) {
        fb_sym_dw.dwfl_end(d);
        return;
    }
    m->dwfl = d;
    m->dwmod = mod;
    m->dw_bias = bias;
}

static bool fb_sym_is_func(unsigned char info)
{
    return ELF64_ST_TYPE(info) == STT_FUNC ||
           ELF64_ST_TYPE(info) == STT_GNU_IFUNC;
}

/* Removes "dir/../" and "./" components in place ("/b/build/../src/x.c"
 * becomes "/b/src/x.c"), textually: good enough for report paths. */
static void fb_sym_normalize(char *path)
{
    char *out = path;
    for (const char *in = path; *in;) {
        if (in[0] == '/' && in[1] == '.' && in[2] == '/') {
            in += 2;
        } else if (in[0] == '/' && in[1] == '.' && in[2] == '.' &&
                   (in[3] == '/' || in[3] == '\0') && out > path) {
            while (out > path && *--out != '/')
                ;
            in += 3;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
}

/* libdw's answer for one address; leaves the outputs alone where it knows
 * nothing. */
static void fb_sym_dw_find(const struct fb_sym_mod *m, uintptr_t addr,
                           const char **func, const char **file, int *line)
{
    GElf_Addr a = (GElf_Addr)addr + m->dw_bias;
    GElf_Off off = 0;
    GElf_Sym sym;
    memset(&sym, 0, sizeof sym);
    const char *name = fb_sym_dw.dwfl_module_addrinfo(m->dwmod, a, &off, &sym,
                                                      NULL, NULL, NULL);
    /* Functions only: an address in data is garbage, not a frame. */
    if (name && *name && fb_sym_is_func(sym.st_info) &&
        (sym.st_size == 0 || off < sym.st_size))
        *func = name;
    Dwfl_Line *l = fb_sym_dw.dwfl_module_getsrc(m->dwmod, a);
    if (l) {
        Dwarf_Addr la = 0;
        int ln = 0;
        const char *src = fb_sym_dw.dwfl_lineinfo(l, &la, &ln, NULL, NULL, NULL);
        /* Line 0 is DWARF for "no source line" (compiler-made code). */
        if (src && *src && ln > 0) {
            /* A relative name (meson and make build from a build
             * directory: "../src/x.c") is relative to the compilation
             * directory; report the absolute path people can open. */
            const char *dir = src[0] == '/' ? NULL : fb_sym_dw.dwfl_line_comp_dir(l);
            if (dir && dir[0] == '/') {
                char joined[1024];
                snprintf(joined, sizeof joined, "%s/%s", dir, src);
                fb_sym_normalize(joined);
                const char *interned = fb_sym_intern(joined);
                if (interned)
                    src = interned;
            }
            *file = src;
            *line = ln;
        }
    }
}

/* ---- ELF symbol tables, the fallback -------------------------------------- */

static int fb_sym_func_cmp(const void *pa, const void *pb)
{
    const struct fb_sym_func *a = pa, *b = pb;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    /* Among aliases the preferred one sorts last, where the backward
     * search in fb_sym_elf_find meets it first. */
    if (a->sized != b->sized)
        return a->sized - b->sized;
    return a->rank - b->rank;
}

/* Whether [off, off + len) lies inside a file of size size. */
static bool fb_sym_in_file(uint64_t off, uint64_t len, size_t size)
{
    return off <= size && len <= size - off;
}

/* Collects the function symbols of section sec (a symbol table) into
 * m->funcs.  Every offset and index read from the file is bounds-checked:
 * the file may be truncated, corrupt or being rewritten. */
static void fb_sym_elf_collect(struct fb_sym_mod *m, const Elf64_Shdr *sh,
                               size_t shnum, const Elf64_Shdr *sec)
{
    const unsigned char *base = m->map;
    if (sec->sh_entsize != sizeof(Elf64_Sym) || sec->sh_link >= shnum ||
        sec->sh_offset % 8 ||
        !fb_sym_in_file(sec->sh_offset, sec->sh_size, m->map_len))
        return;
    const Elf64_Shdr *strsec = &sh[sec->sh_link];
    if (strsec->sh_type != SHT_STRTAB || strsec->sh_size == 0 ||
        !fb_sym_in_file(strsec->sh_offset, strsec->sh_size, m->map_len))
        return;
    const char *strtab = (const char *)base + strsec->sh_offset;
    size_t strsz = strsec->sh_size;
    bool terminated = strtab[strsz - 1] == '\0';
    const Elf64_Sym *syms = (const Elf64_Sym *)(base + sec->sh_offset);
    size_t nsyms = sec->sh_size / sizeof(Elf64_Sym);

    size_t n = 0;
    for (size_t i = 0; i < nsyms; i++)
        n += fb_sym_is_func(syms[i].st_info);
    if (n == 0)
        return;
    struct fb_sym_func *f = malloc(n * sizeof *f);
    if (!f)
        return;
    size_t k = 0;
    for (size_t i = 0; i < nsyms && k < n; i++) {
        const Elf64_Sym *s = &syms[i];
        if (!fb_sym_is_func(s->st_info) || s->st_shndx == SHN_UNDEF ||
            s->st_name == 0 || s->st_name >= strsz)
            continue;
        const char *name = strtab + s->st_name;
        if (!terminated && !memchr(name, '\0', strsz - s->st_name))
            continue;
        uint64_t end;
        if (s->st_size) {
            end = s->st_value + s->st_size;
        } else if (s->st_shndx < shnum && s->st_shndx < SHN_LORESERVE &&
                   s->st_value >= sh[s->st_shndx].sh_addr) {
            /* Sizeless (hand-written assembly): it may extend to the end
             * of its section, but fb_sym_elf_find also bounds it by the
             * next symbol. */
            end = sh[s->st_shndx].sh_addr + sh[s->st_shndx].sh_size;
        } else {
            end = s->st_value + 1;
        }
        if (end <= s->st_value)
            continue;   /* wraps around: corrupt */
        unsigned bind = ELF64_ST_BIND(s->st_info);
        f[k].start = s->st_value;
        f[k].end = end;
        f[k].name = name;
        f[k].sized = s->st_size != 0;
        f[k].rank = bind == STB_GLOBAL ? 2 : bind == STB_WEAK ? 1 : 0;
        k++;
    }
    if (k == 0) {
        free(f);
        return;
    }
    qsort(f, k, sizeof *f, fb_sym_func_cmp);
    m->funcs = f;
    m->nfuncs = k;
}

static void fb_sym_elf_load(struct fb_sym_mod *m)
{
    m->elf_tried = true;
    if (!fb_sym_is_elf(m->path))
        return;
    int fd = open(m->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return;
    struct stat st;
    void *map = MAP_FAILED;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        st.st_size >= (off_t)sizeof(Elf64_Ehdr))
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return;
    m->map = map;
    m->map_len = (size_t)st.st_size;

    /* fb_sym_is_elf checked the identification bytes on the same file; a
     * file rewritten since then at worst yields no or wrong names. */
    const Elf64_Ehdr *eh = map;
    if (eh->e_shoff == 0 || eh->e_shoff % 8 ||
        eh->e_shentsize != sizeof(Elf64_Shdr) ||
        !fb_sym_in_file(eh->e_shoff, sizeof(Elf64_Shdr), m->map_len))
        return;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)((char *)map + eh->e_shoff);
    /* More than SHN_LORESERVE sections: the count is in section 0. */
    uint64_t shnum = eh->e_shnum ? eh->e_shnum : sh[0].sh_size;
    if (shnum == 0 || shnum > (m->map_len - eh->e_shoff) / sizeof(Elf64_Shdr))
        return;
    /* .symtab has the local (static) functions too; stripped files keep
     * only .dynsym, the exported ones. */
    for (uint32_t type = SHT_SYMTAB; ; type = SHT_DYNSYM) {
        for (size_t i = 0; i < shnum && !m->funcs; i++)
            if (sh[i].sh_type == type)
                fb_sym_elf_collect(m, sh, shnum, &sh[i]);
        if (m->funcs || type == SHT_DYNSYM)
            break;
    }
    if (!m->funcs) {
        munmap(m->map, m->map_len);
        m->map = NULL;
        m->map_len = 0;
    }
}

/* The function containing addr (a file address), or NULL. */
static const char *fb_sym_elf_find(const struct fb_sym_mod *m, uint64_t addr)
{
    const struct fb_sym_func *f = m->funcs;
    size_t lo = 0, hi = m->nfuncs;
    while (lo < hi) {   /* first symbol starting after addr */
        size_t mid = lo + (hi - lo) / 2;
        if (f[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Walk back: the nearest sized symbol containing addr wins.  A
     * sizeless symbol counts only if no symbol lies between it and addr
     * (it ends where the next one starts).  A few steps suffice: functions
     * do not nest, only aliases and local labels share ranges. */
    const char *sizeless = NULL;
    bool blocked = false;
    for (size_t i = lo, steps = 0; i-- > 0 && steps < 64; steps++) {
        if (addr < f[i].end) {
            if (f[i].sized)
                return f[i].name;
            if (!blocked && !sizeless)
                sizeless = f[i].name;
        } else {
            blocked = true;
        }
    }
    return sizeless;
}

/* ---- inlined calls, as addr2line -i ---------------------------------------- */

/*
 * One address of optimised code may be several frames: the innermost
 * inlined function, the functions it was inlined into, and finally the
 * function the code belongs to.  From the DWARF scopes at the address
 * (innermost first): each DW_TAG_inlined_subroutine is a frame named
 * after its abstract origin (the linkage name, demangled, else the plain
 * name), at the line the line table gives for the innermost one and, for
 * each outer one, at the call site (DW_AT_call_file/call_line) of the
 * frame it inlined; the enclosing DW_TAG_subprogram ends the chain, named
 * as fb_sym_lookup names it.  Without libdw's scope functions or DWARF the
 * chain is the single frame fb_sym_lookup gives.
 */
static const char *fb_sym_die_name(Dwarf_Die *die, char *buf, size_t cap)
{
    Dwarf_Attribute at;
    const char *n = NULL;
    if (fb_sym_dw.dwarf_attr_integrate(die, DW_AT_linkage_name, &at) ||
        fb_sym_dw.dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &at))
        n = fb_sym_dw.dwarf_formstring(&at);
    if (!n)
        n = fb_sym_dw.dwarf_diename(die);
    if (!n)
        return NULL;
    return fb_sym_demangle(n, buf, cap);
}

/* The source file of index idx in cu's file table, absolute when the CU
 * has an absolute compilation directory; NULL if unknown. */
static const char *fb_sym_cu_file(Dwarf_Die *cu, Dwarf_Word idx)
{
    Dwarf_Files *files = NULL;
    size_t nfiles = 0;
    if (fb_sym_dw.dwarf_getsrcfiles(cu, &files, &nfiles) != 0 || idx >= nfiles)
        return NULL;
    const char *src = fb_sym_dw.dwarf_filesrc(files, idx, NULL, NULL);
    if (!src || !*src)
        return NULL;
    if (src[0] != '/') {
        Dwarf_Attribute at;
        const char *dir = fb_sym_dw.dwarf_attr_integrate(cu, DW_AT_comp_dir, &at)
                              ? fb_sym_dw.dwarf_formstring(&at)
                              : NULL;
        if (dir && dir[0] == '/') {
            char joined[1024];
            snprintf(joined, sizeof joined, "%s/%s", dir, src);
            fb_sym_normalize(joined);
            return fb_sym_intern(joined);
        }
    }
    return fb_sym_intern(src);
}

/* The chain at addr (innermost first) into out; base is fb_sym_lookup's
 * answer.  Returns the number of frames, 0 if DWARF says nothing. */
static int fb_sym_dw_chain(const struct fb_sym_mod *m, uintptr_t addr,
                           const struct fb_sym *base, struct fb_sym *out, int max)
{
    if (!m->dwfl || !fb_sym_dw.inline_ok)
        return 0;
    Dwarf_Addr a = (Dwarf_Addr)addr + m->dw_bias, cubias = 0;
    Dwarf_Die *cu = fb_sym_dw.dwfl_module_addrdie(m->dwmod, a, &cubias);
    if (!cu)
        return 0;
    /* The scopes at the address lead to the innermost function instance
     * (inlined or not); its chain of containing DIEs in the concrete tree
     * then holds each function it was inlined into (as eu-addr2line -i:
     * past an inlined instance, dwarf_getscopes goes on into the inlined
     * function's abstract definition, not into its caller). */
    Dwarf_Die *at_pc = NULL, *scopes = NULL;
    int npc = fb_sym_dw.dwarf_getscopes(cu, a - cubias, &at_pc);
    int ns = 0;
    for (int i = 0; i < npc; i++) {
        int tag = fb_sym_dw.dwarf_tag(&at_pc[i]);
        if (tag == DW_TAG_inlined_subroutine || tag == DW_TAG_subprogram) {
            ns = fb_sym_dw.dwarf_getscopes_die(&at_pc[i], &scopes);
            break;
        }
    }
    free(at_pc);
    int n = 0, ended = 0;
    const char *file = base->file;
    int line = base->line;
    for (int i = 0; i < ns && n < max; i++) {
        int tag = fb_sym_dw.dwarf_tag(&scopes[i]);
        if (tag == DW_TAG_subprogram) {
            out[n] = *base;
            fb_sym_copy(out[n].file, sizeof out[n].file, file ? file : "");
            out[n].line = file && *file ? line : 0;
            n++;
            ended = 1;
            break;
        }
        if (tag != DW_TAG_inlined_subroutine)
            continue;
        const char *name = fb_sym_die_name(&scopes[i], out[n].func, sizeof out[n].func);
        if (!name)
            out[n].func[0] = '\0';
        fb_sym_copy(out[n].file, sizeof out[n].file, file ? file : "");
        out[n].line = file && *file ? line : 0;
        n++;
        /* The next frame is where this one was inlined. */
        Dwarf_Attribute at;
        Dwarf_Word cf = 0, cl = 0;
        file = NULL;
        line = 0;
        if (fb_sym_dw.dwarf_attr_integrate(&scopes[i], DW_AT_call_file, &at) &&
            fb_sym_dw.dwarf_formudata(&at, &cf) == 0)
            file = fb_sym_cu_file(cu, cf);
        if (fb_sym_dw.dwarf_attr_integrate(&scopes[i], DW_AT_call_line, &at) &&
            fb_sym_dw.dwarf_formudata(&at, &cl) == 0)
            line = (int)cl;
    }
    free(scopes);
    /* Only inlined scopes, no enclosing subprogram: the function itself
     * at the last call site ends the chain. */
    if (n > 0 && !ended && n < max) {
        out[n] = *base;
        fb_sym_copy(out[n].file, sizeof out[n].file, file ? file : "");
        out[n].line = file && *file ? line : 0;
        n++;
    }
    return n;
}

/* ---- results on disk, per build id ------------------------------------- */

/*
 * A build or a test suite starts thousands of processes that report leaks
 * through the same libraries: libc's first file:line alone costs ~130 ms
 * (its separate debug file's compressed DWARF is inflated), every time.
 * So results are also kept on disk, one file per ELF build id under
 * $XDG_CACHE_HOME/fbmalloc (else ~/.cache/fbmalloc), one line per address:
 *     <hex module address> TAB <function> TAB <file> TAB <line>
 * A build id names the file's exact contents, so an entry can never be
 * stale; a file without one is not cached.  The whole file is read when
 * its module is first met, misses are appended with one write() each
 * (O_APPEND: concurrent processes interleave whole lines).  Nothing here
 * is needed for correctness: any failure just means no cache.  Not in
 * setuid processes (secure_getenv), and the test hook turns it off.
 */
static bool fb_sym_disk_disabled;

static bool fb_sym_cache_dir(char *buf, size_t cap)
{
    if (fb_sym_disk_disabled)
        return false;
    const char *xdg = secure_getenv("XDG_CACHE_HOME");
    const char *home = secure_getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(buf, cap, "%s/fbmalloc", xdg);
    else if (home && home[0] == '/')
        n = snprintf(buf, cap, "%s/.cache/fbmalloc", home);
    else
        return false;
    if (n <= 0 || (size_t)n >= cap)
        return false;
    /* mkdir -p of the last two components. */
    char *slash = strrchr(buf, '/');
    *slash = '\0';
    mkdir(buf, 0700);
    *slash = '/';
    return mkdir(buf, 0700) == 0 || errno == EEXIST;
}

/* The GNU build id of the ELF file at path, in hex; false if none. */
static bool fb_sym_build_id(const char *path, char *hex, size_t cap)
{
    if (!fb_sym_is_elf(path))
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return false;
    bool found = false;
    Elf64_Ehdr eh;
    if (pread(fd, &eh, sizeof eh, 0) == (ssize_t)sizeof eh &&
        eh.e_phentsize == sizeof(Elf64_Phdr) && eh.e_phnum < 256) {
        Elf64_Phdr ph[256];
        size_t len = eh.e_phnum * sizeof(Elf64_Phdr);
        if (pread(fd, ph, len, (off_t)eh.e_phoff) == (ssize_t)len) {
            for (unsigned i = 0; i < eh.e_phnum && !found; i++) {
                if (ph[i].p_type != PT_NOTE || ph[i].p_filesz > 65536)
                    continue;
                unsigned char note[65536];
                ssize_t got = pread(fd, note, ph[i].p_filesz, (off_t)ph[i].p_offset);
                for (size_t at = 0; got > 0 && at + 12 <= (size_t)got && !found;) {
                    uint32_t nsz, dsz, type;
                    memcpy(&nsz, note + at, 4);
                    memcpy(&dsz, note + at + 4, 4);
                    memcpy(&type, note + at + 8, 4);
                    size_t name = at + 12, desc = name + ((nsz + 3) & ~3u);
                    size_t next = desc + ((dsz + 3) & ~3u);
                    if (next > (size_t)got || next <= at)
                        break;
                    if (type == NT_GNU_BUILD_ID && nsz == 4 &&
                        memcmp(note + name, "GNU", 4) == 0 && dsz &&
                        dsz * 2 < cap) {
                        for (uint32_t k = 0; k < dsz; k++)
                            snprintf(hex + 2 * k, 3, "%02x", note[desc + k]);
                        found = true;
                    }
                    at = next;
                }
            }
        }
    }
    close(fd);
    return found;
}

static void fb_sym_cache_put(const struct fb_sym_mod *m, uintptr_t addr,
                             const struct fb_sym *s);
static struct fb_sym_entry *fb_sym_cache_slot(const struct fb_sym_mod *m,
                                              uintptr_t addr);

/* Frame k of the n-frame chain at addr, from a "/n/k" line. */
static void fb_sym_chain_put(const struct fb_sym_mod *m, uintptr_t addr,
                             const char *nk, const struct fb_sym *s)
{
    unsigned n = 0, k = 0;
    if (sscanf(nk, "/%u/%u", &n, &k) != 2 || n == 0 || n > FB_SYM_MAX_INLINE ||
        k >= n || !fb_sym.cache_cap)
        return;
    struct fb_sym_entry *e = fb_sym_cache_slot(m, addr);
    if (!e->mod)
        return;        /* its own line comes first */
    if (!e->chain) {
        e->chain = calloc(n, sizeof *e->chain);
        if (!e->chain)
            return;
        e->nchain = (uint8_t)n;
    }
    if (e->nchain != n)
        return;
    e->chain[k] = *s;
    e->have |= (uint8_t)(1u << k);
}

/* Loads m's cached results and opens its file for appending. */
static void fb_sym_disk_open(struct fb_sym_mod *m)
{
    m->disk_fd = -1;
    char dir[PATH_MAX], id[130], path[PATH_MAX + 140];
    if (!fb_sym_cache_dir(dir, sizeof dir) || !fb_sym_build_id(m->path, id, sizeof id))
        return;
    snprintf(path, sizeof path, "%s/%s.sym", dir, id);
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (16 << 20)) {
        close(fd);
        return;
    }
    char *text = st.st_size ? malloc((size_t)st.st_size + 1) : NULL;
    ssize_t n = text ? pread(fd, text, (size_t)st.st_size, 0) : 0;
    for (char *line = text; text && n > 0 && line < text + n;) {
        char *nl = memchr(line, '\n', (size_t)(text + n - line));
        if (!nl)
            break;             /* a line being written: not yet */
        *nl = '\0';
        char *f[4] = {line, NULL, NULL, NULL};
        for (int k = 1; k < 4 && f[k - 1]; k++) {
            char *tab = strchr(f[k - 1], '\t');
            if (tab) {
                *tab = '\0';
                f[k] = tab + 1;
            }
        }
        if (f[3]) {
            struct fb_sym s;
            fb_sym_copy(s.func, sizeof s.func, f[1]);
            fb_sym_copy(s.file, sizeof s.file, f[2]);
            s.line = atoi(f[3]);
            char *rest;
            uintptr_t addr = (uintptr_t)strtoull(f[0], &rest, 16);
            if (*rest == '/')
                fb_sym_chain_put(m, addr, rest, &s);   /* "/n/k" */
            else
                fb_sym_cache_put(m, addr, &s);
        }
        line = nl + 1;
    }
    free(text);
    m->disk_fd = fd;
}

/* Appends one result (never one with a tab or newline in it): frame k
 * of an n-frame chain when n > 0.  Only what libdw could answer: without
 * it, a missing file:line must not be remembered. */
static void fb_sym_disk_put(const struct fb_sym_mod *m, uintptr_t addr,
                            const struct fb_sym *s, int n, int k)
{
    if (m->disk_fd < 0 || !fb_sym_dw_usable() || strpbrk(s->func, "\t\n") ||
        strpbrk(s->file, "\t\n"))
        return;
    char line[1200], nk[32] = "";
    if (n > 0)
        snprintf(nk, sizeof nk, "/%d/%d", n, k);
    int len = snprintf(line, sizeof line, "%lx%s\t%s\t%s\t%d\n", (unsigned long)addr,
                       nk, s->func, s->file, s->line);
    if (len > 0 && (size_t)len < sizeof line && write(m->disk_fd, line, (size_t)len) < 0)
        return;   /* best effort */
}

/* ---- caches ---------------------------------------------------------------- */

static struct fb_sym_mod *fb_sym_module(const char *key)
{
    uint64_t h = fb_sym_hash_str(key);
    /* Consecutive frames are usually in the same module. */
    if (fb_sym.last && fb_sym.last->hash == h && !strcmp(fb_sym.last->key, key))
        return fb_sym.last;
    for (struct fb_sym_mod *m = fb_sym.mods; m; m = m->next)
        if (m->hash == h && strcmp(m->key, key) == 0)
            return fb_sym.last = m;
    struct fb_sym_mod *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->hash = h;
    m->key = strdup(key);
    m->path = *key ? strdup(key) : fb_sym_exe_path();
    if (!m->key || !m->path) {
        free(m->key);
        free(m->path);
        free(m);
        return NULL;
    }
    m->next = fb_sym.mods;
    fb_sym.mods = m;
    fb_sym_disk_open(m);
    return fb_sym.last = m;
}

static void fb_sym_module_free(struct fb_sym_mod *m)
{
    if (m->dwfl)
        fb_sym_dw.dwfl_end(m->dwfl);
    if (m->map)
        munmap(m->map, m->map_len);
    if (m->disk_fd >= 0)
        close(m->disk_fd);
    free(m->funcs);
    free(m->key);
    free(m->path);
    free(m);
}

static struct fb_sym_entry *fb_sym_cache_slot(const struct fb_sym_mod *m,
                                              uintptr_t addr)
{
    size_t mask = fb_sym.cache_cap - 1;
    size_t j = fb_sym_hash_key(m, addr) & mask;
    while (fb_sym.cache[j].mod &&
           (fb_sym.cache[j].mod != m || fb_sym.cache[j].addr != addr))
        j = (j + 1) & mask;
    return &fb_sym.cache[j];
}

static bool fb_sym_cache_grow(void)
{
    size_t old_cap = fb_sym.cache_cap;
    struct fb_sym_entry *old = fb_sym.cache;
    size_t cap = old_cap ? old_cap * 2 : 1024;
    struct fb_sym_entry *t = calloc(cap, sizeof *t);
    if (!t)
        return false;
    fb_sym.cache = t;
    fb_sym.cache_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].mod)
            *fb_sym_cache_slot(old[i].mod, old[i].addr) = old[i];
    free(old);
    return true;
}

static void fb_sym_cache_put(const struct fb_sym_mod *m, uintptr_t addr,
                             const struct fb_sym *s)
{
    if ((fb_sym.cache_count + 1) * 2 > fb_sym.cache_cap && !fb_sym_cache_grow())
        return;   /* no memory: just not cached */
    const char *func = fb_sym_intern(s->func);
    const char *file = fb_sym_intern(s->file);
    if (!func || !file)
        return;
    struct fb_sym_entry *e = fb_sym_cache_slot(m, addr);
    e->mod = m;
    e->addr = addr;
    e->func = func;
    e->file = file;
    e->line = s->line;
    fb_sym.cache_count++;
}

/* ---- interface ----------------------------------------------------------- */

void fb_sym_open(void)
{
    if (fb_sym.opened)
        return;
    fb_sym.opened = true;
}

void fb_sym_lookup(const char *module, uintptr_t addr, struct fb_sym *out)
{
    if (!out)
        return;
    out->func[0] = out->file[0] = '\0';
    out->line = 0;
    int saved = errno;
    fb_sym_open();
    struct fb_sym_mod *m = fb_sym_module(module ? module : "");
    if (!m) {
        errno = saved;
        return;
    }
    if (fb_sym.cache_cap) {
        const struct fb_sym_entry *e = fb_sym_cache_slot(m, addr);
        if (e->mod) {
            fb_sym_copy(out->func, sizeof out->func, e->func);
            fb_sym_copy(out->file, sizeof out->file, e->file);
            out->line = e->line;
            errno = saved;
            return;
        }
    }

    const char *func = NULL, *file = NULL;
    int line = 0;
    if (!m->dw_tried)
        fb_sym_dw_attach(m);
    if (m->dwfl)
        fb_sym_dw_find(m, addr, &func, &file, &line);
    if (!func) {
        if (!m->elf_tried)
            fb_sym_elf_load(m);
        if (m->nfuncs)
            func = fb_sym_elf_find(m, addr);
    }
    if (func)
        fb_sym_demangle(func, out->func, sizeof out->func);
    if (file) {
        fb_sym_copy(out->file, sizeof out->file, file);
        out->line = line;
    }
    fb_sym_cache_put(m, addr, out);
    fb_sym_disk_put(m, addr, out, 0, 0);
    errno = saved;
}

int fb_sym_lookup_inline(const char *module, uintptr_t addr, struct fb_sym *out,
                         int max)
{
    if (!out || max <= 0)
        return 0;
    fb_sym_lookup(module, addr, &out[0]);
    if (max == 1)
        return 1;
    int saved = errno;
    struct fb_sym_mod *m = fb_sym_module(module ? module : "");
    struct fb_sym_entry *e = m && fb_sym.cache_cap ? fb_sym_cache_slot(m, addr) : NULL;
    if (e && !e->mod)
        e = NULL;
    if (e && e->chain && e->have == (uint8_t)((1u << e->nchain) - 1)) {
        int n = e->nchain < max ? e->nchain : max;
        memcpy(out, e->chain, (size_t)n * sizeof *out);
        errno = saved;
        return n;
    }
    struct fb_sym base = out[0];
    struct fb_sym chain[FB_SYM_MAX_INLINE];
    int n = 0;
    if (m) {
        if (!m->dw_tried)
            fb_sym_dw_attach(m);   /* the base may have come from a cache */
        n = fb_sym_dw_chain(m, addr, &base, chain, FB_SYM_MAX_INLINE);
    }
    if (n <= 0) {
        chain[0] = base;
        n = 1;
    }
    if (e && !e->chain && (e->chain = malloc((size_t)n * sizeof *e->chain))) {
        memcpy(e->chain, chain, (size_t)n * sizeof *chain);
        e->nchain = (uint8_t)n;
        e->have = (uint8_t)((1u << n) - 1);
    }
    for (int k = 0; m && k < n; k++)
        fb_sym_disk_put(m, addr, &chain[k], n, k);
    n = n < max ? n : max;
    memcpy(out, chain, (size_t)n * sizeof *out);
    errno = saved;
    return n;
}

void fb_sym_close(void)
{
    while (fb_sym.mods) {
        struct fb_sym_mod *m = fb_sym.mods;
        fb_sym.mods = m->next;
        fb_sym_module_free(m);
    }
    while (fb_sym.chunks) {
        struct fb_sym_chunk *c = fb_sym.chunks;
        fb_sym.chunks = c->next;
        free(c);
    }
    for (size_t i = 0; i < fb_sym.cache_cap; i++)
        free(fb_sym.cache[i].chain);
    free(fb_sym.cache);
    free(fb_sym.strs);
    /* libdw and libstdc++ stay loaded: unloading them at exit gains
     * nothing, libdw has itself dlopen()ed libdebuginfod (which it never
     * unloads), and a later fb_sym_open then costs nothing. */
    memset(&fb_sym, 0, sizeof fb_sym);
}

void fb_sym_test_disable_libdw(int disable)
{
    fb_sym_close();
    fb_sym_dw_disabled = disable != 0;
    fb_sym_disk_disabled = disable != 0;
}
