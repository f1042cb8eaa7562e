/*
 * Symbolisation for reports: code address -> function, file:line.
 *
 * Only used when a report is written (never inside malloc's hot paths).
 * The heavy machinery (elfutils' libdw, for DWARF line tables and symbol
 * tables of the ELF file) is dlopen()ed on first use, so programs that
 * never write a report never load it.  Without libdw, function names come
 * from the ELF symbol tables read directly, and file:line is omitted.
 *
 * Addresses are given as (module path, module-relative address) pairs
 * recorded when the stack was captured, so libraries that were dlclose()d
 * before the report are still symbolised from their file on disk.
 * "Module-relative" means ip - load bias (dl_iterate_phdr's dlpi_addr):
 * the address `addr2line -e <module>` expects, for PIE, non-PIE and shared
 * objects alike.
 *
 * May allocate (through malloc; callers set the recursion guard so those
 * allocations go to jemalloc untracked).  Not thread-safe: one report at a
 * time (callers serialise).
 */
#ifndef FB_SYMBOLIZE_H
#define FB_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>

struct fb_sym {
    char func[512];   /* demangled C++ name, or C name; "" if unknown */
    char file[512];   /* source file path; "" if unknown */
    int line;         /* 0 if unknown */
};

/* Prepares symbolisation (loads libdw if available).  Idempotent. */
void fb_sym_open(void);

/*
 * Symbolises one frame.  module: path of the ELF file (as recorded; "" for
 * the main program when the kernel gave no name: then /proc/self/exe).
 * addr: module-relative address of the instruction (for a return address,
 * the caller passes ra - 1 so the call instruction's line is found).
 * Always fills *out (empty strings when nothing is known).
 */
void fb_sym_lookup(const char *module, uintptr_t addr, struct fb_sym *out);

/*
 * The same frame with its inlined calls expanded, as addr2line -i does:
 * out[0] is the innermost inlined function at its own file:line, each
 * next one the function it was inlined into at the line of that call,
 * and the last the function the code belongs to (as fb_sym_lookup names
 * it).  Returns the number of frames written (1 when nothing was
 * inlined, or without DWARF), at most max.
 */
#define FB_SYM_MAX_INLINE 8
int fb_sym_lookup_inline(const char *module, uintptr_t addr, struct fb_sym *out,
                         int max);

/* Frees what fb_sym_open and lookups cached. */
void fb_sym_close(void);

/* Demangles an Itanium C++ name into buf; copies name unchanged if it is
 * not mangled or no demangler is available.  Returns buf. */
char *fb_sym_demangle(const char *name, char *buf, size_t cap);

/* FBMALLOC_DEBUGINFOD: non-zero lets libdw's debuginfod client fetch
 * missing debug information (set at start-up; ignored in setuid
 * programs, where only local files are read). */
extern int fb_sym_debuginfod;

#endif
