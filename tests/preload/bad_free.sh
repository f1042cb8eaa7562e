#!/usr/bin/env bash
# A double or invalid free of a buffer object is reported on stderr with
# its address; by default the program aborts (like glibc), with
# FBMALLOC_ON_BAD_FREE=ignore it goes on and the allocator keeps working.
set -uo pipefail
prog=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
for mode in double interior misaligned never realloc-freed remote-double; do
    case $mode in
        double|remote-double) want="double free" ;;
        realloc-freed) want="use of a freed block:" ;;
        *) want="invalid pointer" ;;
    esac
    LD_PRELOAD=$FBMALLOC_LIB "$prog" $mode >"$tmp/out" 2>"$tmp/err"
    rc=$?
    addr=$(sed -n 's/^ADDR //p' "$tmp/out")
    if [[ $rc -ne 134 ]] || ! grep -q "$want of $addr\|$want $addr" "$tmp/err" \
        || grep -q CONTINUED "$tmp/out"; then
        echo "FAIL $mode (default): exit $rc, stderr: $(cat "$tmp/err")"; fail=1
    else
        echo "ok   $mode (default): aborted, reported $addr"
    fi
    FBMALLOC_ON_BAD_FREE=ignore LD_PRELOAD=$FBMALLOC_LIB "$prog" $mode >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [[ $rc -ne 0 ]] || ! grep -q CONTINUED "$tmp/out" \
        || [[ $(grep -c "$want" "$tmp/err") -ne 1 ]]; then
        echo "FAIL $mode (ignore): exit $rc, stderr: $(cat "$tmp/err")"; fail=1
    else
        echo "ok   $mode (ignore): reported once, continued"
    fi
done
exit $fail
