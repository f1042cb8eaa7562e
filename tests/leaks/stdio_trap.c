/*
 * stdio_trap.c -- clean: blocks libc keeps on purpose until exit are never
 * leaks.  The stdout buffer after printf (stdout is a file or pipe under
 * the driver, so fully buffered), a FILE left open, setlocale's copies of
 * locale names, getpwnam's NSS state, tzset/localtime's zone data, a
 * dlerror() message (held through a libc thread-local pointer), setenv's
 * new environ array, and more than 32 atexit handlers.
 *
 * EXPECT: no leaks
 */
#define _GNU_SOURCE
#include <locale.h>
#include <pwd.h>
#include <time.h>

#include "leaktest.h"

static int handler_calls;
static void handler(void) { handler_calls++; }

int main(void)
{
    lt_init();
    for (int i = 0; i < 100; i++)
        printf("line %d of buffered output\n", i);
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        if (!fgets(line, sizeof line, f))
            line[0] = 0;
        /* f is deliberately left open: libc links it from _IO_list_all. */
    }
    if (!setlocale(LC_ALL, "C.UTF-8"))
        setlocale(LC_ALL, "C");
    struct passwd *pw = getpwnam("root");
    printf("root uid: %d\n", pw ? (int)pw->pw_uid : -1);
    setenv("TZ", "Europe/Paris", 1);
    tzset();
    time_t now = 0;
    struct tm *tm = localtime(&now);
    printf("epoch hour in Paris: %d\n", tm ? tm->tm_hour : -1);
    if (!dlopen("/nonexistent/libnothing.so", RTLD_NOW))
        printf("dlerror: %s\n", dlerror() ? "set" : "unset");
    for (int i = 0; i < 40; i++)
        atexit(handler);
    lt_scrub_stack();
    return 0;
}
