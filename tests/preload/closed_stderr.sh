#!/usr/bin/env bash
# Reports reach the stderr a program started with, even once the program
# has closed it (src/platform.c, fb_plat_output_keep): coreutils close
# both standard streams in an atexit handler, before fbmalloc's exit
# reports, which were lost; and a file the program opens (close-on-exec)
# after closing stderr, which takes the number 2, never receives a report.
# A program's own redirection (dup2 onto 2) still gets them: exit_busy's
# damage tests.
#
# usage: closed_stderr.sh PROG   (tests/preload/closed_stderr.c)
set -uo pipefail
prog=$1
. "$(dirname "$0")/lib.sh"

for mode in FBMALLOC_STATS=1 FBMALLOC_LEAKS=all; do
    env "$mode" LD_PRELOAD="$FBMALLOC_LIB" /bin/ls / >/dev/null 2>"$tmp/err"
    rc=$?
    if [[ $rc -eq 0 ]] && grep -qE '^fbmalloc .* statistics|^fbmalloc: leak report' "$tmp/err"; then
        ok "ls under $mode: the report reached stderr after ls closed it"
    else
        bad "ls under $mode: rc=$rc, no report on stderr: $(head -c 300 "$tmp/err")"
    fi
done

for mode in FBMALLOC_LEAKS=1 "FBMALLOC_LEAKS=1 FBMALLOC_CHECK=1" "FBMALLOC_STATS=1"; do
    # shellcheck disable=SC2086
    env $mode LD_PRELOAD="$FBMALLOC_LIB" "$prog" "$tmp/data" 2>"$tmp/err"
    rc=$?
    data=$(cat "$tmp/data" 2>/dev/null)
    if [[ $rc -ne 0 ]]; then
        bad "closed_stderr under $mode: exit $rc"
    elif [[ "$data" != data ]]; then
        bad "closed_stderr under $mode: the data file holds $(wc -c <"$tmp/data") bytes, not its 5: $(head -c 200 "$tmp/data")"
    elif [[ $mode == *LEAKS* ]] && ! grep -q '1 leak (100 bytes' "$tmp/err"; then
        bad "closed_stderr under $mode: no leak report on the first stderr: $(head -c 300 "$tmp/err")"
    elif [[ $mode == *STATS* ]] && ! grep -q 'statistics' "$tmp/err"; then
        bad "closed_stderr under $mode: no statistics on the first stderr: $(head -c 300 "$tmp/err")"
    else
        ok "closed_stderr under $mode: the data file kept its 5 bytes, the report reached the first stderr"
    fi
done
exit $fail
