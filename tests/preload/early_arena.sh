#!/usr/bin/env bash
# The early arena (src/early.h) under each mode given (VAR=VALUE[,...], or
# "none"): a short program's blocks behave as any (early_arena.c's
# scenarios, silent), a leak of one is reported with its stack under
# FBMALLOC_LEAKS, and a double free of one after jemalloc took over is
# reported and aborts.
#
# usage: early_arena.sh PROG MODE...
set -uo pipefail
prog=$1; shift
. "$(dirname "$0")/lib.sh"
for envs in "$@"; do
    IFS=, read -r -a vars <<<"$envs"
    [[ $envs == none ]] && vars=()
    for sc in semantics outgrow fork threads; do
        out=$(env "${vars[@]}" LD_PRELOAD="$FBMALLOC_LIB" "$prog" "$sc" 2>"$tmp/err")
        rc=$?
        if [[ $rc -eq 0 && ! -s "$tmp/err" ]] && grep -q '^ok ' <<<"$out" && ! grep -q FAIL <<<"$out"; then
            ok "$envs $sc: $(grep '^ok ' <<<"$out" | tail -1 | cut -c4-)"
        else
            bad "$envs $sc: rc $rc, $(head -c 1500 <<<"$out") stderr: $(head -c 1500 "$tmp/err")"
        fi
    done
    out=$(env "${vars[@]}" LD_PRELOAD="$FBMALLOC_LIB" "$prog" leak 2>"$tmp/err")
    rc=$?
    if [[ $envs == *FBMALLOC_LEAKS=1* ]]; then
        if grep -q "^ok leak" <<<"$out" && grep -q "direct leak of 5,000 bytes in 1 block" "$tmp/err" \
            && grep -q "early_leaker" "$tmp/err"; then
            ok "$envs leak: an arena block's leak reported with its stack"
        else
            bad "$envs leak: rc $rc, $out, stderr: $(head -c 1500 "$tmp/err")"
        fi
    elif [[ $rc -ne 0 || -s "$tmp/err" ]]; then
        bad "$envs leak (not tracking): rc $rc, stderr: $(head -c 1500 "$tmp/err")"
    fi
    out=$(env "${vars[@]}" LD_PRELOAD="$FBMALLOC_LIB" "$prog" double-after-outgrow 2>"$tmp/err")
    rc=$?
    addr=$(sed -n 's/^ADDR //p' <<<"$out")
    if [[ $rc -eq 134 ]] && grep -q "double free.*$addr" "$tmp/err" && ! grep -q CONTINUED <<<"$out"; then
        ok "$envs double free of an arena block after jemalloc took over: reported, aborted"
    else
        bad "$envs double-after-outgrow: rc $rc, $out, stderr: $(head -c 1500 "$tmp/err")"
    fi
done
exit $fail
