#!/usr/bin/env bash
# Lifetime routing (FBMALLOC_LIFETIME, src/route.c): with one object kept
# per 8 temporaries, each from its own call site, the buffers must serve
# at least 80% of the temporaries (what a perfect predictor would keep
# there), where size-only routing serves under half; in one thread, two,
# across fork, and after a phase change the same site is served again.
# Output must be the same under glibc and in every mode.
set -uo pipefail
prog=$1
. "$(dirname "$0")/lib.sh"

# field NAME LINE: the value of NAME=... in a "stats ..." line.
field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$2"; }

N=20000 K=8
# share LINE: percent of the temporaries served by the buffers.
share() { echo $(( $(field fast "$1") * 100 / $(field short "$1") )); }

# run "VAR=value ..." ARGS...: the program under the library, counting.
run() { local opts=$1; shift; env $opts FBMALLOC_STATS=json FBMALLOC_OUTPUT=/dev/null LD_PRELOAD="$FBMALLOC_LIB" "$prog" "$@"; }

for mode in mixed threads wrapper wrapper-threads; do
    want=$("$prog" $mode $N $K)
    out=$(run "" $mode $N $K)
    st=$(grep '^stats' <<<"$out")
    [[ "$(grep -v '^stats' <<<"$out")" == "$want" ]] || bad "$mode: output differs"
    s=$(share "$st")
    # long: sites learned long (a wrapper's verdicts are its callers')
    wrap=0; [[ $mode == wrapper* ]] && wrap=1
    if (( s >= 80 && $(field routed "$st") >= N * 8 / 10 &&
          ($(field long "$st") >= 1 || wrap) )); then
        ok "$mode: buffers served $s% of the temporaries, $(field routed "$st") kept objects routed to jemalloc"
    else
        bad "$mode: buffers served $s% of the temporaries ($st)"
    fi
    off=$(run FBMALLOC_LIFETIME=0 $mode $N $K | grep '^stats')
    s0=$(share "$off")
    (( s0 < 50 && $(field routed "$off") == 0 )) && ok "$mode: without routing only $s0%" \
        || bad "$mode: without routing $s0% ($off): the workload does not show the problem"
    # Through a wrapper, one return address cannot tell the kinds apart.
    if [[ $mode == wrapper* ]]; then
        site=$(run FBMALLOC_LIFETIME=site $mode $N $K | grep '^stats')
        s1=$(share "$site")
        (( s1 < 50 )) && ok "$mode: routed by the call site alone only $s1%" \
            || bad "$mode: by the call site alone $s1% ($site): the wrapper does not show the problem"
    fi
done

# Start-up pins the whole buffer for good: with no epoch ever emptying, no
# epoch is judged either; the thread moves to a fresh slot and learns
# there (src/epoch.c, slot_move).  Before that: 0.3% of the temporaries.
want=$("$prog" startup 100000 $K)
out=$(run "" startup 100000 $K)
st=$(grep '^stats' <<<"$out")
[[ "$(grep -v '^stats' <<<"$out")" == "$want" ]] || bad "startup: output differs"
s=$(share "$st")
(( s >= 80 )) && ok "startup: buffers served $s% of the temporaries after the start-up pinned the buffer" \
    || bad "startup: buffers served $s% of the temporaries ($st)"

