/*
 * strdup.c -- leaks allocated inside libc: the stack goes through the libc
 * frames (frame #0 is strdup itself, in libc.so.6) down to the user
 * function that called it.
 *
 * EXPECT: direct 1 block, 12 bytes, from dup_name at @strdup frame=1 f0=strdup above=libc.so
 * EXPECT: direct 1 block, 6 bytes, from dup_prefix at @strndup frame=1 f0=strndup above=libc.so
 * EXPECT: direct 1 block, 20 bytes, from format_name at @asprintf frame=any above=libc.so
 * EXPECT: direct 1 block, 191 bytes, from format_long at @asprintf-long frame=any above=libc.so
 * Total: 4 leaks, 229 bytes in 4 blocks.  "hello world" is 11 chars + NUL;
 * strndup(.., 5) gives 6; "user-12345-abcdefgh" is 19 chars + NUL; the
 * long string is 190 chars + NUL (glibc sizes asprintf's result exactly).
 */
#define _GNU_SOURCE
#include <stdio.h>

#include "leaktest.h"

static void dup_name(void)
{
    char *s = strdup("hello world"); /* LEAK: strdup */
    s[0] = 'H';
}

static void dup_prefix(void)
{
    char *s = strndup("prefix-and-more", 5); /* LEAK: strndup */
    s[0] = 'P';
}

static void format_name(int id)
{
    char *s = NULL;
    if (asprintf(&s, "user-%d-%s", id, "abcdefgh") < 0) /* LEAK: asprintf */
        exit(1);
}

static void format_long(void)
{
    char *s = NULL;
    if (asprintf(&s, "%0190d", 7) < 0) /* LEAK: asprintf-long */
        exit(1);
}

int main(void)
{
    lt_init();
    dup_name();
    dup_prefix();
    format_name(12345);
    format_long();
    char *t = strdup("freed");
    free(t);
    lt_scrub_stack();
    return 0;
}
