// Library side, C++: a mangled name (see sym_targets.h).
#include "sym_targets.h"

namespace symlib {
struct Widget {
    static long poke(long v);
};

enum { SYM_LIB_CXX_FIRST = __LINE__ };
long Widget::poke(long v)
{
    long w = v << 2;
    return w ^ 5;
}
enum { SYM_LIB_CXX_LAST = __LINE__ };
}  // namespace symlib

extern "C" void sym_lib_cxx_describe(struct sym_target *t)
{
    t->addr = reinterpret_cast<const void *>(&symlib::Widget::poke);
    t->first = symlib::SYM_LIB_CXX_FIRST;
    t->last = symlib::SYM_LIB_CXX_LAST;
}
