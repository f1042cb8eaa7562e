#!/bin/bash
# real-tar-gzip: GNU tar, gzip and gunzip under fbmalloc, in pipelines.
#
# Proves that archiving and compressing give byte-identical results with and
# without LD_PRELOAD=libfbmalloc.so, and that the processes together took the
# fast path (sum of fast_mallocs > 0, bad_frees == 0 in each).  A generated
# tree (~2000 files in nested directories, sizes from 0 bytes to 300 KiB,
# symlinks, long names, fixed mtimes) is archived with
# `tar -c | gzip -9 | gunzip | tar -t -v` and `tar -I 'gzip -9 -n' -c` (tar
# spawning gzip itself), then extracted again; the compressed bytes, the verbose listings,
# and the checksums of every extracted file must match.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

fb_need tar tar
fb_need gzip gzip
fb_need gunzip gzip
fb_need sha256sum coreutils

# The tree, generated once (not under the allocator), with fixed mtimes.
tree=$FB_IN/tree
awk -v root="$tree" 'BEGIN {
    x = 99
    for (d = 0; d < 40; d++) {
        dir = sprintf("%s/d%02d/sub%d/%s", root, d, d % 3, (d % 4 == 0 ? "deep/er/still_deeper_directory_name_" d : "x"))
        system("mkdir -p \"" dir "\"")
        for (f = 0; f < 50; f++) {
            x = (x * 1103515245 + 12345) % 2147483648
            file = sprintf("%s/file_%03d%s.dat", dir, f, (f % 10 == 0 ? "_with_a_rather_long_name_to_exercise_tar_headers_beyond_one_hundred_chars" : ""))
            n = (f % 17 == 0) ? 0 : (x % 60 == 0 ? 3000 : x % 40)
            for (l = 0; l < n; l++) {
                x = (x * 1103515245 + 12345) % 2147483648
                printf "%d %08x %s\n", l, x, (x % 3 ? "compressible text compressible text" : sprintf("%x%x%x", x, x * 7 % 65536, x % 977)) > file
            }
            if (n == 0) printf "" > file
            close(file)
        }
    }
}'
(cd "$tree" && ln -s d00/sub0 link-to-dir && ln -s missing dangling-link)
find "$tree" -exec touch -h -d '2021-02-03 04:05:06 UTC' {} +
chmod -R u=rwX,go=rX "$tree"

export tree
workload() {
    local topts=(--sort=name --owner=0 --group=0 --numeric-owner --format=gnu)
    fb tar -C "$tree" "${topts[@]}" -cf - . | fb gzip -9 -n >a.tar.gz
    echo "== a.tar.gz"; sha256sum <a.tar.gz
    echo "== listing"
    fb gunzip -c a.tar.gz | fb tar -t -v --full-time -f - | tee listing.txt | sha256sum
    head -n 5 listing.txt; wc -l <listing.txt
    echo "== tar -I gzip"
    fb tar -C "$tree" "${topts[@]}" -I 'gzip -9 -n' -cf b.tar.gz .
    sha256sum <b.tar.gz
    fb gzip -t b.tar.gz && echo "b ok"
    fb gunzip -c b.tar.gz | sha256sum
    fb gunzip -c a.tar.gz | sha256sum
    echo "== extract"
    mkdir out
    fb gzip -dc a.tar.gz | fb tar -C out -xf -
    (cd out && find . -type f -print0 | sort -z | xargs -0 sha256sum) | tee sums.txt | sha256sum
    (cd "$tree" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | cmp - sums.txt && echo "extracted tree matches"
}
FB_COMPARE=(a.tar.gz b.tar.gz listing.txt sums.txt)
# tar, gzip, gunzip, tar (listing), tar -I and its gzip, gzip -t, gunzip x2,
# gzip -dc and tar -x.
FB_MIN_STATS=11
# Also under leak tracking and under checking + canaries (see common.sh).
FB_EXTRA_MODES=(leaks check)
fb_main
