/* Test-program side of the symbolisation targets (see sym_targets.h). */
#include "sym_targets.h"

int sym_prog_c(int x);

enum { SYM_PROG_C_FIRST = __LINE__ };
int sym_prog_c(int x)
{
    int y = x * 3;
    return y + 1;
}
enum { SYM_PROG_C_LAST = __LINE__ };

enum { SYM_PROG_STATIC_FIRST = __LINE__ };
static int sym_prog_static(int x)
{
    int y = x - 7;
    return y * y;
}
enum { SYM_PROG_STATIC_LAST = __LINE__ };

void sym_prog_describe(struct sym_target *t)
{
    t[0].addr = (const void *)sym_prog_c;
    t[0].first = SYM_PROG_C_FIRST;
    t[0].last = SYM_PROG_C_LAST;
    t[1].addr = (const void *)sym_prog_static;
    t[1].first = SYM_PROG_STATIC_FIRST;
    t[1].last = SYM_PROG_STATIC_LAST;
    sym_prog_cxx_describe(&t[2]);
}
