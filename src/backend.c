/*
 * jemalloc: finding its real entry points; statistics and purging (for
 * mallinfo, malloc_trim and our own report).
 */
#define _GNU_SOURCE
#include "backend.h"

#include <link.h>
#include <sys/auxv.h>
#include <string.h>

struct fb_je_fns fb_je;
/* Before fb_je_mark_init (frees during start-up): any constant but 0. */
uint64_t fb_je_mark = 0xfb0dead0fb0dead1ull;

struct fb_je_foreign_ranges fb_je_foreign_r;
extern void *__libc_stack_end;

/* The executable's image, from its program headers (the auxiliary vector:
 * no lock, no allocation). */
static void find_exe_range(void)
{
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)getauxval(AT_PHDR);
    unsigned long n = getauxval(AT_PHNUM);
    uintptr_t bias = 0, lo = UINTPTR_MAX, hi = 0;
    if (!ph)
        return;
    for (unsigned long i = 0; i < n; i++)
        if (ph[i].p_type == PT_PHDR)
            bias = (uintptr_t)ph - ph[i].p_vaddr;
    for (unsigned long i = 0; i < n; i++)
        if (ph[i].p_type == PT_LOAD) {
            uintptr_t a = bias + ph[i].p_vaddr;
            if (a < lo)
                lo = a;
            if (a + ph[i].p_memsz > hi)
                hi = a + ph[i].p_memsz;
        }
    if (hi > lo) {
        fb_je_foreign_r.exe_lo = lo;
        fb_je_foreign_r.exe_len = hi - lo;
    }
}

void fb_je_mark_init(void)
{
    find_exe_range();
    uintptr_t top = (uintptr_t)__libc_stack_end, span = (uintptr_t)32 << 20;
    if (top > span) {
        fb_je_foreign_r.stack_lo = top - span;
        fb_je_foreign_r.stack_len = span;
    }
    /* The kernel's 16 random bytes for this process (no system call, no
     * allocation); a program cannot forge the mark by accident. */
    const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
    uint64_t v = 0;
    if (r)
        memcpy(&v, r + 8, sizeof v);
    v ^= 0xfb0dead0fb0dead1ull;
    fb_je_mark = v ? v : 1;
}

/* ld.so relocates the d_ptr entries of .dynamic in place on x86-64; be
 * robust to a loader that does not. */
static uintptr_t dyn_ptr(uintptr_t v, uintptr_t base)
{
    return v < base ? v + base : v;
}

/* Looks name up through the object's GNU hash table (the standard
 * algorithm of the ELF gABI extension: bucket, then the chain). */
static void *gnu_lookup(uintptr_t base, const ElfW(Sym) *symtab,
                        const char *strtab, const uint32_t *gnu_hash,
                        const char *name)
{
    uint32_t nbuckets = gnu_hash[0], symoffset = gnu_hash[1];
    uint32_t bloom_size = gnu_hash[2];
    const ElfW(Addr) *bloom = (const ElfW(Addr) *)(gnu_hash + 4);
    const uint32_t *buckets = (const uint32_t *)(bloom + bloom_size);
    const uint32_t *chain = buckets + nbuckets;
    uint32_t h = 5381;
    for (const char *c = name; *c; c++)
        h = h * 33 + (unsigned char)*c;
    if (nbuckets == 0)
        return NULL;
    uint32_t i = buckets[h % nbuckets];
    if (i < symoffset)
        return NULL;
    for (;; i++) {
        uint32_t h2 = chain[i - symoffset];
        const ElfW(Sym) *s = &symtab[i];
        if ((h | 1) == (h2 | 1) && s->st_value && s->st_shndx != SHN_UNDEF &&
            strcmp(strtab + s->st_name, name) == 0)
            return (void *)(base + s->st_value);
        if (h2 & 1)
            return NULL;
    }
}

static int find_jemalloc(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libjemalloc"))
        return 0;
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const uint32_t *gnu_hash = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type != PT_DYNAMIC)
            continue;
        const ElfW(Dyn) *d = (const ElfW(Dyn) *)(info->dlpi_addr +
                                                 info->dlpi_phdr[i].p_vaddr);
        for (; d->d_tag != DT_NULL; d++) {
            uintptr_t v = dyn_ptr(d->d_un.d_ptr, info->dlpi_addr);
            if (d->d_tag == DT_SYMTAB)
                symtab = (const ElfW(Sym) *)v;
            else if (d->d_tag == DT_STRTAB)
                strtab = (const char *)v;
            else if (d->d_tag == DT_GNU_HASH)
                gnu_hash = (const uint32_t *)v;
        }
    }
    if (!symtab || !strtab || !gnu_hash)
        return 1;
    uintptr_t base = info->dlpi_addr;
    void *m = gnu_lookup(base, symtab, strtab, gnu_hash, "malloc");
    void *f = gnu_lookup(base, symtab, strtab, gnu_hash, "free");
    void *c = gnu_lookup(base, symtab, strtab, gnu_hash, "calloc");
    void *r = gnu_lookup(base, symtab, strtab, gnu_hash, "realloc");
    /* All or nothing: a block must be freed by the family that made it,
     * and both families here are jemalloc's. */
    if (m && f && c && r) {
        fb_je.malloc = (void *(*)(size_t))m;
        fb_je.free = (void (*)(void *))f;
        fb_je.calloc = (void *(*)(size_t, size_t))c;
        fb_je.realloc = (void *(*)(void *, size_t))r;
    }
    return 1;
}

void fb_je_resolve(void)
{
    dl_iterate_phdr(find_jemalloc, NULL);
}

static size_t read_stat(const char *name)
{
    size_t v = 0, len = sizeof v;
    if (mallctl(name, &v, &len, NULL, 0) != 0)
        return 0;
    return v;
}

void fb_je_info(struct fb_je_info *out)
{
    /* Statistics are cached per "epoch" in jemalloc; bump it to refresh. */
    uint64_t epoch = 1;
    size_t len = sizeof epoch;
    mallctl("epoch", &epoch, &len, &epoch, len);
    out->allocated = read_stat("stats.allocated");
    out->active = read_stat("stats.active");
    out->resident = read_stat("stats.resident");
    out->mapped = read_stat("stats.mapped");
}

int fb_je_trim(void)
{
    char name[64];
    /* MALLCTL_ARENAS_ALL: purge every arena. */
    memset(name, 0, sizeof name);
    strcpy(name, "arena.4096.purge");
    return mallctl(name, NULL, NULL, NULL, 0) == 0;
}
