#!/usr/bin/env bash
# FBMALLOC_CHECK (and with FBMALLOC_CANARY): 200 double frees in 100
# threads other than main, 4 at a time, are each reported as a double free
# with the first free's stack, and nothing else is reported (issue 13,
# item 4).
set -uo pipefail
prog=$1
. "$(dirname "$0")/lib.sh"
for mode in FBMALLOC_CHECK=1 FBMALLOC_CHECK=1,FBMALLOC_CANARY=1; do
    IFS=, read -r -a vars <<<"$mode"
    env "${vars[@]}" FBMALLOC_ON_BAD_FREE=ignore LD_PRELOAD="$FBMALLOC_LIB" "$prog" 100 >"$tmp/out" 2>"$tmp/err"
    rc=$?
    n=$(grep -c '^fbmalloc: double free: 0x' "$tmp/err")
    other=$(grep '^fbmalloc:' "$tmp/err" | grep -v '^fbmalloc: double free: 0x' | head -3)
    stacks=$(grep -c '^  first freed at:' "$tmp/err")
    [[ $rc -eq 0 && $n -eq 200 && -z $other && $stacks -eq 200 ]] && grep -q CONTINUED "$tmp/out" \
        && ok "$mode ignore: 200 double frees in 100 threads reported, with stacks, nothing else" \
        || bad "$mode ignore: rc $rc, $n double-free reports, $stacks stacks, other: $other"
    env "${vars[@]}" LD_PRELOAD="$FBMALLOC_LIB" "$prog" 8 >"$tmp/out" 2>"$tmp/err"
    rc=$?
    first=$(grep -m1 '^fbmalloc:' "$tmp/err")
    [[ $rc -eq 134 && $first == "fbmalloc: double free: 0x"* ]] \
        && ok "$mode default: first report is the double free, aborted" \
        || bad "$mode default: rc $rc, first report: $first"
done
exit $fail
