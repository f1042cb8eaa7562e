#!/usr/bin/env bash
# setuid programs (issue 13, item 2): under AT_SECURE a leak report (which
# loads libdw) must create, read or fetch nothing at paths the environment
# names: DEBUGINFOD_URLS / DEBUGINFOD_CACHE_PATH have no effect, even with
# FBMALLOC_DEBUGINFOD=1.  An unprivileged user (nobody) runs a setuid-root
# copy of a leaky, stripped program (its debug information would have to
# be fetched), with the library installed where ld.so preloads for secure
# programs: a setuid-root file in /usr/lib/x86_64-linux-gnu, named in
# LD_PRELOAD without a slash.  A control run without setuid shows that the
# same environment does reach the cache when FBMALLOC_DEBUGINFOD=1 asks
# for it (so the test can see it), and not by default.  Needs root and a
# filesystem without nosuid; skipped (exit 77) with a reason otherwise.
# Everything installed is removed at exit.
set -uo pipefail
prog=$1
skip() { echo "SKIP setuid test: $*"; exit 77; }
[[ $(id -u) -eq 0 ]] || skip "needs root (installs a setuid library)"
user=nobody
uid=$(id -u "$user" 2>/dev/null) || skip "no unprivileged user '$user'"
libdir=/usr/lib/x86_64-linux-gnu
[[ -d $libdir ]] || skip "no $libdir"
command -v setpriv >/dev/null || skip "setpriv (util-linux) not installed"
command -v strip >/dev/null || skip "strip (binutils) not installed"

work=$(mktemp -d /tmp/fbsetuid.XXXXXX)
libname=libfbmalloc-setuid-test-$$.so
cleanup() { rm -f "$libdir/$libname"; rm -rf "$work"; }
trap cleanup EXIT
chmod 755 "$work"
fail=0
ok()  { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

cp "$FBMALLOC_LIB" "$libdir/$libname" && chmod 4755 "$libdir/$libname" || skip "cannot install into $libdir"
cp "$prog" "$work/prog" && strip "$work/prog"
cp "$work/prog" "$work/prog-setuid" && chmod 4755 "$work/prog-setuid"
mkdir "$work/user" && chown "$user" "$work/user"

as_user() { setpriv --reuid="$uid" --regid="$(id -g "$user")" --clear-groups -- "$@"; }

# Can setuid work here at all (nosuid mounts, no_new_privs)?
out=$(as_user "$work/prog-setuid" 2>&1)
[[ $out == "euid 0 uid $uid"* ]] || skip "setuid programs do not run as root here: '$out'"

run() {   # run NAME SETUID(0/1) extra env...: leak report with debuginfod bait
    local name=$1 suid=$2; shift 2
    local cache=$work/user/cache-$name
    local urls="file://$work/user/srv-$name"
    mkdir -p "$work/user/srv-$name" && chown -R "$user" "$work/user/srv-$name"
    local exe=$work/prog; ((suid)) && exe=$work/prog-setuid
    env -i PATH=/usr/bin:/bin "$@" LD_PRELOAD=$libname FBMALLOC_LEAKS=1 \
        DEBUGINFOD_URLS="$urls" DEBUGINFOD_CACHE_PATH="$cache" DEBUGINFOD_VERBOSE=1 \
        setpriv --reuid="$uid" --regid="$(id -g "$user")" --clear-groups -- "$exe" \
        >"$work/$name.out" 2>"$work/$name.err"
    echo $? >"$work/$name.rc"
}
reported() { grep -q "direct leak of 100 bytes" "$work/$1.err"; }

for opt in default FBMALLOC_DEBUGINFOD=1; do
    name=suid-${opt%%=*}
    if [[ $opt == default ]]; then run "$name" 1; else run "$name" 1 "$opt"; fi
    if ! grep -q "^euid 0 uid $uid" "$work/$name.out" || ! reported "$name"; then
        bad "setuid run ($opt): not under fbmalloc as root? out: $(cat "$work/$name.out") err: $(head -5 "$work/$name.err")"
    elif [[ -e $work/user/cache-$name ]] || grep -qi debuginfod "$work/$name.err"; then
        bad "setuid run ($opt): the debuginfod client ran: $(ls -la "$work/user/cache-$name" 2>&1 | head -3) $(grep -i debuginfod "$work/$name.err" | head -3)"
    else
        ok "setuid run ($opt): leak reported as root, nothing created at DEBUGINFOD_CACHE_PATH, no debuginfod"
    fi
done

# Controls, not setuid: by default nothing either; with the opt-in the
# client really runs (so the checks above can see it when it does).
run plain-default 0
[[ ! -e $work/user/cache-plain-default ]] && reported plain-default \
    && ok "plain run (default): leak reported, debuginfod not used" \
    || bad "plain run (default): $(ls "$work/user" ) $(head -3 "$work/plain-default.err")"
run plain-optin 0 FBMALLOC_DEBUGINFOD=1
[[ -e $work/user/cache-plain-optin ]] && reported plain-optin \
    && ok "plain run (FBMALLOC_DEBUGINFOD=1): the client ran (cache created), as asked" \
    || bad "plain run (opt-in): the client did not run, so the test cannot see it: $(head -3 "$work/plain-optin.err")"
exit $fail
