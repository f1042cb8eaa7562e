/*
 * A program that closes its stderr and then opens a data file with
 * O_CLOEXEC (as glibc's "e" fopen, Python and most libraries do), which
 * takes descriptor 2, and leaks a block.  The leak report (FBMALLOC_LEAKS)
 * must reach the stderr the program started with, and never the data
 * file (src/platform.c, fb_plat_output_keep).
 *
 * usage: closed_stderr DATAFILE
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *kept;

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    char *lost = malloc(100);
    if (!lost)
        return 1;
    memset(lost, 1, 100);
    kept = lost;
    kept = NULL;                     /* unreachable from here on: a leak */
    close(2);
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd != 2)
        return 3;                    /* the test needs the number 2 taken */
    if (write(fd, "data\n", 5) != 5)
        return 4;
    return 0;
}
