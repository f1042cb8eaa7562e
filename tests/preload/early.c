/* Frees, in main, blocks allocated by a library constructor (early_lib.c)
 * and checks their contents survived start-up. */
#include <stdio.h>
#include <stdlib.h>

extern void *early_blocks[64];

int main(void)
{
    for (int i = 0; i < 64; i++) {
        unsigned char *p = early_blocks[i];
        for (int k = 0; k < 16 + i * 8; k++)
            if (p[k] != (unsigned char)i) {
                printf("block %d corrupted\n", i);
                return 1;
            }
        free(p);
    }
    printf("early blocks intact\n");
    return 0;
}
