# shellcheck shell=bash
# tests/real/common.sh -- shared harness for the real-binary tests.
#
# Sourced (never run) by tests/real/*.sh.  Each test defines a bash function
# `workload` and calls `fb_main`, which:
#   1. runs `workload` once plainly and once with
#        LD_PRELOAD=$FBMALLOC_LIB FBMALLOC_STATS=json
#        FBMALLOC_OUTPUT=<tmp>/stats/stats.%p.json
#      in the SAME absolute working directory (so path-dependent output such
#      as "Initialized empty Git repository in ..." is identical);
#   2. compares exit code and stdout byte for byte (plus any files named in
#      FB_COMPARE, relative to the working directory);
#   3. checks that the preloaded run's stderr holds no line from fbmalloc;
#   4. checks the stats files: every one parses as one JSON object with the
#      documented keys and pid == the pid in its name, bad_frees == 0 in each,
#      the sum of fast_mallocs > 0, and at least FB_MIN_STATS files exist.
#
# FB_EXTRA_MODES (an array the script may set) adds passes, each compared
# with the plain one like the preloaded pass (exit code, stdout, FB_COMPARE
# files, no fbmalloc line on stderr: reports go to files), and each bounded
# in time: at most FB_MAX_RATIO (default 6) times the plain pass, plus 2 s
# for a loaded machine; the ratio is logged.  Modes:
#   leaks   FBMALLOC_LEAKS=1 (call-stack capture on every allocation)
#   check   FBMALLOC_CHECK=1 FBMALLOC_CANARY=1
# FB_REAL_MODES="leaks check" (environment) overrides the script's.
#
# Inside `workload`, prefix every command that should run under the
# allocator with `fb` (e.g. `fb git commit -q -m x`).  Helper commands that
# only prepare or summarise (sha256sum, sed, ...) run without `fb`, so every
# stats file comes from the program under test.  The working directory is
# $PWD; read-only inputs prepared beforehand live in $FB_IN.  The workload
# runs in a fresh bash (for the timeout): it sees every function of the
# script, but only the variables the script exports.
#
# Environment: FBMALLOC_LIB (required unless $FBMALLOC_BUILD/libfbmalloc.so
# exists), FBMALLOC_REAL_TIMEOUT (seconds per run, default 240),
# FBMALLOC_REAL_KEEP=1 (keep the temp dir for inspection).
# FBMALLOC_REAL_NO_STATS=1 skips step 4 -- only for trying the harness with
# another malloc (e.g. FBMALLOC_LIB=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2);
# never set it in CI.
#
# Exit codes: 0 pass, 77 skip (program not installed and not in CI),
# 1 fail (with a message and a diff excerpt).

set -euo pipefail
export LC_ALL=C
export TZ=UTC
unset LD_PRELOAD || true

FB_NAME=${FB_NAME:-$(basename "$0" .sh)}
FB_PY=/usr/bin/python3          # the parser; never the pyenv one
FB_MIN_STATS=${FB_MIN_STATS:-1}
FB_COMPARE=()
FB_EXTRA_MODES=()

fb_log()  { printf '%s: %s\n' "real-$FB_NAME" "$*" >&2; }
fb_fail() { printf 'FAIL real-%s: %s\n' "$FB_NAME" "$*" >&2; exit 1; }

# fb_need CMD PACKAGE: the program must exist; if not, skip outside CI, fail
# in CI (a green CI must not hide a missing install step in scripts/setup).
fb_need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        if [[ -n ${CI:-} ]]; then
            fb_fail "'$1' not found: scripts/setup must install Debian package '$2'"
        fi
        printf 'SKIP real-%s: %s not installed (apt-get install %s)\n' "$FB_NAME" "$1" "$2" >&2
        exit 77
    fi
}

fb_need "$FB_PY" python3
fb_need diff diffutils
fb_need timeout coreutils

