#!/usr/bin/env bash
# FBMALLOC_CHECK: each kind of bad free is reported with the right kind,
# the bad call's stack, the first free's stack (double frees) and the
# allocation's stack, by function name; the program aborts by default and
# goes on with FBMALLOC_ON_BAD_FREE=ignore; a clean program and real
# binaries (python3, sqlite3) run silently with identical output.
set -uo pipefail
prog=$1
. "$(dirname "$0")/lib.sh"

# mode | expected kind | functions that must appear, in order
cases=(
  "double-small|double free|free called at:|drop_again|first freed at:|drop_block|allocated at:|make_block"
  "double-big|double free|free called at:|drop_again|first freed at:|drop_block|allocated at:|make_block"
  "interior-small|interior pointer|16 bytes inside a 48-byte block|drop_block|allocated at:|make_block"
  "interior-big|interior pointer|16 bytes inside a 20,000-byte block|drop_block|allocated at:|make_block"
  "never|invalid pointer|free called at:|drop_block"
  "stack|invalid pointer|free called at:|drop_block"
  "realloc-freed|use of a freed block|realloc called at:|first freed at:|drop_block|allocated at:|make_block"
)
for c in "${cases[@]}"; do
    IFS='|' read -r mode kind -a <<<"$c" || true
    IFS='|' read -r -a parts <<<"$c"
    FBMALLOC_CHECK=1 LD_PRELOAD=$FBMALLOC_LIB "$prog" "$mode" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    good=1
    [[ $rc -eq 134 ]] || good=0
    grep -q "^fbmalloc: ${parts[1]}: 0x" "$tmp/err" || good=0
    # every expected piece, in order
    rest=$(cat "$tmp/err")
    for want in "${parts[@]:2}"; do
        if [[ "$rest" == *"$want"* ]]; then rest=${rest#*"$want"}; else good=0; fi
    done
    ((good)) && ok "$mode: ${parts[1]}, aborted, stacks in order" \
             || bad "$mode (rc $rc): $(head -30 "$tmp/err")"
    FBMALLOC_CHECK=1 FBMALLOC_ON_BAD_FREE=ignore LD_PRELOAD=$FBMALLOC_LIB "$prog" "$mode" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [[ $rc -eq 0 ]] && grep -q CONTINUED "$tmp/out" && grep -q "^fbmalloc: ${parts[1]}" "$tmp/err" \
        && ok "$mode with ON_BAD_FREE=ignore: reported, went on" || bad "$mode ignore: rc $rc $(head -5 "$tmp/err")"
done

FBMALLOC_CHECK=1 LD_PRELOAD=$FBMALLOC_LIB "$prog" clean >"$tmp/out" 2>"$tmp/err"
[[ $? -eq 0 && ! -s "$tmp/err" ]] && ok "clean program: silent" || bad "clean: $(head -5 "$tmp/err")"

same_output_under "the check" FBMALLOC_CHECK=1
exit $fail
