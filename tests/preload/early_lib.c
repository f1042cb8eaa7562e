/* A library whose constructor allocates: it may run before fbmalloc's own
 * constructor, so the library must initialise lazily from inside malloc. */
#include <stdlib.h>
#include <string.h>

void *early_blocks[64];

__attribute__((constructor(101))) static void early(void)
{
    for (int i = 0; i < 64; i++) {
        early_blocks[i] = malloc((size_t)(16 + i * 8));
        memset(early_blocks[i], i, (size_t)(16 + i * 8));
    }
    void *p = calloc(10, 10);
    p = realloc(p, 4000);
    free(p);
}
