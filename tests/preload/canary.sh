#!/usr/bin/env bash
# FBMALLOC_CANARY: overruns are reported with how many bytes past the end,
# the block's size and its allocation stack, at free, realloc and exit;
# underruns too; aligned blocks keep their alignment and usable size is
# the request; clean programs and real binaries (python3, sqlite3, also
# with FBMALLOC_CHECK) run silently with identical output.
set -uo pipefail
prog=$1
. "$(dirname "$0")/lib.sh"

cases=(
  "over-small|heap overrun: 3 bytes written past the end of a 40-byte block|found at free|allocated at:|make_block"
  "over-big|heap overrun: 3 bytes written past the end of a 20,000-byte block|found at free|allocated at:|make_block"
  "under|heap underrun|found at free"
  "over-realloc|heap overrun: 1 byte written past the end of a 40-byte block|found at realloc|make_block"
  "over-exit|heap overrun: 5 bytes written past the end of a 40-byte block|found at exit|make_block"
  "aligned|heap overrun: 1 byte written past the end of a 100-byte block|found at free"
)
for c in "${cases[@]}"; do
    IFS='|' read -r -a parts <<<"$c"
    mode=${parts[0]}
    FBMALLOC_CANARY=1 LD_PRELOAD=$FBMALLOC_LIB "$prog" "$mode" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    good=1
    [[ $rc -eq 134 ]] || good=0
    rest=$(cat "$tmp/err")
    for want in "${parts[@]:1}"; do
        if [[ "$rest" == *"$want"* ]]; then rest=${rest#*"$want"}; else good=0; fi
    done
    ((good)) && ok "$mode: ${parts[1]}" || bad "$mode (rc $rc): $(head -20 "$tmp/err")"
    FBMALLOC_CANARY=1 FBMALLOC_ON_BAD_FREE=ignore LD_PRELOAD=$FBMALLOC_LIB "$prog" "$mode" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [[ $rc -eq 0 ]] && grep -q CONTINUED "$tmp/out" && grep -q "^fbmalloc: heap" "$tmp/err" \
        && ok "$mode with ON_BAD_FREE=ignore: reported, went on" || bad "$mode ignore: rc $rc"
done

FBMALLOC_CANARY=1 LD_PRELOAD=$FBMALLOC_LIB "$prog" clean >"$tmp/out" 2>"$tmp/err"
[[ $? -eq 0 && ! -s "$tmp/err" ]] && ok "clean program: silent, usable size = request" \
    || bad "clean: rc $? $(head -5 "$tmp/err")"

same_output_under "--check --canary" FBMALLOC_CHECK=1 FBMALLOC_CANARY=1
same_output_under "--canary with PYTHONMALLOC=malloc" PYTHONMALLOC=malloc FBMALLOC_CANARY=1
exit $fail
