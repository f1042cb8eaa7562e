#!/usr/bin/env bash
# Option values as people write them, under LD_PRELOAD on real programs
# (churn, python3): booleans as yes/on/true in any case, sizes as KiB/MiB,
# control bytes that are never read as digits, bad values quoted escaped
# and bounded in one line, and FBMALLOC_VERBOSE=1's configuration block.
set -uo pipefail
churn=$1
. "$(dirname "$0")/lib.sh"
lib=$FBMALLOC_LIB
nopts=$("$FBMALLOC_BUILD/fbmalloc-options" --names | wc -l)
want=$("$churn")
py='import json; print(len(json.dumps({str(i): [i] * 3 for i in range(5000)})))'
pywant=$(/usr/bin/python3 -c "$py")

# run ENV... : churn under the library; stdout must be unchanged, stderr
# lands in $tmp/err.
run() {
    local out
    out=$(env "$@" LD_PRELOAD="$lib" "$churn" 2>"$tmp/err")
    [[ "$out" == "$want" ]] || bad "churn under $*: stdout '$out'"
}
# printable FILE: only printable ASCII and newlines (no escape sequences).
printable() { ! LC_ALL=C grep -q '[^[:print:]]' "$1"; }

# 1. Control bytes are not digits: 0x11 | 0x20 is '1', 0x10 | 0x20 is '0'.
#    Statistics stay off, one escaped line, the program runs.
for c in 11 10 01 13; do
    v=$(printf "\\x$c")
    run FBMALLOC_STATS="$v"
    if [[ $(wc -l <"$tmp/err") -eq 1 ]] && grep -q "FBMALLOC_STATS=\"\\\\x$c\" is invalid" "$tmp/err" \
        && printable "$tmp/err" && ! grep -q "fast_mallocs\|live bytes" "$tmp/err"; then
        ok "FBMALLOC_STATS=\\x$c: rejected in one escaped line, no statistics"
    else
        bad "FBMALLOC_STATS=\\x$c: $(cat -A "$tmp/err" | head -5)"
    fi
done
v=$(printf 'j\x13on')
run FBMALLOC_STATS="$v" FBMALLOC_OUTPUT="$tmp/s.json"
[[ ! -e "$tmp/s.json" && $(wc -l <"$tmp/err") -eq 1 ]] \
    && ok "FBMALLOC_STATS=j\\x13on is not json" || bad "j\\x13on: $(cat -A "$tmp/err")"

# 2. A huge value full of terminal escapes: one short printable line.
huge=$(python3 -c 'import sys; sys.stdout.write(("\x1b[2J\x1b]0;owned\x07\r" * 700)[:10000])')
run FBMALLOC_REPORT_FORMAT="$huge"
len=$(wc -c <"$tmp/err")
if [[ $(wc -l <"$tmp/err") -eq 1 && $len -lt 600 ]] && printable "$tmp/err" \
    && grep -q 'FBMALLOC_REPORT_FORMAT="\\x1b\[2J\\x1b\]0;owned\\x07\\x0d.*\.\.\." (10000 bytes) is invalid' "$tmp/err" \
    && grep -q "using the default text" "$tmp/err"; then
    ok "10,000-byte value with escapes: one line of $len bytes, escaped, default used"
else
    bad "huge value: $len bytes: $(cat -A "$tmp/err" | cut -c1-300)"
fi
# ... and a name with escapes likewise.
out=$(env "FBMALLOC_STAT$(printf '\x1b')[31m=1" LD_PRELOAD="$lib" "$churn" 2>"$tmp/err")
[[ "$out" == "$want" && $(wc -l <"$tmp/err") -eq 1 ]] && printable "$tmp/err" \
    && grep -q 'unknown option FBMALLOC_STAT\\x1b\[31m ignored' "$tmp/err" \
    && ok "unknown name with escapes: one escaped line" || bad "escaped name: $(cat -A "$tmp/err")"

