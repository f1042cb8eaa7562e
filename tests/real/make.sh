#!/bin/bash
# real-make: `make -j2` building 30 tiny C files and linking them, the whole
# tree (make, the gcc driver, cc1, as, collect2, ld) under fbmalloc, with
# leak tracking and with checking + canaries: the same objects, program
# and output, within a bounded multiple of the plain run's time.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

fb_need make make
fb_need gcc gcc

for i in $(seq 1 30); do
    cat >"$FB_IN/f$i.c" <<EOC
#include <string.h>
struct s$i { int a[$i]; const char *name; };
static int helper$i(const struct s$i *p) { int t = 0; for (int k = 0; k < $i; k++) t += p->a[k] * (k + $i); return t + (int)strlen(p->name); }
int f$i(int x) { struct s$i v = { .name = "f$i" }; for (int k = 0; k < $i; k++) v.a[k] = x + k; return helper$i(&v); }
EOC
done
{
    echo '#include <stdio.h>'
    for i in $(seq 1 30); do echo "int f$i(int);"; done
    echo 'int main(void) { long t = 0;'
    for i in $(seq 1 30); do echo "  t += f$i($i);"; done
    echo '  printf("%ld\n", t); return 0; }'
} >"$FB_IN/main.c"
{
    printf 'OBJS = main.o'
    for i in $(seq 1 30); do printf ' f%d.o' "$i"; done
    printf '\nprog: $(OBJS)\n\tgcc -o $@ $(OBJS)\n%%.o: %%.c\n\tgcc -O2 -c $< -o $@\n'
} >"$FB_IN/Makefile"

workload() {
    cp "$FB_IN"/*.c "$FB_IN/Makefile" .
    fb make -s -j2
    ./prog
    sha256sum ./*.o | sort
}
FB_COMPARE=(prog)
FB_EXTRA_MODES=(leaks check)
fb_main