if [[ -z ${FBMALLOC_LIB:-} ]]; then
    for cand in "${FBMALLOC_BUILD:-}/libfbmalloc.so" \
                "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/libfbmalloc.so"; do
        if [[ -f $cand ]]; then FBMALLOC_LIB=$cand; break; fi
    done
fi
[[ -n ${FBMALLOC_LIB:-} ]] || fb_fail "FBMALLOC_LIB is not set and no build/libfbmalloc.so was found"
[[ -f $FBMALLOC_LIB ]] || fb_fail "FBMALLOC_LIB=$FBMALLOC_LIB does not exist"
case $FBMALLOC_LIB in /*) ;; *) FBMALLOC_LIB=$(cd "$(dirname "$FBMALLOC_LIB")" && pwd)/$(basename "$FBMALLOC_LIB") ;; esac
export FBMALLOC_LIB

FB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/fbreal-$FB_NAME.XXXXXX")
trap '[[ -n ${FBMALLOC_REAL_KEEP:-} ]] || rm -rf "$FB_TMP"' EXIT
FB_IN=$FB_TMP/in
FB_STATS=$FB_TMP/stats
FB_REPORTS=$FB_TMP/reports      # leak and check reports of the extra modes
mkdir -p "$FB_IN" "$FB_STATS" "$FB_REPORTS"
export FB_IN FB_STATS FB_REPORTS

# Run "$@" under the allocator in the preloaded passes, plainly otherwise.
fb() {
    case $FB_MODE in
    pre)
        LD_PRELOAD=$FBMALLOC_LIB FBMALLOC_STATS=json \
            FBMALLOC_OUTPUT=$FB_STATS/stats.%p.json "$@" ;;
    leaks)
        LD_PRELOAD=$FBMALLOC_LIB FBMALLOC_LEAKS=1 \
            FBMALLOC_OUTPUT=$FB_REPORTS/leaks.%p "$@" ;;
    check)
        LD_PRELOAD=$FBMALLOC_LIB FBMALLOC_CHECK=1 FBMALLOC_CANARY=1 \
            FBMALLOC_OUTPUT=$FB_REPORTS/check.%p "$@" ;;
    *)
        "$@" ;;
    esac
}

fb_describe_rc() {
    local rc=$1
    if (( rc == 124 )); then echo "$rc (timed out after ${FBMALLOC_REAL_TIMEOUT:-240}s)"
    elif (( rc > 128 )); then echo "$rc (killed by signal $(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128))))"
    else echo "$rc"; fi
}

# fb_run_once MODE: run `workload` in $FB_TMP/w; results in $FB_TMP/MODE.*
fb_run_once() {
    local mode=$1 rc=0 start end
    rm -rf "$FB_TMP/w"
    mkdir "$FB_TMP/w"
    start=$(date +%s.%N)
    (
        cd "$FB_TMP/w"
        export FB_MODE=$mode
        # Every function of the script is visible in the workload; plain
        # variables it reads must be exported by the script.
        mapfile -t fns < <(compgen -A function)
        export -f "${fns[@]}"
        # A fresh, unpreloaded bash runs the workload; only `fb` commands
        # see LD_PRELOAD.
        exec timeout -k 10 "${FBMALLOC_REAL_TIMEOUT:-240}" bash -c 'set -euo pipefail; workload'
    ) >"$FB_TMP/$mode.out" 2>"$FB_TMP/$mode.err" </dev/null || rc=$?
    end=$(date +%s.%N)
    echo "$rc" >"$FB_TMP/$mode.rc"
    awk -v a="$start" -v b="$end" 'BEGIN{printf "%.3f\n", b-a}' >"$FB_TMP/$mode.time"
    mv "$FB_TMP/w" "$FB_TMP/w.$mode"
    fb_log "$mode run: exit $(fb_describe_rc "$rc"), $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}')s, stdout $(wc -c <"$FB_TMP/$mode.out") bytes"
}

# fb_diff_excerpt A B: at most 40 lines of unified diff (or a cmp line).
fb_diff_excerpt() {
    local out
    out=$(timeout 60 diff -u --label plain --label preloaded "$1" "$2" 2>&1 | head -n 40) || true
    if [[ -z $out ]]; then out=$(cmp "$1" "$2" 2>&1 | head -n 3) || true; fi
    printf '%s\n' "$out"
}

fb_show_stderr() {
    local f=$FB_TMP/$1.err
    if [[ -s $f ]]; then
        echo "--- stderr of the $1 run (first 20 lines) ---"
        head -n 20 "$f"
    fi
}

fb_check_stats() {
    "$FB_PY" - "$FB_STATS" "$FB_MIN_STATS" <<'EOF'
import glob, json, os, re, sys
d, min_files = sys.argv[1], int(sys.argv[2])
keys = ["fbmalloc", "pid", "fast_mallocs", "fast_bytes", "fast_frees",
        "backend_mallocs", "backend_bytes", "backend_frees", "remote_frees",
        "epochs_reset", "epochs_pinned", "buffer_full", "threads", "bad_frees",
        "live_bytes", "peak_live_bytes", "size_hist"]
errors, stats = [], []
files = sorted(glob.glob(os.path.join(d, "*")))
for path in files:
    name = os.path.basename(path)
    m = re.fullmatch(r"stats\.(\d+)\.json", name)
    if not m:
        errors.append(f"{name}: unexpected file name (FBMALLOC_OUTPUT was stats.%p.json)")
        continue
    with open(path, "rb") as f:
        raw = f.read()
    lines = raw.decode("utf-8", "replace").splitlines()
    if len(lines) != 1 or not raw.endswith(b"\n"):
        errors.append(f"{name}: expected exactly one newline-terminated line, got {len(lines)} line(s): {raw[:200]!r}")
        if not lines:
            continue
    try:
        obj = json.loads(lines[0])
    except ValueError as e:
        errors.append(f"{name}: not JSON ({e}): {lines[0][:200]!r}")
        continue
    if not isinstance(obj, dict):
        errors.append(f"{name}: not a JSON object")
        continue
    missing = [k for k in keys if k not in obj]
    if missing:
        errors.append(f"{name}: missing keys {missing}")
        continue
    bad = [k for k in keys[1:-1] if not isinstance(obj[k], int) or isinstance(obj[k], bool) or obj[k] < 0]
    if bad or not isinstance(obj["fbmalloc"], str):
        errors.append(f"{name}: keys not non-negative integers: {bad or ['fbmalloc']}")
        continue
    h = obj["size_hist"]
    if not (isinstance(h, list) and len(h) == 48 and all(isinstance(x, int) and x >= 0 for x in h)):
        errors.append(f"{name}: size_hist is not an array of 48 counts")
    if obj["pid"] != int(m.group(1)):
        errors.append(f"{name}: pid {obj['pid']} differs from the pid in the file name")
    if obj["bad_frees"] != 0:
        errors.append(f"{name}: bad_frees = {obj['bad_frees']}")
    # The figures must agree with each other (issue 13, item 10): the peak
    # is a high-water mark of the live figure, the histogram counts every
    # allocation, cross-thread frees are buffer frees, nothing is freed
    # from the buffers that was not allocated there, and the live bytes
    # never exceed what was ever handed out (a usable size is at most
    # 1.25 x the request + 16 bytes in every size class).
    agree = [
        ("peak_live_bytes >= live_bytes", obj["peak_live_bytes"] >= obj["live_bytes"]),
        ("sum(size_hist) == fast_mallocs + backend_mallocs",
         isinstance(h, list) and sum(h) == obj["fast_mallocs"] + obj["backend_mallocs"]),
        ("remote_frees <= fast_frees <= fast_mallocs",
         obj["remote_frees"] <= obj["fast_frees"] <= obj["fast_mallocs"]),
        ("fast_bytes <= 4064 * fast_mallocs", obj["fast_bytes"] <= 4064 * obj["fast_mallocs"]),
        ("peak_live_bytes <= bytes ever allocated (as usable sizes)",
         obj["peak_live_bytes"] <= obj["fast_bytes"] + 16 * obj["fast_mallocs"]
         + 1.25 * obj["backend_bytes"] + 16 * obj["backend_mallocs"] + 4096),
    ]
    for what, good in agree:
        if not good:
            errors.append(f"{name}: figures disagree: not {what}: {lines[0][:400]}")
    stats.append(obj)
total = {k: sum(o[k] for o in stats) for k in keys[2:-1]}
summary = (f"{len(stats)} stats file(s); sum fast_mallocs={total.get('fast_mallocs', 0)} "
           f"backend_mallocs={total.get('backend_mallocs', 0)} remote_frees={total.get('remote_frees', 0)} "
           f"epochs_reset={total.get('epochs_reset', 0)} buffer_full={total.get('buffer_full', 0)} "
           f"max threads={max((o['threads'] for o in stats), default=0)}")
if len(files) < min_files:
    errors.append(f"only {len(files)} stats file(s) in {d}, expected at least {min_files} "
                  "(one per preloaded process that exits normally)")
if stats and total["fast_mallocs"] <= 0:
    errors.append("sum of fast_mallocs is 0: the fast path (per-thread buffers) was never taken")
if not files:
    errors.append("no stats file was written (FBMALLOC_STATS=json, FBMALLOC_OUTPUT=.../stats.%p.json)")
print(summary)
for e in errors:
    print("  " + e)
sys.exit(1 if errors else 0)
EOF
}

fb_main() {
    [[ $(type -t workload) == function ]] || fb_fail "script defines no workload function"
    fb_run_once plain
    fb_run_once pre

    local prc src fails=()
    prc=$(<"$FB_TMP/plain.rc")
    src=$(<"$FB_TMP/pre.rc")
    local msg=""

    if [[ $prc != 0 ]]; then
        msg+=$'\n'"the PLAIN run (no LD_PRELOAD) exited $(fb_describe_rc "$prc"): the workload itself is broken"$'\n'
        msg+=$(fb_show_stderr plain)$'\n'
        fails+=(plain-exit)
    fi
    if [[ $prc != "$src" ]]; then
        msg+=$'\n'"exit code differs: plain $(fb_describe_rc "$prc"), preloaded $(fb_describe_rc "$src")"$'\n'
        msg+=$(fb_show_stderr pre)$'\n'
        fails+=(exit-code)
    fi
    if ! cmp -s "$FB_TMP/plain.out" "$FB_TMP/pre.out"; then
        msg+=$'\n'"stdout differs (plain $(wc -c <"$FB_TMP/plain.out") bytes, preloaded $(wc -c <"$FB_TMP/pre.out") bytes):"$'\n'
        msg+=$(fb_diff_excerpt "$FB_TMP/plain.out" "$FB_TMP/pre.out")$'\n'
        fails+=(stdout)
    fi
    local f
    for f in "${FB_COMPARE[@]}"; do
        if [[ ! -e $FB_TMP/w.plain/$f && ! -e $FB_TMP/w.pre/$f ]]; then
            msg+=$'\n'"output file $f was produced by neither run"$'\n'
            fails+=("file:$f")
        elif ! cmp -s "$FB_TMP/w.plain/$f" "$FB_TMP/w.pre/$f"; then
            msg+=$'\n'"output file $f differs:"$'\n'
            msg+=$(fb_diff_excerpt "$FB_TMP/w.plain/$f" "$FB_TMP/w.pre/$f")$'\n'
            fails+=("file:$f")
        fi
    done
    if grep -E -n -m 5 '^(fbmalloc|\{"fbmalloc")' "$FB_TMP/pre.err" >"$FB_TMP/fbmsg" 2>/dev/null; then
        msg+=$'\n'"stderr of the preloaded run has output from fbmalloc:"$'\n'"$(cat "$FB_TMP/fbmsg")"$'\n'
        fails+=(stderr)
    fi
    if ! cmp -s "$FB_TMP/plain.err" "$FB_TMP/pre.err"; then
        # Not a failure by itself (programs may print timing or progress),
        # but shown because it is the first place to look.
        fb_log "note: stderr differs between the runs:"
        fb_diff_excerpt "$FB_TMP/plain.err" "$FB_TMP/pre.err" | sed 's/^/    /' >&2
    fi
    if [[ -n ${FBMALLOC_REAL_NO_STATS:-} ]]; then
        fb_log "FBMALLOC_REAL_NO_STATS set: stats files not checked"
    else
        local out
        if out=$(fb_check_stats 2>&1); then
            fb_log "stats: $out"
        else
            msg+=$'\n'"stats check failed: $out"$'\n'
            fails+=(stats)
        fi
    fi

    local mode ratio
    if [[ -n ${FB_REAL_MODES:-} ]]; then
        read -r -a FB_EXTRA_MODES <<<"$FB_REAL_MODES"
    fi
    for mode in "${FB_EXTRA_MODES[@]}"; do
        fb_run_once "$mode"
        src=$(<"$FB_TMP/$mode.rc")
        if [[ $prc != "$src" ]]; then
            msg+=$'\n'"[$mode] exit code differs: plain $(fb_describe_rc "$prc"), $mode $(fb_describe_rc "$src")"$'\n'
            msg+=$(fb_show_stderr "$mode")$'\n'
            fails+=("$mode:exit-code")
        fi
        if ! cmp -s "$FB_TMP/plain.out" "$FB_TMP/$mode.out"; then
            msg+=$'\n'"[$mode] stdout differs:"$'\n'
            msg+=$(fb_diff_excerpt "$FB_TMP/plain.out" "$FB_TMP/$mode.out")$'\n'
            fails+=("$mode:stdout")
        fi
        for f in "${FB_COMPARE[@]}"; do
            if ! cmp -s "$FB_TMP/w.plain/$f" "$FB_TMP/w.$mode/$f"; then
                msg+=$'\n'"[$mode] output file $f differs"$'\n'
                fails+=("$mode:file:$f")
            fi
        done
        if grep -E -n -m 5 '^(fbmalloc|\{"fbmalloc")' "$FB_TMP/$mode.err" >"$FB_TMP/fbmsg" 2>/dev/null; then
            msg+=$'\n'"[$mode] stderr has output from fbmalloc:"$'\n'"$(cat "$FB_TMP/fbmsg")"$'\n'
            fails+=("$mode:stderr")
        fi
        ratio=$(awk -v p="$(<"$FB_TMP/plain.time")" -v m="$(<"$FB_TMP/$mode.time")" \
                'BEGIN{printf "%.2f", m / (p > 0.001 ? p : 0.001)}')
        fb_log "$mode: $(<"$FB_TMP/$mode.time")s vs plain $(<"$FB_TMP/plain.time")s: ${ratio}x"
        if ! awk -v p="$(<"$FB_TMP/plain.time")" -v m="$(<"$FB_TMP/$mode.time")" \
                -v r="${FB_MAX_RATIO:-6}" 'BEGIN{exit !(m <= p * r + 2)}'; then
            msg+=$'\n'"[$mode] took ${ratio}x the plain run (bound ${FB_MAX_RATIO:-6}x + 2 s)"$'\n'
            fails+=("$mode:time")
        fi
    done
    if [[ -n "$(ls -A "$FB_REPORTS")" ]]; then
        fb_log "reports written: $(ls "$FB_REPORTS" | tr '\n' ' ')"
    fi

    if (( ${#fails[@]} )); then
        {
            printf 'FAIL real-%s: %s\n' "$FB_NAME" "${fails[*]}"
            printf '%s\n' "$msg"
            echo "reproduce: FBMALLOC_LIB=$FBMALLOC_LIB FBMALLOC_REAL_KEEP=1 bash $(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
            echo "(FBMALLOC_REAL_KEEP=1 keeps the temp dir: {plain,pre}.{out,err,rc}, w.plain/, w.pre/, stats/)"
        } >&2
        exit 1
    fi
    echo "PASS real-$FB_NAME"
}