# 3. Booleans in any case turn statistics (and checking) on, as 1 does.
for v in yes YES On true TRUE 1; do
    got=$(env FBMALLOC_STATS=$v FBMALLOC_CHECK=$v LD_PRELOAD="$lib" /usr/bin/python3 -c "$py" 2>"$tmp/err")
    [[ "$got" == "$pywant" ]] && grep -q "live bytes" "$tmp/err" && ! grep -q invalid "$tmp/err" \
        && ok "python3 with FBMALLOC_STATS=$v FBMALLOC_CHECK=$v: statistics printed" \
        || bad "STATS=$v: '$got' $(head -3 "$tmp/err")"
done
for v in no OFF False 0; do
    run FBMALLOC_STATS=$v FBMALLOC_LEAKS=$v
    [[ ! -s "$tmp/err" ]] && ok "FBMALLOC_STATS=$v FBMALLOC_LEAKS=$v: silent" \
        || bad "STATS=$v: $(head -3 "$tmp/err")"
done

# 4. FBMALLOC_VERBOSE=1 (or yes): the effective configuration in one block,
#    sizes given as KiB/MiB taken and shown; nothing else changes.
run FBMALLOC_VERBOSE=yes FBMALLOC_BUFFER_SIZE=2MiB FBMALLOC_EPOCH_SIZE=32KiB FBMALLOC_CANARY=On
lines=$(wc -l <"$tmp/err")
if [[ $lines -eq $((nopts + 1)) ]] && head -1 "$tmp/err" | grep -q "^fbmalloc .*: preloaded in pid [0-9]*; fast path on: [0-9]* buffers of 2M, epochs of 32K" \
    && grep -q "^fbmalloc:   FBMALLOC_BUFFER_SIZE=2M$" "$tmp/err" \
    && grep -q "^fbmalloc:   FBMALLOC_EPOCH_SIZE=32K$" "$tmp/err" \
    && grep -q "^fbmalloc:   FBMALLOC_CANARY=1$" "$tmp/err" \
    && grep -q "^fbmalloc:   FBMALLOC_VERBOSE=1$" "$tmp/err" \
    && grep -q "^fbmalloc:   FBMALLOC_MAX_SMALL=1K  *(default)$" "$tmp/err" \
    && [[ $(grep -c "^fbmalloc:   FBMALLOC_[A-Z_]*=" "$tmp/err") -eq $nopts ]]; then
    ok "FBMALLOC_VERBOSE=yes: header and all $nopts options in one block"
else
    bad "verbose block ($lines lines, $nopts options): $(cat "$tmp/err")"
fi
# The block is one write(2): no line of a concurrently writing process can
# fall inside it.  strace shows the writes when it is there.
if command -v strace >/dev/null; then
    FBMALLOC_VERBOSE=1 LD_PRELOAD="$lib" strace -f -e trace=write -o "$tmp/st" "$churn" >/dev/null 2>&1
    n=$(grep -c 'write(2, "fbmalloc' "$tmp/st")
    [[ $n -eq 1 ]] && ok "verbose block is a single write" || bad "verbose block in $n writes"
fi
# A real program too: python3 prints its output, the block comes first.
got=$(FBMALLOC_VERBOSE=1 LD_PRELOAD="$lib" /usr/bin/python3 -c "$py" 2>"$tmp/err")
[[ "$got" == "$pywant" && $(grep -c "^fbmalloc .*preloaded in pid" "$tmp/err") -ge 1 ]] \
    && ok "python3 under FBMALLOC_VERBOSE=1: same output, configuration shown" \
    || bad "python3 verbose: '$got' $(head -3 "$tmp/err")"
# VERBOSE=0 (or off) stays silent.
run FBMALLOC_VERBOSE=off
[[ ! -s "$tmp/err" ]] && ok "FBMALLOC_VERBOSE=off: silent" || bad "VERBOSE=off: $(cat "$tmp/err")"
exit $fail
