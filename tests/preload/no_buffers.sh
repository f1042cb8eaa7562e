#!/usr/bin/env bash
# FBMALLOC_BUFFER_SIZE=0 turns the buffers off: every request is
# jemalloc's.  Real programs must run as without the library (a bug gave
# requests under 16 bytes jemalloc's 8-byte alignment, which the free
# path's misaligned-pointer check then refused: every program aborted).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
same_output_under "FBMALLOC_BUFFER_SIZE=0" FBMALLOC_BUFFER_SIZE=0
# A directory nothing writes while tests run (/ holds /tmp, whose time
# changes with every other test's files).
want=$(ls -la /usr/include 2>&1)
got=$(FBMALLOC_BUFFER_SIZE=0 LD_PRELOAD="$FBMALLOC_LIB" ls -la /usr/include 2>"$tmp/err")
[[ "$got" == "$want" && ! -s "$tmp/err" ]] && ok "ls -la /usr/include without buffers: identical output" \
    || bad "ls -la /usr/include without buffers: $(head -3 "$tmp/err") $(diff <(echo "$want") <(echo "$got") | head -5)"
exit $fail
