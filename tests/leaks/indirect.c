/*
 * indirect.c -- a leaked struct pointing to other structs: the root is a
 * direct leak, everything reachable only through it is an indirect leak.
 *
 * EXPECT: direct 1 block, 48 bytes, from make_tree at @tree
 * EXPECT: indirect 4 blocks, 256 bytes, from make_leaf at @leaf
 * EXPECT: direct 1 block, 24 bytes, from make_list at @list-node
 * EXPECT: indirect 4 blocks, 96 bytes, from make_list at @list-node
 * Total: 4 leaks, 424 bytes in 10 blocks.  The tree: one 48-byte root
 * holding 4 pointers to 64-byte leaves.  The list: 5 nodes of 24 bytes
 * from ONE call site, the head direct and the 4 others indirect -- two
 * groups with the same stack, one per kind.
 */
#include <stdint.h>

#include "leaktest.h"

struct leaf { char data[64]; };
struct tree { struct leaf *leaves[4]; uint64_t pad[2]; };
struct node { struct node *next; uint64_t value; uint64_t pad; };

static LT_NOINLINE struct leaf *make_leaf(int i)
{
    struct leaf *l = malloc(sizeof *l); /* LEAK: leaf */
    memset(l, 'a' + i, sizeof *l);
    return l;
}

static void make_tree(void)
{
    struct tree *t = malloc(sizeof *t); /* LEAK: tree */
    memset(t, 0, sizeof *t);
    for (int i = 0; i < 4; i++)
        t->leaves[i] = make_leaf(i);
}

static void make_list(void)
{
    struct node *head = NULL;
    for (int i = 0; i < 5; i++) {
        struct node *n = malloc(sizeof *n); /* LEAK: list-node */
        n->next = head;
        n->value = (uint64_t)i;
        n->pad = 0;
        head = n;
    }
}

int main(void)
{
    lt_init();
    _Static_assert(sizeof(struct tree) == 48, "tree size");
    _Static_assert(sizeof(struct node) == 24, "node size");
    make_tree();
    make_list();
    lt_scrub_stack();
    return 0;
}
