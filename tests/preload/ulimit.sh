#!/usr/bin/env bash
# Under ulimit -v, fbmalloc must leave the program its budget: C programs
# get at least 95% of what jemalloc alone gives them before NULL + ENOMEM,
# on every allocation path; python3 raises MemoryError (never a signal);
# python3, perl and ls start and run under small limits.
#
# usage: ulimit.sh PROG   (tests/preload/ulimit.c)
set -uo pipefail
prog=$1
. "$(dirname "$0")/lib.sh"
JEMALLOC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
[[ -f $JEMALLOC ]] || { echo "FAIL $JEMALLOC missing (libjemalloc2; scripts/setup --tests)"; exit 1; }

# run LIMIT_MB LIB CMD...: stdout of CMD under the limit; the exit status
# (128 + signal for a signal) in $rc.
run() {
    local mb=$1 lib=$2; shift 2
    out=$( (ulimit -v $((mb * 1024)); LD_PRELOAD=$lib exec "$@") 2>"$tmp/err")
    rc=$?
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

printf '%-8s %-8s %10s %10s %10s %7s\n' limit mode glibc jemalloc fbmalloc fb/je
for mb in 100 300 1000; do
    for mode in big small calloc aligned realloc threads; do
        declare -A got=()
        for a in glibc jemalloc fbmalloc; do
            lib=""
            [[ $a == jemalloc ]] && lib=$JEMALLOC
            [[ $a == fbmalloc ]] && lib=$FBMALLOC_LIB
            if [[ $a == jemalloc && ! -f $JEMALLOC ]]; then got[$a]=; continue; fi
            run "$mb" "$lib" "$prog" "$mode"
            read -r _ bytes status <<<"$out"
            if [[ $rc -ne 0 || "$status" != ENOMEM ]]; then
                if [[ $a == fbmalloc ]]; then
                    bad "$mode under $mb MB: rc=$rc '$out' $(head -3 "$tmp/err")"
                fi
                got[$a]=0
                continue
            fi
            got[$a]=$bytes
        done
        je=${got[jemalloc]:-}
        ratio=$(awk -v f="${got[fbmalloc]}" -v j="${je:-0}" 'BEGIN { if (j > 0) printf "%.3f", f / j; else print "-" }')
        printf '%-8s %-8s %10s %10s %10s %7s\n' "${mb}MB" "$mode" "$(mib "${got[glibc]}")" \
            "$(mib "${je:-0}")" "$(mib "${got[fbmalloc]}")" "$ratio"
        if [[ -n "$je" && "$je" -gt 0 ]]; then
            # Both sides vary from run to run (jemalloc maps in growing
            # steps, threads race for the last ones): compare the most
            # each got in up to three runs, re-running only on a shortfall.
            fb=${got[fbmalloc]}
            for again in 1 2; do
                awk -v f="$fb" -v j="$je" 'BEGIN { exit !(f < 0.95 * j) }' || break
                run "$mb" "$JEMALLOC" "$prog" "$mode"
                read -r _ bytes status <<<"$out"
                [[ $rc -eq 0 && "$status" == ENOMEM && $bytes -gt $je ]] && je=$bytes
                run "$mb" "$FBMALLOC_LIB" "$prog" "$mode"
                read -r _ bytes status <<<"$out"
                [[ $rc -eq 0 && "$status" == ENOMEM && $bytes -gt $fb ]] && fb=$bytes
            done
            awk -v f="$fb" -v j="$je" 'BEGIN { exit !(f >= 0.95 * j) }' \
                || bad "$mode under $mb MB: fbmalloc got $(mib "$fb") MiB, jemalloc $(mib "$je") MiB (< 95%, best of 3)"
        fi
    done
done

# python3: MemoryError, never a signal, on big and on small objects.
for mb in 100 300 1000; do
    for what in 'bytearray(1 << 20)' 'str(len(x)) * 3'; do
        run "$mb" "$FBMALLOC_LIB" /usr/bin/python3 -c "
x = []
try:
    while True:
        x.append($what)
except MemoryError:
    n = len(x)
    x = None
    print('MemoryError', n)
"
        if [[ $rc -eq 0 && "$out" == MemoryError* ]]; then
            ok "python3 under $mb MB, x.append($what): $out"
        else
            bad "python3 under $mb MB, x.append($what): rc=$rc '$out' $(tail -2 "$tmp/err")"
        fi
    done
done

# Programs start and run under small limits (they crashed inside jemalloc
# when the buffer reservation took the budget).
for mb in 150 200 250 300 400 500 580; do
    for cmd in "/usr/bin/python3 -c pass" "perl -e 1" "/bin/ls /"; do
        # shellcheck disable=SC2086
        run "$mb" "" $cmd
        want=$rc
        # shellcheck disable=SC2086
        run "$mb" "$FBMALLOC_LIB" $cmd
        if [[ $rc -eq $want && $rc -lt 128 ]]; then
            ok "$cmd under $mb MB: exit $rc, as with glibc"
        else
            bad "$cmd under $mb MB: exit $rc (glibc: $want) $(head -2 "$tmp/err")"
        fi
    done
done
exit $fail
