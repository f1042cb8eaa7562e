/*
 * Functions at known source lines for tests/unit/test_symbolize.c.
 *
 * Built with -g -O0 into the test programs (sym_prog.c, sym_prog_cxx.cpp)
 * and into a shared library the test dlopen()s (sym_lib.c,
 * sym_lib_cxx.cpp).  Each *_describe function reports where its functions
 * run and which source lines they span (from __LINE__ markers around
 * them), so the test never hard-codes line numbers.
 */
#ifndef SYM_TARGETS_H
#define SYM_TARGETS_H

#ifdef __cplusplus
extern "C" {
#endif

struct sym_target {
    const void *addr;   /* the function's entry, at run time */
    int first, last;    /* source lines spanned, markers included */
};

/* Test programs: [0] sym_prog_c (sym_prog.c), [1] static sym_prog_static
 * (sym_prog.c, only in .symtab), [2] ns::Klass::method(int)
 * (sym_prog_cxx.cpp). */
enum { SYM_PROG_TARGETS = 3 };
void sym_prog_describe(struct sym_target *t);
void sym_prog_cxx_describe(struct sym_target *t);

/* Library: [0] sym_lib_c (sym_lib.c), [1] static sym_lib_static
 * (sym_lib.c, only in .symtab), [2] symlib::Widget::poke(long)
 * (sym_lib_cxx.cpp). */
enum { SYM_LIB_TARGETS = 3 };
void sym_lib_describe(struct sym_target *t);
void sym_lib_cxx_describe(struct sym_target *t);

#ifdef __cplusplus
}
#endif
#endif
