#!/usr/bin/env bash
# [--rounds=N] PROG (fork while threads allocate, or exit while they do)
# under each debugging mode given as an argument after the program
# (VAR=VALUE[,VAR=VALUE...]): N children (default 200) per mode must exit
# cleanly (no hang on a lock held across fork, no false report at exit),
# and nothing may appear on stderr.
set -uo pipefail
rounds=200
if [[ $1 == --rounds=* ]]; then rounds=${1#--rounds=}; shift; fi
prog=$1; shift
. "$(dirname "$0")/lib.sh"
for mode in "$@"; do
    IFS=, read -r -a vars <<<"$mode"
    out=$(env "${vars[@]}" LD_PRELOAD="$FBMALLOC_LIB" "$prog" "$rounds" 2>"$tmp/err")
    rc=$?
    if [[ $rc -eq 0 && ! -s "$tmp/err" ]]; then ok "$mode: $out"
    else bad "$mode: rc $rc, $out, stderr: $(head -c 2000 "$tmp/err")"; fi
done
exit $fail
