/*
 * globals.c -- clean: blocks still pointed to by globals at exit are still
 * reachable, not leaks.  With FBMALLOC_LEAKS=all they are listed as
 * "still reachable" groups.
 *
 * EXPECT: no leaks
 * EXPECT(all): reachable 1 block, 1,000 bytes, from set_globals at @global-ptr
 * EXPECT(all): reachable 1 block, 48 bytes, from set_globals at @static-local
 * EXPECT(all): reachable 3 blocks, 72 bytes, from push at @global-list
 * EXPECT(all): reachable 1 block, 16 bytes, from set_globals at @custom-section
 * The list's 3 nodes are reachable through its head (reachable, not
 * indirect); the 16-byte block is held by a pointer in a custom writable
 * section of the main program (not .data or .bss: every writable segment
 * of a loaded object is a root).
 */
#include <stdint.h>

#include "leaktest.h"

struct node { struct node *next; uint64_t v[2]; };

char *global_ptr;                     /* .bss */
static struct node *list_head;        /* .bss */
__attribute__((section("lt_custom_data"))) void *custom_section_ptr = (void *)1;

static void push(uint64_t v)
{
    struct node *n = malloc(sizeof *n); /* LEAK: global-list */
    n->next = list_head;
    n->v[0] = v;
    n->v[1] = 0;
    list_head = n;
}

static void set_globals(void)
{
    static void *keep;
    global_ptr = malloc(1000); /* LEAK: global-ptr */
    memset(global_ptr, 0, 1000);
    keep = malloc(48); /* LEAK: static-local */
    memset(keep, 0, 48);
    custom_section_ptr = malloc(16); /* LEAK: custom-section */
    memset(custom_section_ptr, 0, 16);
}

int main(void)
{
    lt_init();
    _Static_assert(sizeof(struct node) == 24, "node size");
    set_globals();
    for (int i = 0; i < 3; i++)
        push((uint64_t)i);
    lt_scrub_stack();
    return 0;
}
