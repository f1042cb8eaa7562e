#!/usr/bin/env bash
# Heap snapshots: fbmalloc_snapshot(fd) and the snapshot signal write the
# live heap grouped by call site (largest first, function names), in text,
# JSON and folded-stack formats; the program goes on; without tracking the
# signal keeps its default meaning and the API says -1.
set -uo pipefail
prog=$1
. "$(dirname "$0")/lib.sh"

out=$(FBMALLOC_LEAKS=1 LD_PRELOAD=$FBMALLOC_LIB "$prog" api 2>/dev/null)
if grep -q "live: 100,000 bytes in 100 blocks" <<<"$out" && grep -q "#0 keep_many" <<<"$out" \
   && grep -q "live: 5,000 bytes in 1 block" <<<"$out" && grep -q "#0 keep_one" <<<"$out" \
   && [[ $(grep -n "keep_many" <<<"$out" | head -1 | cut -d: -f1) -lt $(grep -n "keep_one" <<<"$out" | head -1 | cut -d: -f1) ]] \
   && tail -1 <<<"$out" | grep -q done; then
    ok "fbmalloc_snapshot(1): both sites, largest first, program went on"
else
    bad "api snapshot: $out"
fi

FBMALLOC_LEAKS=1 FBMALLOC_OUTPUT="$tmp/snap.%p" LD_PRELOAD=$FBMALLOC_LIB "$prog" signal >"$tmp/out"
files=("$tmp"/snap.*)
if grep -q done "$tmp/out" && grep -q "heap snapshot for pid" "${files[0]}" \
   && grep -q "live: 100,000 bytes in 100 blocks" "${files[0]}"; then
    ok "SIGUSR2: snapshot written to FBMALLOC_OUTPUT, program went on"
else
    bad "signal snapshot: $(cat "$tmp/out" "${files[@]}" 2>/dev/null | head -20)"
fi

out=$(FBMALLOC_LEAKS=1 FBMALLOC_REPORT_FORMAT=json LD_PRELOAD=$FBMALLOC_LIB "$prog" api 2>/dev/null | head -1)
if /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])["fbmalloc_heap_snapshot"]
top = d["live"][0]
assert top["kind"] == "live" and top["bytes"] == 100000 and top["blocks"] == 100, top
assert top["stack"][0]["function"] == "keep_many", top["stack"][0]
assert d["summary"]["blocks"] >= 101
' "$out"; then ok "JSON snapshot"; else bad "JSON snapshot: $out"; fi

out=$(FBMALLOC_LEAKS=1 FBMALLOC_REPORT_FORMAT=folded LD_PRELOAD=$FBMALLOC_LIB "$prog" api 2>/dev/null)
if grep -qE "^_start;.*main;keep_many 100000$" <<<"$out" && grep -qE ";keep_one 5000$" <<<"$out"; then
    ok "folded stacks (outermost first, weighted by bytes)"
else
    bad "folded: $out"
fi

out=$(LD_PRELOAD=$FBMALLOC_LIB "$prog" api 2>&1); rc=$?
[[ $rc -eq 3 ]] && ok "without tracking fbmalloc_snapshot returns -1" || bad "untracked api: rc=$rc $out"
LD_PRELOAD=$FBMALLOC_LIB "$prog" signal >/dev/null 2>&1; rc=$?
[[ $rc -eq $((128 + 12)) ]] && ok "without tracking SIGUSR2 keeps its default action" || bad "untracked signal rc=$rc"
exit $fail
