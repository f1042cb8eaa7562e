#!/usr/bin/env bash
# The benchmark workloads (tests/bench/), which check every object they
# wrote before freeing it, in the default mode and with statistics, at
# sizes where lifetime routing has learned its wrapper sites (a buffer
# change once made bignum's 2,000,000 steps, and only those, abort with
# a false double free).  Each must exit 0 with nothing on stderr.
set -uo pipefail
. "$FBMALLOC_SRC/tests/preload/lib.sh"
bin=$FBMALLOC_BUILD/tests/bench
runs=("bignum 2000000" "longlived 300000" "keepone 300000" "larson 300000 2 2"
      "request 4000 2" "prodcons 1000000" "window 64 3000000" "pair 3000000")
for mode in none FBMALLOC_STATS=1; do
    for r in "${runs[@]}"; do
        read -r -a cmd <<<"$r"
        vars=(); [[ $mode != none ]] && vars=("$mode" FBMALLOC_OUTPUT=/dev/null)
        env "${vars[@]}" LD_PRELOAD="$FBMALLOC_LIB" "$bin/${cmd[0]}" "${cmd[@]:1}" \
            >"$tmp/out" 2>"$tmp/err"
        rc=$?
        if [[ $rc -eq 0 && ! -s "$tmp/err" ]]; then
            ok "$mode $r"
        else
            bad "$mode $r: exit $rc, $(head -c 600 "$tmp/err")"
        fi
    done
done
exit $fail
