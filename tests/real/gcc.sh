#!/bin/bash
# real-gcc: the whole gcc toolchain (driver, cc1, as, collect2, ld) under
# fbmalloc.
#
# Proves that the compiler -- among the heaviest malloc users there are
# (GC'd trees, obstacks, hash tables, huge numbers of small nodes) --
# produces the same code with and without LD_PRELOAD=libfbmalloc.so: a
# generated C file with 2000 functions (structs, switch statements, loops,
# recursion, string literals, function-pointer tables) is compiled with -O2
# and linked; the object file's `nm` listing and `size`, the object's
# disassembly checksum, the output of running the program (plainly), and the
# object and executable files themselves must be byte-identical, and the
# processes together took the fast path (sum of fast_mallocs > 0, bad_frees
# == 0 in each).
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

fb_need gcc gcc
fb_need nm binutils
fb_need objdump binutils
fb_need size binutils

# FBMALLOC_REAL_GCC_FUNCS overrides the number of generated functions.
NFUNC=${FBMALLOC_REAL_GCC_FUNCS:-2000}
awk -v n="$NFUNC" 'BEGIN {
    print "#include <stdio.h>"
    print "#include <string.h>"
    print "#include <stdlib.h>"
    print "struct node { struct node *next; long key; char name[24]; double w; };"
    print "typedef long (*fn_t)(long, const char *);"
    print "static unsigned long mix(unsigned long h, long v) { h ^= (unsigned long)v + 0x9e3779b97f4a7c15UL + (h << 6) + (h >> 2); return h; }"
    for (i = 0; i < n; i++) {
        k = i % 5
        printf "__attribute__((noinline)) long f%d(long a, const char *s) {\n", i
        if (k == 0) {
            printf "  unsigned long r = %d;\n  for (long j = 0; j < (a & 63) + %d; j++) r = r * 31 + (unsigned long)(s[j %% %d] ^ j);\n  return (long)r;\n", i, i % 17, 3 + i % 11
        } else if (k == 1) {
            printf "  switch ((a + %d) %% 8) {\n", i
            for (c = 0; c < 8; c++) printf "  case %d: return a * %d + %d - (long)strlen(s);\n", c, c + i % 13, i * c
            printf "  default: return -1;\n  }\n"
        } else if (k == 2) {
            printf "  struct node nodes[%d]; struct node *head = 0; long sum = 0;\n", 4 + i % 9
            printf "  for (int j = 0; j < %d; j++) { nodes[j].key = a + j * %d; nodes[j].w = j * 0.5 + %d; snprintf(nodes[j].name, sizeof nodes[j].name, \"n%%d_%d\", j); nodes[j].next = head; head = &nodes[j]; }\n", 4 + i % 9, i % 7 + 1, i, i
            printf "  for (struct node *p = head; p; p = p->next) sum += p->key * (long)p->w + (long)strlen(p->name);\n  return sum;\n"
        } else if (k == 3) {
            printf "  if (a <= 1) return 1 + (long)s[0];\n  return f%d(a / 2, s) + a %% %d;\n", i, 7 + i % 5
        } else {
            printf "  static const char *const tbl[] = { \"alpha%d\", \"beta%d\", \"gamma%d\", \"delta%d\" };\n", i, i * 3, i * 7, i * 11
            printf "  const char *t = tbl[(a + %d) & 3]; unsigned long r = 0;\n  while (*t) r = r * 131 + (unsigned char)*t++;\n  return (long)(r ^ ((unsigned long)a << %d)) ^ (long)strlen(s);\n", i, i % 9
        }
        print "}"
    }
    printf "static const fn_t table[%d] = {\n", n
    for (i = 0; i < n; i++) printf "  f%d,%s", i, (i % 8 == 7 ? "\n" : "")
    print "};"
    print "int main(void) {"
    print "  unsigned long h = 1469598103934665603UL;"
    print "  const char *words[] = { \"epoch\", \"buffer\", \"allocator\", \"jemalloc\", \"fast\", \"path\" };"
    print "  for (long round = 0; round < 4; round++)"
    printf "    for (long i = 0; i < %d; i++) {\n", n
    print "      long v = table[i](i * 7 + round, words[(i + round) % 6]);"
    print "      h = mix(h, v);"
    printf "      if (i %% 500 == 0) printf(\"%%ld %%ld %%016lx\\n\", round, i, h);\n"
    print "    }"
    print "  printf(\"final %016lx\\n\", h);"
    print "  return 0;"
    print "}"
}' >"$FB_IN/gen.c"

workload() {
    cp "$FB_IN/gen.c" gen.c
    fb gcc -O2 -c gen.c -o gen.o
    fb gcc -O2 gen.o -o gen
    echo "== run"
    ./gen
    echo "== nm gen.o"
    nm gen.o
    echo "== size"
    size gen.o
    echo "== objdump -d gen.o"
    objdump -d gen.o | sha256sum
    echo "== nm gen"
    nm gen | sha256sum
}
FB_COMPARE=(gen.o gen)
# gcc -c: driver, cc1, as; gcc link: driver, collect2, ld.
FB_MIN_STATS=6
fb_main
