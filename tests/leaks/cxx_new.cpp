/*
 * cxx_new.cpp -- C++ new and new[] leaks.  libfbmalloc defines operator
 * new itself, so frame #0 is the user function, with its demangled name.
 *
 * EXPECT: direct 1 block, 24 bytes, from make_node() at @new
 * EXPECT: direct 1 block, 400 bytes, from make_ints() at @new-array
 * EXPECT: direct 1 block, 168 bytes, from make_widgets() at @new-array-dtor
 * EXPECT: direct 2 blocks, 64 bytes, from Tree::grow(int) at @method
 * EXPECT: direct 1 block, 128 bytes, from make_aligned() at @aligned-new
 * EXPECT: direct 1 block, 24 bytes, from make_nothrow() at @nothrow-new
 * EXPECT: direct 1 block, 32 bytes, from make_string() at @string
 * EXPECT: indirect 1 block, 51 bytes, from make_string() at @string frame=any
 * Total: 8 leaks, 891 bytes in 9 blocks.  Node is 24 bytes; int[100] is
 * 400; Widget[10] (16-byte Widget with a destructor) is 160 + the 8-byte
 * array cookie = 168 requested from operator new[]; Tree::grow(int) leaks
 * two 32-byte Trees (called twice from one site); a 64-byte-aligned
 * 128-byte struct goes through operator new(size_t, align_val_t); a
 * nothrow new; a leaked std::string: the 32-byte object is direct, its
 * 51-byte buffer (50 chars + NUL, allocated by libstdc++ code below
 * make_string) indirect.
 */
#include <cstdint>
#include <cstring>
#include <new>
#include <string>

#include "leaktest.h"

struct Node { Node *next; std::uint64_t a, b; };

struct Widget {
    std::uint64_t x = 0, y = 0;
    ~Widget() { x = 1; }
};

struct Tree {
    std::uint64_t v[4];
    void grow(int n);
};

void Tree::grow(int n)
{
    Tree *t = new Tree(); /* LEAK: method */
    t->v[0] = static_cast<std::uint64_t>(n);
}

static void make_node()
{
    Node *n = new Node(); /* LEAK: new */
    n->a = 1;
}

static void make_ints()
{
    int *a = new int[100]; /* LEAK: new-array */
    std::memset(a, 0, 100 * sizeof(int));
}

static void make_widgets()
{
    Widget *w = new Widget[10]; /* LEAK: new-array-dtor */
    w[0].x = 2;
}

struct alignas(64) Aligned { char c[128]; };

static void make_aligned()
{
    Aligned *a = new Aligned(); /* LEAK: aligned-new */
    if (reinterpret_cast<std::uintptr_t>(a) % 64)
        std::abort();
}

static void make_nothrow()
{
    Node *n = new (std::nothrow) Node(); /* LEAK: nothrow-new */
    n->b = 3;
}

static void make_string()
{
    std::string *s = new std::string(50, 'x'); /* LEAK: string */
    (*s)[0] = 'y';
}

int main()
{
    lt_init();
    static_assert(sizeof(Node) == 24, "Node size");
    static_assert(sizeof(Widget) == 16, "Widget size");
    static_assert(sizeof(Tree) == 32, "Tree size");
    make_node();
    make_ints();
    make_widgets();
    Tree root{};
    for (int i = 0; i < 2; i++)
        root.grow(i);
    make_aligned();
    make_nothrow();
    make_string();
    Node *freed = new Node();
    delete freed;
    int *freed_array = new int[10];
    delete[] freed_array;
    lt_scrub_stack();
    return 0;
}
