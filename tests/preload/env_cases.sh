#!/usr/bin/env bash
# Library behaviour that depends on the environment, on a real workload
# (churn): silence by default, fast path off on request or when the
# address space cannot be reserved, a smaller region when the full one
# does not fit, one statistics file per process with %p, and a bad option
# reported in one line while the program runs on.
set -uo pipefail
churn=$1
. "$(dirname "$0")/lib.sh"
json() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }

want=$("$churn")

# 1. Silent by default: same stdout, nothing on stderr.
out=$(LD_PRELOAD=$FBMALLOC_LIB "$churn" 2>"$tmp/err")
[[ "$out" == "$want" && ! -s "$tmp/err" ]] && ok "silent by default" \
    || bad "default run: stdout '$out' stderr '$(cat "$tmp/err")'"

# 2. The fast path is really taken by default.
out=$(FBMALLOC_STATS=json FBMALLOC_OUTPUT="$tmp/on.json" LD_PRELOAD=$FBMALLOC_LIB "$churn")
fast=$(json "$tmp/on.json" fast_mallocs)
[[ "$out" == "$want" && $fast -gt 10000 ]] && ok "fast path: $fast buffer allocations" \
    || bad "fast path not taken: $fast"

# 3. FBMALLOC_BUFFER_SIZE=0: everything through jemalloc.
out=$(FBMALLOC_BUFFER_SIZE=0 FBMALLOC_STATS=json FBMALLOC_OUTPUT="$tmp/off.json" \
      LD_PRELOAD=$FBMALLOC_LIB "$churn")
[[ "$out" == "$want" && $(json "$tmp/off.json" fast_mallocs) == 0 \
   && $(json "$tmp/off.json" backend_mallocs) -gt 100000 ]] && ok "BUFFER_SIZE=0 turns the fast path off" \
    || bad "BUFFER_SIZE=0: $out, $(cat "$tmp/off.json")"

# 4. Reservation impossible (address space limit below 4 buffers of 1G):
#    fast path off, program unaffected.
out=$( (ulimit -v 400000; FBMALLOC_BUFFER_SIZE=1G FBMALLOC_VERBOSE=1 FBMALLOC_STATS=json \
        FBMALLOC_OUTPUT="$tmp/nores.json" LD_PRELOAD=$FBMALLOC_LIB "$churn") 2>"$tmp/err")
[[ "$out" == "$want" && $(json "$tmp/nores.json" fast_mallocs) == 0 ]] \
    && grep -q "could not reserve" "$tmp/err" && ok "reservation failure: fast path off, program runs" \
    || bad "reservation failure: '$out' $(cat "$tmp/err") $(cat "$tmp/nores.json" 2>/dev/null)"

# 5. A 64G region does not fit in 1.5G of address space: a smaller one is used.
out=$( (ulimit -v 1500000; FBMALLOC_STATS=json FBMALLOC_OUTPUT="$tmp/half.json" \
        LD_PRELOAD=$FBMALLOC_LIB "$churn") 2>"$tmp/err")
[[ "$out" == "$want" && $(json "$tmp/half.json" fast_mallocs) -gt 0 ]] \
    && ok "address-space limit: smaller region, fast path still on" \
    || bad "smaller region: '$out' $(cat "$tmp/err")"

# 6. %p: a forked child writes its own statistics file.
out=$(FBMALLOC_STATS=json FBMALLOC_OUTPUT="$tmp/s.%p.json" LD_PRELOAD=$FBMALLOC_LIB "$churn" fork)
files=("$tmp"/s.*.json)
if [[ ${#files[@]} -eq 2 ]]; then
    good=1
    for f in "${files[@]}"; do
        pid=${f##*/s.}; pid=${pid%.json}
        [[ $(json "$f" pid) == "$pid" && $(json "$f" fast_mallocs) -gt 0 ]] || good=0
    done
    ((good)) && ok "one statistics file per process (%p)" || bad "%p files: $(cat "${files[@]}")"
else
    bad "%p: expected 2 files, got ${#files[@]}"
fi

# 7. A bad option: one line naming it, the program runs on with the default.
out=$(FBMALLOC_EPOCH_SIZE=banana LD_PRELOAD=$FBMALLOC_LIB "$churn" 2>"$tmp/err")
[[ "$out" == "$want" && $(wc -l <"$tmp/err") -eq 1 ]] && grep -q 'FBMALLOC_EPOCH_SIZE="banana"' "$tmp/err" \
    && ok "bad option: one line, program runs" || bad "bad option: $(cat "$tmp/err")"

# 8. Human-readable statistics.
FBMALLOC_STATS=1 LD_PRELOAD=$FBMALLOC_LIB "$churn" >/dev/null 2>"$tmp/err"
grep -q "epochs reset" "$tmp/err" && grep -q "request sizes" "$tmp/err" \
    && ok "FBMALLOC_STATS=1 prints a readable report" || bad "text stats: $(cat "$tmp/err")"
exit $fail
