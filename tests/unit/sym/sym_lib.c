/* Library side of the symbolisation targets (see sym_targets.h). */
#include "sym_targets.h"

int sym_lib_c(int x);

enum { SYM_LIB_C_FIRST = __LINE__ };
int sym_lib_c(int x)
{
    int y = x ^ 0x55;
    return y - 2;
}
enum { SYM_LIB_C_LAST = __LINE__ };

enum { SYM_LIB_STATIC_FIRST = __LINE__ };
static int sym_lib_static(int x)
{
    int y = x * x;
    return y + x;
}
enum { SYM_LIB_STATIC_LAST = __LINE__ };

void sym_lib_describe(struct sym_target *t)
{
    t[0].addr = (const void *)sym_lib_c;
    t[0].first = SYM_LIB_C_FIRST;
    t[0].last = SYM_LIB_C_LAST;
    t[1].addr = (const void *)sym_lib_static;
    t[1].first = SYM_LIB_STATIC_FIRST;
    t[1].last = SYM_LIB_STATIC_LAST;
    sym_lib_cxx_describe(&t[2]);
}