# A real interpreter with every object through malloc: its start-up pins
# one buffer after another before its sites are known; the thread moves
# again while routing keeps learning (src/epoch.c, may_move), and looks
# through its allocation wrappers.  Before both: 0.6% from the buffers.
py=/usr/bin/python3
if [[ -x $py && -f ${FBMALLOC_SRC:-}/tests/bench/pyalloc.py ]]; then
    want=$(PYTHONMALLOC=malloc $py "$FBMALLOC_SRC/tests/bench/pyalloc.py" 3)
    got=$(PYTHONMALLOC=malloc FBMALLOC_STATS=json FBMALLOC_OUTPUT="$tmp/py.json" \
          LD_PRELOAD="$FBMALLOC_LIB" $py "$FBMALLOC_SRC/tests/bench/pyalloc.py" 3)
    pct=$($py -c 'import json, sys
d = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]
print(100 * d["fast_mallocs"] // max(1, d["fast_mallocs"] + d["backend_mallocs"]))' "$tmp/py.json")
    [[ "$got" == "$want" ]] || bad "python3 PYTHONMALLOC=malloc: output differs"
    (( pct >= 10 )) && ok "python3 PYTHONMALLOC=malloc: $pct% of its requests from the buffers" \
        || bad "python3 PYTHONMALLOC=malloc: $pct% of its requests from the buffers"
else
    echo "skip python3 PYTHONMALLOC=malloc: no $py or FBMALLOC_SRC"
fi

# A profile must not make the next run worse: gcc -O2 of one of our
# sources.  cc1's xmalloc-like sites, learned long late in the first run,
# were preset long in the next one, which then served 43% of cc1's
# requests from the buffers instead of 64%; later its xrealloc(NULL, n),
# 94% short-lived but kept long by hysteresis, did the same (47% against
# 52%, seen only with the sources at /check/work/main: the include paths'
# lengths move cc1's allocations).  Site keys are the low 16 bits of
# return addresses, so address randomisation moves which keys share a
# slot and a run's share by a few points: both runs go without it
# (setarch -R) when the system lets us, so the comparison repeats.
if command -v gcc >/dev/null && [[ -n ${FBMALLOC_BUILD:-} ]]; then
    mkdir -p "$tmp/gccprof"
    norand=()
    setarch "$(uname -m)" -R true 2>/dev/null && norand=(setarch "$(uname -m)" -R)
    gshare() {   # the share of all processes' requests from the buffers
        $py -c 'import json, sys
f = b = 0
for l in open(sys.argv[1]):
    if l.strip():
        d = json.loads(l); f += d["fast_mallocs"]; b += d["backend_mallocs"]
print(100 * f // max(1, f + b))' "$1"
    }
    for run in 1 2; do
        rm -f "$tmp/g.json"
        FBMALLOC_PROFILE="$tmp/gccprof" FBMALLOC_STATS=json FBMALLOC_OUTPUT="$tmp/g.json" \
            LD_PRELOAD="$FBMALLOC_LIB" "${norand[@]}" gcc -O2 -I"$FBMALLOC_SRC/src" -I"$FBMALLOC_SRC/include" \
            -I"$FBMALLOC_BUILD" -c "$FBMALLOC_SRC/src/leakreport.c" -o "$tmp/g.o"
        g[$run]=$(gshare "$tmp/g.json")
    done
    (( ${g[2]} * 100 >= ${g[1]} * 95 )) \
        && ok "gcc -O2 with a profile: second run ${g[2]}% from the buffers (first ${g[1]}%)" \
        || bad "gcc -O2 with a profile: second run ${g[2]}% from the buffers (first ${g[1]}%)"
else
    echo "skip gcc with a profile: no gcc or FBMALLOC_BUILD"
fi

# fork: parent and child each learn (the child inherits the verdicts).
want=$("$prog" fork $N $K | sort)
out=$(run "" fork $N $K)
[[ "$(grep -v '^stats' <<<"$out" | sort)" == "$want" ]] || bad "fork: output differs"
nok=0
while read -r st; do
    # both halves count the shorts of the whole run: the parent made
    # half of them before the fork, the child inherits those counters
    (( $(share "$st") >= 40 )) && nok=$((nok + 1))
done < <(grep '^stats' <<<"$out")
(( nok == 2 )) && ok "fork: parent and child both served by the buffers" \
    || bad "fork: $(grep '^stats' <<<"$out" | tr '\n' ' ')"

# A phase change: the site whose objects were kept now makes temporaries;
# probes notice and the buffers serve it again (small geometry: more
# epochs turn over in the same run).
out=$(run "FBMALLOC_BUFFER_SIZE=64K FBMALLOC_EPOCH_SIZE=4K" phase 40000 4 | grep '^stats')
p2=$(field phase2_fast "$out")
# (the temporaries alone are 80% of phase 2: more needs the revision)
if (( $(field forgotten "$out") >= 1 && p2 >= 40000 * 5 * 9 / 10 )); then
    ok "phase change: verdict revised, phase 2 served $p2 of 200000 from the buffers"
else
    bad "phase change: $out"
fi

# Profiles (FBMALLOC_PROFILE, src/profile.c): the second run starts with
# the verdicts: nothing kept is mispredicted, and at least as much is
# routed and served as in the first.
pdir=$tmp/prof; mkdir -p "$pdir"
first=$(run "FBMALLOC_PROFILE=$pdir" mixed $N $K | grep '^stats')
pf=$pdir/lifetime.fbprofile
if [[ -s $pf ]] && head -1 "$pf" | grep -qx 'fbmalloc-profile 1' && tail -1 "$pf" | grep -q '^end [1-9]'; then
    ok "profile saved: $(grep -c '^L ' "$pf") long site(s) by module and offset"
else
    bad "profile not saved: $(ls -l "$pdir") $(cat "$pf" 2>/dev/null | head -5)"
fi
second=$(run "FBMALLOC_PROFILE=$pdir" mixed $N $K | grep '^stats')
if (( $(field mispredicted "$second") <= $(field mispredicted "$first") &&
      $(field mispredicted "$second") == 0 &&
      $(field routed "$second") >= $(field routed "$first") &&
      $(field fast "$second") * 100 >= $(field fast "$first") * 99 )); then
    ok "second run with the profile: routed $(field routed "$second") (first $(field routed "$first")), 0 mispredicted (first $(field mispredicted "$first"))"
else
    bad "second run: $second; first: $first"
fi
# Stale, foreign, truncated, hostile files: one line, ignored, same output.
want=$("$prog" mixed 2000 $K)
good=$(cat "$pf")
hostile() {
    local what=$1
    got=$(env FBMALLOC_PROFILE="$pf" LD_PRELOAD="$FBMALLOC_LIB" "$prog" mixed 2000 $K 2>"$tmp/err" | grep -v '^stats')
    lines=$(grep -c 'lifetime profile' "$tmp/err")
    [[ "$got" == "$want" && $lines == 1 ]] && grep -q 'ignored$' "$tmp/err" \
        && ok "profile $what: one line ($(cut -c1-90 "$tmp/err")), same output" \
        || bad "profile $what: '$got' $(head -3 "$tmp/err")"
}
printf 'GARBAGE\x1b[31m\n%.0s' {1..100} >"$pf"; hostile "of garbage"
grep -v '^end' <<<"$good" >"$pf"; hostile "truncated"
sed 's|^exe .*|exe /usr/bin/someone-else|' <<<"$good" >"$pf"; hostile "of another program"
sed 's|^end .*|end 99|' <<<"$good" >"$pf"; hostile "with a wrong count"
sed 's|^L \([^ ]*\) [^ ]*|L \1 zz-not-hex|' <<<"$good" >"$pf"; hostile "with a bad offset"
head -c 9000000 /dev/zero >"$pf"; hostile "too large"
# A stale line (another build id, an offset outside the code) is skipped.
printf '%s\n' "$good" | sed 's|^L [^ ]* |L 00ff00ff |' >"$pf"
got=$(env FBMALLOC_PROFILE="$pf" LD_PRELOAD="$FBMALLOC_LIB" "$prog" mixed 2000 $K 2>"$tmp/err" | grep -v '^stats')
[[ "$got" == "$want" && ! -s "$tmp/err" ]] && ok "profile of another build: lines skipped silently" \
    || bad "stale build id: $(head -3 "$tmp/err")"
# Concurrent writers (make -j): 8 processes save at once; the file is whole.
rm -f "$pf"
for i in 1 2 3 4 5 6 7 8; do
    env FBMALLOC_PROFILE="$pdir" LD_PRELOAD="$FBMALLOC_LIB" "$prog" mixed 3000 $K >/dev/null &
done
wait
n_l=$(grep -c '^L ' "$pf"); n_end=$(sed -n 's/^end //p' "$pf")
[[ $(head -1 "$pf") == "fbmalloc-profile 1" && "$n_l" == "$n_end" && $(ls "$pdir" | wc -l) == 1 ]] \
    && ok "8 concurrent writers: one whole profile ($n_l sites), no temporary left" \
    || bad "concurrent writers: $(ls "$pdir") $(head -3 "$pf")"
# A process that learned nothing writes nothing (each /bin/true of a shell
# loop rewrote its profile at exit, 1.4 ms a process): no profile appears
# for it, and one it loaded stays the same file.
tdir="$tmp/trueprof"
mkdir -p "$tdir"
env FBMALLOC_PROFILE="$tdir" LD_PRELOAD="$FBMALLOC_LIB" /bin/true
n_new=$(ls "$tdir" | wc -l)
printf 'fbmalloc-profile 1\nexe %s\nend 0\n' "$(readlink -f /bin/true)" >"$tdir/true.fbprofile"
ino=$(stat -c %i "$tdir/true.fbprofile")
env FBMALLOC_PROFILE="$tdir" LD_PRELOAD="$FBMALLOC_LIB" /bin/true 2>"$tmp/err"
[[ $n_new == 0 && $(stat -c %i "$tdir/true.fbprofile") == "$ino" && ! -s "$tmp/err" ]] \
    && ok "a run that learned nothing: no profile written, a loaded one left as it was" \
    || bad "a run that learned nothing: $n_new new files, inode $ino -> $(stat -c %i "$tdir/true.fbprofile"), $(head -2 "$tmp/err")"

# Every mode a user may combine it with: same output, no report.
want=$("$prog" threads 5000 $K)
for opts in "FBMALLOC_LEAKS=1" "FBMALLOC_CHECK=1" "FBMALLOC_CANARY=1" \
            "FBMALLOC_CHECK=1 FBMALLOC_CANARY=1" "FBMALLOC_TRACE=$tmp/t.%p"; do
    got=$(env $opts LD_PRELOAD="$FBMALLOC_LIB" "$prog" threads 5000 $K 2>"$tmp/err" | grep -v '^stats')
    # (a leak check may say it found nothing; it must find nothing)
    [[ "$got" == "$want" ]] && ! grep -q 'leak of\|fbmalloc: .*\(free\|overrun\|underrun\)' "$tmp/err" \
        && ok "threads under $opts: same output, no report" \
        || bad "threads under $opts: '$got' $(head -3 "$tmp/err")"
done
exit $fail
