/*
 * Failure injection target: makes argv[1] allocations of argv[2] bytes
 * (malloc, or calloc/realloc/aligned_alloc with argv[3]) and prints one
 * character per call: '.' success, 'X' NULL with errno ENOMEM, '?' NULL
 * with another errno.  A program that handles NULL, as the tests want.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *one(const char *how, size_t sz)
{
    if (!strcmp(how, "calloc"))
        return calloc(1, sz);
    if (!strcmp(how, "realloc"))
        return realloc(NULL, sz);
    if (!strcmp(how, "aligned"))
        return aligned_alloc(64, sz);
    return malloc(sz);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int n = atoi(argv[1]);
    size_t sz = (size_t)atol(argv[2]);
    const char *how = argc > 3 ? argv[3] : "malloc";
    char line[4096];
    if (n >= (int)sizeof line)
        return 2;
    /* Build the line first: printing allocates stdout's buffer. */
    for (int i = 0; i < n; i++) {
        errno = 0;
        void *p = one(how, sz);
        line[i] = p ? '.' : (errno == ENOMEM ? 'X' : '?');
        free(p);
    }
    line[n] = '\0';
    puts(line);
    return 0;
}
