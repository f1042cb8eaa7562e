#!/usr/bin/env bash
# Failure injection (FBMALLOC_FAIL_*): the program sees NULL with errno
# ENOMEM exactly where asked, the same calls fail for the same seed, the
# size limit is honoured, every allocation entry point is covered, the
# statistics count the failures, and python3 turns them into MemoryError
# instead of crashing.
set -uo pipefail
prog=$1
. "$(dirname "$0")/lib.sh"
run() { env "$@" LD_PRELOAD="$FBMALLOC_LIB"; }

out=$(FBMALLOC_FAIL_AFTER=5 LD_PRELOAD=$FBMALLOC_LIB "$prog" 12 100)
[[ "$out" == ".....XXXXXXX" ]] && ok "FAIL_AFTER=5: $out" || bad "FAIL_AFTER=5: $out"

for how in calloc realloc aligned; do
    out=$(FBMALLOC_FAIL_AFTER=3 LD_PRELOAD=$FBMALLOC_LIB "$prog" 6 5000 $how)
    [[ "$out" == "...XXX" ]] && ok "FAIL_AFTER=3 with $how: $out" || bad "$how: $out"
done

a=$(FBMALLOC_FAIL_RATE=0.3 FBMALLOC_FAIL_SEED=7 LD_PRELOAD=$FBMALLOC_LIB "$prog" 400 100)
b=$(FBMALLOC_FAIL_RATE=30% FBMALLOC_FAIL_SEED=7 LD_PRELOAD=$FBMALLOC_LIB "$prog" 400 100)
c=$(FBMALLOC_FAIL_RATE=0.3 FBMALLOC_FAIL_SEED=8 LD_PRELOAD=$FBMALLOC_LIB "$prog" 400 100)
nx=$(tr -cd X <<<"$a" | wc -c)
if [[ "$a" == "$b" && "$a" != "$c" && $nx -gt 80 && $nx -lt 160 && "$a" != *"?"* ]]; then
    ok "FAIL_RATE=0.3: $nx of 400 failed, same seed same calls"
else
    bad "FAIL_RATE: $nx failed; a=$a b=$b c=$c"
fi

out=$(FBMALLOC_FAIL_AFTER=0 FBMALLOC_FAIL_MIN_SIZE=1000 LD_PRELOAD=$FBMALLOC_LIB "$prog" 5 100)
big=$(FBMALLOC_FAIL_AFTER=0 FBMALLOC_FAIL_MIN_SIZE=1000 LD_PRELOAD=$FBMALLOC_LIB "$prog" 5 2000)
[[ "$out" == "....." && "$big" == "XXXXX" ]] && ok "FAIL_MIN_SIZE=1000: small pass, large fail" \
    || bad "FAIL_MIN_SIZE: small=$out large=$big"

FBMALLOC_FAIL_AFTER=5 FBMALLOC_STATS=json FBMALLOC_OUTPUT="$tmp/s.json" \
    LD_PRELOAD=$FBMALLOC_LIB "$prog" 12 100 >/dev/null
n=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['injected_failures'])" "$tmp/s.json")
[[ "$n" -ge 7 ]] && ok "statistics count $n injected failures (7 seen by the program, stdio may add its buffer)" || bad "stats injected_failures=$n"

out=$(FBMALLOC_FAIL_RATE=0.5 FBMALLOC_FAIL_MIN_SIZE=50000 LD_PRELOAD=$FBMALLOC_LIB /usr/bin/python3 -S -c '
ok = bad = 0
for i in range(200):
    try:
        b = bytearray(100000); ok += 1
    except MemoryError:
        bad += 1
print(ok, bad)' 2>"$tmp/err")
rc=$?
read -r good failed <<<"$out"
if [[ $rc -eq 0 && ${failed:-0} -gt 50 && ${good:-0} -gt 50 ]]; then
    ok "python3: $failed MemoryErrors handled, $good allocations served"
else
    bad "python3 rc=$rc out='$out' err=$(head -3 "$tmp/err")"
fi

out=$(FBMALLOC_FAIL_AFTER=0 FBMALLOC_FAIL_MIN_SIZE=10000000 LD_PRELOAD=$FBMALLOC_LIB \
      /usr/bin/python3 -c 'bytearray(50000000)' 2>&1)
rc=$?
[[ $rc -eq 1 && "$out" == *MemoryError* ]] && ok "python3: uncaught MemoryError, exit 1, no crash" \
    || bad "python3 uncaught: rc=$rc $out"
exit $fail
