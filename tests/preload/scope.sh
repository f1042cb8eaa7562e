#!/usr/bin/env bash
# Scoped leak checks: fbmalloc_scope_end() counts and reports exactly the
# blocks the thread allocated in the scope and did not free; other
# threads' blocks and earlier blocks are not the scope's; scopes nest; the
# report names the allocating function; -1 without tracking.
set -uo pipefail
prog=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
out=$(FBMALLOC_LEAKS=1 FBMALLOC_OUTPUT="$tmp/r" LD_PRELOAD=$FBMALLOC_LIB "$prog")
if [[ "$out" == "0 2 1 1" ]] && grep -q "still live at scope end: 3,100 bytes in 2 blocks\|still live at scope end: 3,000 bytes in 1 block" "$tmp/r" \
   && grep -q "#0 forget_two" "$tmp/r" && grep -q "scope end: 2 blocks (3,100 bytes)" "$tmp/r"; then
    echo "ok   scope counts $out, report names forget_two"
else
    echo "FAIL scope: out='$out'"; cat "$tmp/r"; fail=1
fi
out=$(LD_PRELOAD=$FBMALLOC_LIB "$prog"); rc=$?
if [[ $rc -eq 4 ]]; then echo "ok   without tracking scope_begin returns -1"; else echo "FAIL untracked rc=$rc out=$out"; fail=1; fi
exit $fail
