/* Leaks one block: with FBMALLOC_LEAKS=1 its report loads libdw, which is
 * what the setuid test watches (setuid.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char *volatile p = malloc(100);
    memset(p, 1, 100);
    p = NULL;
    printf("euid %d uid %d\n", (int)geteuid(), (int)getuid());
    return 0;
}
