#!/bin/bash
# real-sort: GNU sort (coreutils) under fbmalloc.
#
# Proves that sort gives byte-identical output with and without
# LD_PRELOAD=libfbmalloc.so on a generated 1M-line file (LC_ALL=C), and takes
# the fast path (fast_mallocs > 0, bad_frees == 0).  Five passes cover sort's
# different allocation patterns: a plain in-memory sort (one big buffer,
# multithreaded merge with --parallel=2), numeric + key sort, unique sort,
# a reverse stable sort with a small -S buffer that forces temporary files
# and a multi-way merge, and `sort -m` of presorted inputs.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

fb_need sort coreutils
fb_need sha256sum coreutils

# 1M lines: "<word> <number> <hex> <text>", generated once.
awk 'BEGIN {
    x = 12345
    for (i = 0; i < 1000000; i++) {
        x = (x * 1103515245 + 12345) % 2147483648
        printf "%s%d %d %08x %s\n", substr("qwertyuiopasdfghjklzxcvbnm", 1 + x % 26, 1 + x % 5), x % 9973,
            (x % 200003) - 100000, x, substr("lorem ipsum dolor sit amet consectetur", 1 + i % 30)
    }
}' >"$FB_IN/lines.txt"

workload() {
    local in=$FB_IN/lines.txt
    mkdir tmp
    fb sort --parallel=2 "$in" >s1.txt
    fb sort --parallel=2 -t ' ' -k2,2n -k1,1 "$in" >s2.txt
    fb sort -u -k3,3 "$in" >s3.txt
    fb sort -s -r -k4 -S 2M -T tmp "$in" >s4.txt
    fb sort -m s1.txt s3.txt >s5.txt
    wc -l s1.txt s2.txt s3.txt s4.txt s5.txt
    sha256sum s1.txt s2.txt s3.txt s4.txt s5.txt
    head -n 3 s1.txt s2.txt s4.txt
}
FB_COMPARE=(s1.txt s2.txt s3.txt s4.txt s5.txt)
FB_MIN_STATS=5
# Also under leak tracking and under checking + canaries (see common.sh).
FB_EXTRA_MODES=(leaks check)
fb_main
