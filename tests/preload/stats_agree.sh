#!/usr/bin/env bash
# Statistics agree with themselves (issue 13, item 10): stats_agree under
# every debugging mode, and the exit report of real programs (bash, whose
# "echo hi" showed a peak below the live figure; python3, and python3 with
# every object from malloc, whose requests routed by lifetime were once
# counted twice), in each mode.
set -uo pipefail
prog=$1
. "$(dirname "$0")/lib.sh"
modes=(none FBMALLOC_CHECK=1 FBMALLOC_CANARY=1 FBMALLOC_CHECK=1,FBMALLOC_CANARY=1 FBMALLOC_LEAKS=1)
for mode in "${modes[@]}"; do
    vars=(); [[ $mode == none ]] || IFS=, read -r -a vars <<<"$mode"
    out=$(env "${vars[@]}" FBMALLOC_STATS=json FBMALLOC_OUTPUT=/dev/null LD_PRELOAD="$FBMALLOC_LIB" "$prog" 2>"$tmp/err")
    [[ $? -eq 0 && ! -s "$tmp/err" ]] && ok "$mode: $out" || bad "$mode: $out $(head -c 1000 "$tmp/err")"
    for cmd in "bash -c 'echo hi; x=\$(seq 1000 | sort -r | head -1)'" \
               "/usr/bin/python3 -c 'import json; json.dumps({i: str(i) * (i % 50) for i in range(50000)})'" \
               "PYTHONMALLOC=malloc /usr/bin/python3 -c 'import json; json.dumps({i: str(i) * (i % 50) for i in range(50000)})'"; do
        rm -f "$tmp"/s.*
        env "${vars[@]}" FBMALLOC_STATS=json FBMALLOC_OUTPUT="$tmp/s.%p" LD_PRELOAD="$FBMALLOC_LIB" \
            bash -c "$cmd" >/dev/null 2>"$tmp/err"
        msg=$(/usr/bin/python3 - "$tmp" <<'PY'
import glob, json, sys
bad = []
files = glob.glob(sys.argv[1] + "/s.*")
for f in files:
    # with FBMALLOC_LEAKS the leak report shares the file
    o = json.loads(next(l for l in open(f).read().splitlines() if l.startswith('{"fbmalloc"')))
    h = sum(o["size_hist"])
    if o["peak_live_bytes"] < o["live_bytes"]: bad.append(f"peak {o['peak_live_bytes']} < live {o['live_bytes']}")
    if h != o["fast_mallocs"] + o["backend_mallocs"]: bad.append("histogram != mallocs")
    if not o["remote_frees"] <= o["fast_frees"] <= o["fast_mallocs"]: bad.append("frees > mallocs")
    # each request counted routed by lifetime or sent away by a full buffer went to jemalloc, once
    if o["routed_long"] + o["buffer_full"] > o["backend_mallocs"]:
        bad.append(f"routed {o['routed_long']} + full {o['buffer_full']} > jemalloc's {o['backend_mallocs']}")
print(f"{len(files)} reports agree" if files and not bad else "; ".join(bad) or "no report")
sys.exit(1 if bad or not files else 0)
PY
)
        [[ $? -eq 0 ]] && ok "$mode ${cmd%% *}: $msg" || bad "$mode $cmd: $msg"
    done
done
exit $fail
