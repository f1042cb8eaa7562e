// Test-program side, C++: a mangled name (see sym_targets.h).
#include "sym_targets.h"

namespace ns {
struct Klass {
    static int method(int v);
};

enum { SYM_PROG_CXX_FIRST = __LINE__ };
int Klass::method(int v)
{
    int w = v + 11;
    return w * 2;
}
enum { SYM_PROG_CXX_LAST = __LINE__ };
}  // namespace ns

extern "C" void sym_prog_cxx_describe(struct sym_target *t)
{
    t->addr = reinterpret_cast<const void *>(&ns::Klass::method);
    t->first = ns::SYM_PROG_CXX_FIRST;
    t->last = ns::SYM_PROG_CXX_LAST;
}
