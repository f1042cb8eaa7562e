#!/usr/bin/env bash
# Bad frees of every size under one mode: badfree_any.sh PROG VAR=VALUE[,...]
# MODE...  Each mistake must be reported in one line naming its kind and
# the pointer, then abort (exit 134) by default; with
# FBMALLOC_ON_BAD_FREE=ignore the program goes on (one report) and no
# block is ever handed out twice (the program verifies its blocks).
set -uo pipefail
prog=$1; envs=$2; shift 2
. "$(dirname "$0")/lib.sh"
IFS=, read -r -a vars <<<"$envs"
[[ $envs == none ]] && vars=()
for mode in "$@"; do
    case $mode in
        double-*) want="double free" ;;
        realloc-freed-*) want="use of a freed block" ;;
        interior-*|misaligned-*) want="invalid pointer|interior pointer" ;;
        *) want="invalid pointer" ;;
    esac
    env "${vars[@]}" LD_PRELOAD="$FBMALLOC_LIB" "$prog" "$mode" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    addr=$(sed -n 's/^ADDR //p' "$tmp/out")
    if [[ $rc -eq 134 ]] && grep -Eq "^fbmalloc: ($want).*$addr" "$tmp/err" \
        && ! grep -q CONTINUED "$tmp/out"; then
        ok "$envs $mode: '$want' at $addr, aborted"
    else
        bad "$envs $mode (default): exit $rc, stdout: $(cat "$tmp/out"), stderr: $(head -c 1500 "$tmp/err")"
    fi
    env "${vars[@]}" FBMALLOC_ON_BAD_FREE=ignore LD_PRELOAD="$FBMALLOC_LIB" "$prog" "$mode" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [[ $rc -eq 0 ]] && grep -q "^VERIFIED" "$tmp/out" \
        && [[ $(grep -Ec "^fbmalloc: ($want)" "$tmp/err") -eq 1 ]]; then
        ok "$envs $mode with ON_BAD_FREE=ignore: one report, $(grep VERIFIED "$tmp/out")"
    else
        bad "$envs $mode (ignore): exit $rc, stdout: $(cat "$tmp/out"), stderr: $(head -c 1500 "$tmp/err")"
    fi
done
env "${vars[@]}" LD_PRELOAD="$FBMALLOC_LIB" "$prog" clean >"$tmp/out" 2>"$tmp/err"
[[ $? -eq 0 && ! -s "$tmp/err" ]] && ok "$envs clean program: silent" \
    || bad "$envs clean: $(head -c 1500 "$tmp/err")"
exit $fail
