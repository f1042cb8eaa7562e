#!/usr/bin/env bash
# A real install, used from where it landed: a separate install-only build
# (-Dtests=false) installed with `meson install` into a temporary prefix,
# then each piece used from there as a user would:
#   - libfbmalloc.so.0.1.0 with SONAME libfbmalloc.so.0 and its symlinks;
#   - a C program built with `pkg-config --cflags --libs fbmalloc` calling
#     fbmalloc_leak_check() (fbmalloc.h from the prefix);
#   - `man -l` on fbmalloc(1) (every option of the table) and fbmalloc(3)
#     (every function of fbmalloc.h), with no roff warnings;
#   - the installed launcher `fbmalloc` on real programs (python3, ls),
#     loading the installed library and not the build tree, also through a
#     symlink and after the prefix is moved; fbmalloc-trace from the prefix.
set -uo pipefail
src=$FBMALLOC_SRC
. "$src/tests/preload/lib.sh"
prefix=$tmp/prefix

# meson's own variables from the test run must not leak into the nested build
unset MESON_TEST_ITERATION MALLOC_PERTURB_ ASAN_OPTIONS UBSAN_OPTIONS
if ! meson setup "$tmp/b" "$src" --prefix="$prefix" --buildtype=release \
        -Dtests=false >"$tmp/setup.log" 2>&1 \
   || ! ninja -C "$tmp/b" >"$tmp/ninja.log" 2>&1 \
   || ! meson install -C "$tmp/b" --quiet >"$tmp/install.log" 2>&1; then
    bad "install build failed: $(tail -20 "$tmp"/*.log)"
    exit 1
fi
ok "meson setup --prefix, ninja, meson install"

