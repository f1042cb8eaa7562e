#!/usr/bin/env bash
# What the library brings into every process that preloads it:
#   - it exports the malloc family (glibc's names, the __libc_* aliases,
#     C++ operators new and delete), fbmalloc_* and the handler installers
#     (sigaction, signal and its aliases: src/sigwrap.c), nothing else: none
#     of the jemalloc linked inside it;
#   - it needs libc and libm only: no libstdc++, libjemalloc, libunwind,
#     liblzma or libgcc_s, in ldd and in a running process's mappings;
#   - libunwind is mapped only once tracking is on;
#   - the embedded jemalloc still reads MALLOC_CONF, on top of our own
#     compiled-in defaults, and its statistics at exit work (atexit).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
lib=$FBMALLOC_LIB

# The exported set.
nm -D --defined-only "$lib" | awk '{print $NF}' | sort -u >"$tmp/exports"
allowed='^(malloc|free|calloc|realloc|reallocarray|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|malloc_usable_size|cfree|__libc_(malloc|free|calloc|realloc|memalign|valloc|pvalloc)|__posix_memalign|malloc_trim|mallopt|mallinfo|mallinfo2|malloc_stats|malloc_info|fbmalloc_[a-z_]+|_Z(nw|na|dl|da)[A-Za-z0-9_]*|sigaction|signal|bsd_signal|ssignal|sysv_signal|__sysv_signal)$'
extra=$(grep -Ev "$allowed" "$tmp/exports" | tr '\n' ' ')
[[ -z "$extra" ]] && ok "nm -D: only the malloc family and fbmalloc_* ($(wc -l <"$tmp/exports") symbols)" \
    || bad "nm -D exports more than the malloc family: $extra"
missing=""
for s in malloc free calloc realloc posix_memalign aligned_alloc memalign valloc pvalloc \
         malloc_usable_size __libc_malloc __libc_free _Znwm _ZdlPv fbmalloc_version \
         sigaction signal; do
    grep -qx "$s" "$tmp/exports" || missing+="$s "
done
[[ -z "$missing" ]] && ok "nm -D: the family is all there" || bad "nm -D lacks: $missing"
# Nothing we need from outside may be one of jemalloc's names: they would
# bind to some other jemalloc, or to nothing.
und=$(nm -D --undefined-only "$lib" | awk '{print $NF}' |
      grep -E '^(mallocx|rallocx|xallocx|sallocx|dallocx|sdallocx|nallocx|mallctl|je_|fb_jemalloc_)' | tr '\n' ' ')
[[ -z "$und" ]] && ok "nm -D: no jemalloc name left undefined" || bad "undefined jemalloc names: $und"

# Libraries.
needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
ldd_out=$(ldd "$lib")
unwanted='libstdc\+\+|libjemalloc|libunwind|liblzma|libgcc_s|libm\.so'
if [[ "$needed" == "libc.so.6 " ]] && ! grep -Eq "$unwanted" <<<"$ldd_out"; then
    ok "ldd: $needed"
else
    bad "needed: $needed; ldd: $(tr '\n' ' ' <<<"$ldd_out")"
fi
maps=$(LD_PRELOAD=$lib cat /proc/self/maps)
grep -q "$(basename "$lib")" <<<"$maps" || bad "the library is not mapped under LD_PRELOAD"
if grep -Eq "$unwanted" <<<"$maps"; then
    bad "a plain process maps: $(grep -Eo "[^/ ]*($unwanted)[^/ ]*" <<<"$maps" | sort -u | tr '\n' ' ')"
else
    ok "a plain process maps none of libstdc++, libjemalloc, libunwind, liblzma, libgcc_s, libm"
fi
maps=$(FBMALLOC_LEAKS=1 FBMALLOC_OUTPUT=/dev/null LD_PRELOAD=$lib cat /proc/self/maps)
grep -q "libunwind" <<<"$maps" && ok "with FBMALLOC_LEAKS=1, libunwind is loaded" \
    || bad "with FBMALLOC_LEAKS=1, libunwind is not mapped"
# ... and does its job: the leak report names the allocating function.
out=$(FBMALLOC_LEAKS=1 LD_PRELOAD=$lib /usr/bin/python3 -c 'import ctypes; ctypes.CDLL(None).malloc(12345)' 2>&1)
[[ "$out" == *"direct leak of 12,345 bytes"* && "$out" == *"#0 "* ]] \
    && ok "tracking: a leak is reported with its stack" || bad "tracking report: $(head -5 <<<"$out")"

# jemalloc inside: MALLOC_CONF is honoured and overrides our defaults.
# (8 MiB at once: more than the early arena, src/early.h, so jemalloc
# starts; a process the arena serves alone never runs jemalloc.)
run_stats() {
    env MALLOC_CONF="$1" LD_PRELOAD="$lib" /usr/bin/python3 -c 'b = bytearray(8 << 20)' 2>&1 >/dev/null
}
out=$(run_stats stats_print:true)
if [[ "$out" == *"Begin jemalloc statistics"* ]]; then
    ok "MALLOC_CONF=stats_print:true: jemalloc prints its statistics at exit"
else
    bad "MALLOC_CONF=stats_print:true printed: $(head -3 <<<"$out")"
fi
# fbmalloc's compiled-in defaults (src/backend.c, README "jemalloc inside").
if grep -q 'opt.dirty_decay_ms: 30000 ' <<<"$out" && grep -q 'opt.muzzy_decay_ms: -1 ' <<<"$out"; then
    ok "jemalloc runs with fbmalloc's compiled-in defaults (dirty 30 s, muzzy never)"
else
    bad "compiled-in defaults not in effect: $(grep 'decay_ms' <<<"$out" | tr '\n' ' ')"
fi
out=$(run_stats stats_print:true,muzzy_decay_ms:0)
grep -q 'opt.muzzy_decay_ms: 0 ' <<<"$out" && grep -q 'opt.dirty_decay_ms: 30000 ' <<<"$out" \
    && ok "MALLOC_CONF overrides one default and keeps the others (muzzy_decay_ms:0)" \
    || bad "MALLOC_CONF=muzzy_decay_ms:0 gave: $(grep 'decay_ms' <<<"$out" | tr '\n' ' ')"
out=$(run_stats stats_print:true,narenas:3)
grep -q 'opt.narenas: 3$' <<<"$out" && ok "MALLOC_CONF=narenas:3 is honoured" \
    || bad "MALLOC_CONF=narenas:3 gave: $(grep 'opt.narenas' <<<"$out")"

# jemalloc's fork handlers are ours to run (src/backend.c): skipped in a
# process that never had a second thread, run after our locks otherwise.
# Either way the child allocates, frees what it inherited, and exits.
for threads in 0 3; do
    out=$(LD_PRELOAD=$lib /usr/bin/python3 -c "
import os, threading
keep = [bytearray(100000 + i) for i in range(50)]
stop = False
def churn():
    while not stop:
        [bytearray(200000) for _ in range(10)]
ts = [threading.Thread(target=churn) for _ in range($threads)]
for t in ts: t.start()
bad = 0
for i in range(20):
    pid = os.fork()
    if pid == 0:
        big = [bytearray(300000) for _ in range(20)]
        del keep[:]
        os._exit(0 if len(big) == 20 else 1)
    _, st = os.waitpid(pid, 0)
    bad += st != 0
stop = True
for t in ts: t.join()
print('forks ok' if bad == 0 else 'bad children: %d' % bad)
" 2>&1)
    [[ "$out" == "forks ok" ]] && ok "fork with $threads other threads: children allocate and free from jemalloc" \
        || bad "fork with $threads other threads: $out"
done
exit $fail
