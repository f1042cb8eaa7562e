/*
 * dl_main.c -- a leak inside a library that was dlopen()ed and then
 * dlclose()d before exit: the report must still name the library's
 * function and file:line (symbolised from the file on disk).
 * Usage: dl_main /path/to/libleakdl.so
 *
 * EXPECT: direct 2 blocks, 8,642 bytes, from lib_make_leak at @dl module=libleakdl.so
 * EXPECT: direct 1 block, 1,234 bytes, from lib_keep at @dl-kept module=libleakdl.so
 * Total: 2 leaks, 9,876 bytes in 3 blocks: two 4,321-byte blocks from one
 * site of dl_lib.c (frame #1 is main in dl_main.c), and the block the
 * library kept in its own global, which dlclose() unmapped.
 * With a suppression matching the library's path or its source file
 * (leak:libleakdl.so, leak:dl_lib.c):
 * EXPECT(suppressed): no leaks
 * EXPECT(suppressed): suppressed 3 blocks, 9,876 bytes
 */
#include "leaktest.h"

int main(int argc, char **argv)
{
    lt_init();
    if (argc < 2) {
        fprintf(stderr, "usage: %s libleakdl.so\n", argv[0]);
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    void (*fn)(int) = (void (*)(int))dlsym(h, "lib_make_leak");
    void (*keep)(void) = (void (*)(void))dlsym(h, "lib_keep");
    if (!fn || !keep) {
        fprintf(stderr, "dlsym: %s\n", dlerror());
        return 2;
    }
    fn(2);
    keep();
    fn = NULL;
    keep = NULL;
    if (dlclose(h) != 0) {
        fprintf(stderr, "dlclose: %s\n", dlerror());
        return 2;
    }
    lt_scrub_stack();
    return 0;
}