libdir=$(meson introspect "$tmp/b" --buildoptions | python3 -c '
import json, sys
print({o["name"]: o["value"] for o in json.load(sys.stdin)}["libdir"])')
[[ $libdir == /* ]] || libdir=$prefix/$libdir
real=$libdir/libfbmalloc.so.0.1.0
soname=$(readelf -d "$real" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
if [[ -f $real && $soname == libfbmalloc.so.0 \
      && $(readlink "$libdir/libfbmalloc.so.0") == libfbmalloc.so.0.1.0 \
      && $(readlink -f "$libdir/libfbmalloc.so") == "$real" ]]; then
    ok "library: $real, SONAME $soname, .so.0 and .so symlinks"
else
    bad "library: $(ls -la "$libdir" 2>&1) soname '$soname'"
fi
for f in include/fbmalloc.h bin/fbmalloc bin/fbmalloc-trace bin/fbmalloc-report \
         share/man/man1/fbmalloc.1 share/man/man3/fbmalloc.3; do
    [[ -f $prefix/$f ]] || bad "missing $prefix/$f"
done
[[ -x $prefix/bin/fbmalloc && -x $prefix/bin/fbmalloc-trace && -x $prefix/bin/fbmalloc-report ]] \
    && ok "launcher and trace reader installed executable" || bad "bin not executable"
if grep -rqs "$src\|$FBMALLOC_BUILD" "$prefix/bin" "$libdir/pkgconfig"; then
    bad "installed files name the source or build tree: $(grep -rl "$src\|$FBMALLOC_BUILD" "$prefix/bin" "$libdir/pkgconfig")"
else
    ok "nothing installed names the source or build tree"
fi

# pkg-config: a program that links fbmalloc and asks it for a leak check.
export PKG_CONFIG_PATH=$libdir/pkgconfig
flags=$(pkg-config --cflags --libs fbmalloc 2>&1)
cat >"$tmp/leak.c" <<'C'
#include <fbmalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile keep;

/* Leaks three blocks; the last pointer may linger in a register or a dead
 * stack slot (the scan is conservative), so scrub the stack afterwards. */
static __attribute__((noinline)) void lose(void)
{
    for (int i = 0; i < 3; i++) {
        char *p = malloc(1000);
        memset(p, i, 1000);
        keep = p;
        keep = NULL;
    }
}

static __attribute__((noinline)) void scrub(void)
{
    volatile char junk[4096];
    memset((char *)junk, 0, sizeof junk);
}

int main(void)
{
    lose();
    scrub();
    printf("version %s, leaked %ld\n", fbmalloc_version(), fbmalloc_leak_check());
    return 0;
}
C
if cc -O0 -g "$tmp/leak.c" -o "$tmp/leak" $flags 2>"$tmp/cc.err"; then
    ok "cc leak.c \$(pkg-config --cflags --libs fbmalloc): $flags"
    out=$(LD_LIBRARY_PATH=$libdir FBMALLOC_LEAKS=1 "$tmp/leak" 2>"$tmp/err")
    need=$(LD_LIBRARY_PATH=$libdir ldd "$tmp/leak" | awk '/libfbmalloc/ {print $3}')
    n=-1
    [[ $out =~ ^version\ [0-9.]+,\ leaked\ ([0-9]+)$ ]] && n=${BASH_REMATCH[1]}
    if [[ $n -ge 2 && $need == "$libdir/libfbmalloc.so.0" ]] \
       && grep -q "direct leak of [0-9,]* bytes in $n blocks" "$tmp/err"; then
        ok "linked program: '$out', report from the installed library ($need)"
    else
        bad "linked program: '$out' needs '$need': $(head -5 "$tmp/err")"
    fi
else
    bad "compile with pkg-config flags '$flags': $(cat "$tmp/cc.err")"
fi

# man pages: rendered without warnings, and complete.
for page in man1/fbmalloc.1 man3/fbmalloc.3; do
    f=$prefix/share/man/$page
    MANWIDTH=80 man --warnings -l "$f" >"$tmp/page.txt" 2>"$tmp/man.err"
    if [[ -s $tmp/page.txt && ! -s $tmp/man.err ]]; then
        ok "man -l $page: $(wc -l <"$tmp/page.txt") lines, no warnings"
    else
        bad "man -l $page: $(head -5 "$tmp/man.err")"
    fi
    if [[ $page == man1/* ]]; then
        missing=""
        for n in $("$FBMALLOC_BUILD/fbmalloc-options" --names); do
            grep -q "FBMALLOC_$n (--$(tr 'A-Z_' 'a-z-' <<<"$n"))" "$tmp/page.txt" || missing+=" $n"
        done
        for flag in --leaks --leaks-exitcode --json --pprof --help; do
            grep -q -- "$flag" "$tmp/page.txt" || missing+=" $flag"
        done
        [[ -z $missing ]] && ok "fbmalloc(1) documents every option and launcher flag" \
            || bad "fbmalloc(1) lacks:$missing"
    else
        missing=""
        for fn in $(grep -o 'fbmalloc_[a-z_]*(' "$prefix/include/fbmalloc.h" | tr -d '(' | sort -u); do
            grep -q "$fn(" "$tmp/page.txt" || missing+=" $fn"
        done
        [[ -z $missing ]] && ok "fbmalloc(3) documents every function of fbmalloc.h" \
            || bad "fbmalloc(3) lacks:$missing"
    fi
done

# The installed launcher on real programs.
fb=$prefix/bin/fbmalloc
maps() { "$1" -- cat /proc/self/maps | awk '/libfbmalloc/ {print $6}' | sort -u; }
got=$(maps "$fb")
[[ $got == "$real" ]] && ok "installed launcher preloads $got" \
    || bad "installed launcher preloads '$got', not $real"
py='import json; print(len(json.dumps(list(range(20000)))))'
want=$(python3 -c "$py")
out=$("$fb" --stats -- python3 -c "$py" 2>"$tmp/err")
[[ $out == "$want" ]] && grep -q "live bytes" "$tmp/err" \
    && ok "fbmalloc --stats -- python3: same output, statistics" \
    || bad "fbmalloc --stats python3: '$out' $(head -3 "$tmp/err")"
"$fb" --help >"$tmp/help" 2>&1
grep -q "^usage: fbmalloc " "$tmp/help" && grep -q "FBMALLOC_BUFFER_SIZE" "$tmp/help" \
    && ok "fbmalloc --help from the installed helper" || bad "help: $(head -3 "$tmp/help")"
"$fb" --leaks -- "$tmp/leak" >/dev/null 2>"$tmp/err"
rc=$?
[[ $rc -eq 23 ]] && grep -q "direct leak" "$tmp/err" \
    && ok "fbmalloc --leaks: exit status 23 on a leaky program" || bad "--leaks rc=$rc"
"$fb" --no-such-option -- true 2>"$tmp/err"
[[ $? -eq 2 ]] && grep -q "^fbmalloc: unknown option --no-such-option" "$tmp/err" \
    && ok "unknown launcher option: exit 2, one line" || bad "bad option: $(cat "$tmp/err")"
mkdir "$tmp/path"; ln -s "$fb" "$tmp/path/fbmalloc"
got=$(PATH=$tmp/path:$PATH maps fbmalloc)
[[ $got == "$real" ]] && ok "through a symlink on PATH: preloads the installed library" \
    || bad "symlinked launcher preloads '$got'"
"$fb" --trace="$tmp/t.%p" -- ls / >/dev/null
"$prefix/bin/fbmalloc-trace" summary "$tmp"/t.* >"$tmp/sum" 2>&1
grep -qi "events" "$tmp/sum" && ok "installed fbmalloc-trace reads the log" \
    || bad "fbmalloc-trace: $(head -3 "$tmp/sum")"

"$fb" --leaks=all --json --output="$tmp/leaks.json" -- "$tmp/leak" 2>/dev/null
"$prefix/bin/fbmalloc-report" flame "$tmp/leaks.json" -o "$tmp/leaks.svg" 2>"$tmp/err"
grep -q "<title>lose: 3,000 bytes" "$tmp/leaks.svg" 2>/dev/null \
    && ok "installed fbmalloc-report draws a flame graph of an installed launcher's report" \
    || bad "fbmalloc-report: $(cat "$tmp/err")"

"$fb" --leaks --pprof --output="$tmp/pp" -- "$tmp/leak" >/dev/null 2>"$tmp/err"
[[ $(head -c2 "$tmp/pp.leaks.pb.gz" 2>/dev/null | od -An -tx1 | tr -d ' ') == 1f8b ]] \
    && gzip -t "$tmp/pp.leaks.pb.gz" && grep -q "leak profile written to $tmp/pp.leaks.pb.gz" "$tmp/err" \
    && ok "installed launcher --pprof: $tmp/pp.leaks.pb.gz" || bad "--pprof: $(cat "$tmp/err")"

# A moved prefix (or a DESTDIR staging) still finds its own library.
mv "$prefix" "$tmp/moved"
got=$(maps "$tmp/moved/bin/fbmalloc")
[[ $got == "$tmp/moved/${real#$prefix/}" ]] && ok "moved prefix: launcher finds the moved library" \
    || bad "moved prefix preloads '$got'"
exit $fail
