/*
 * fbmalloc-options: prints the options table, for `scripts/fbmalloc --help`
 * (default) and for README.md (--markdown); and checks a set of values
 * (--check: parses the current environment and reports problems, exit 1
 * if any), and lists the option names (--names, for the launcher).
 * Built from the same table the library uses.
 */
#include <string.h>

#include "fmt.h"
#include "options.h"

extern char **environ;

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--markdown") == 0) {
        fb_opt_print_help(1, 1);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--check") == 0) {
        struct fb_options o;
        return fb_opt_parse(&o, environ, 0, 2) ? 1 : 0;
    }
    if (argc > 1 && strcmp(argv[1], "--names") == 0) {
        for (int id = 0; id < FB_OPT_COUNT; id++)
            fb_fmt_dprintf(1, "%s\n", fb_opt_table[id].name);
        return 0;
    }
    fb_opt_print_help(1, 0);
    return 0;
}
