#!/bin/sh
# Builds the jemalloc that fbmalloc embeds, from Debian's libjemalloc_pic.a
# (libjemalloc-dev), at build time (meson custom_target; nothing generated
# is committed):
#   - without jemalloc_cpp.pic.o: its operator new/delete are the only
#     reason Debian's libjemalloc.so.2 pulls libstdc++ into every process,
#     and we provide our own operators (src/interpose.c, src/cxx.c);
#   - with jemalloc's public names (malloc, mallocx, mallctl, malloc_conf,
#     ...) renamed to PREFIX<name>, so that they neither clash with the
#     malloc family we export nor leave the library; jemalloc's internal
#     names (je_*) are left as they are: the link hides every symbol of
#     this archive (-Wl,--exclude-libs).
# Every object's references are renamed with its definitions, so jemalloc's
# own internal calls of its public names (e.g. free() from its C++ object,
# which we drop anyway) stay inside jemalloc and never reach our exports.
#
# Four more changes make jemalloc's start-up lazy, its fork handling ours
# and its frees keep errno (src/backend.c says why):
#   - its constructor (jemalloc_constructor, which only calls malloc_init)
#     is dropped: jemalloc then initialises on its first call, which most
#     short processes never make (their small requests are ours);
#   - its call of pthread_atfork becomes PREFIXpthread_atfork, defined in
#     src/backend.c, which keeps jemalloc's handlers for our own;
#   - its calls of mmap, munmap, madvise and mprotect become
#     PREFIXsys_<name>, defined in src/backend.c, which keep errno, and
#     its calls of libm's exp, log and round become PREFIXsys_<name>,
#     defined there too, so that we need no libm.
# And one for start-up page faults: the zeroed data of arena.o and
# prof_sys.o, each one large table, moves to .lbss (below).
#
# usage: jemalloc-embed.sh INPUT.a OUTPUT.a PREFIX NM OBJCOPY AR READELF
set -eu
in=$1 out=$2 prefix=$3 nm=$4 objcopy=$5 ar=$6 readelf=$7
case $out in /*) ;; *) out=$PWD/$out ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fb-jemalloc.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
"$ar" x "$in"
rm -f jemalloc_cpp.o jemalloc_cpp.pic.o
set -- *.o
main=jemalloc.pic.o
[ -f "$main" ] || main=jemalloc.o
[ -f "$main" ] || { echo "jemalloc-embed: no jemalloc.o in $in" >&2; exit 1; }
[ -f "$1" ] || { echo "jemalloc-embed: no objects in $in" >&2; exit 1; }
# The public names: global definitions outside jemalloc's je_ namespace.
"$nm" -g --defined-only -P "$@" 2>/dev/null |
    awk -v p="$prefix" 'NF >= 2 && $1 !~ /:$/ && $1 !~ /^je_/ && !seen[$1]++ { print $1, p $1 }' \
    >renames
grep -q "^malloc " renames || { echo "jemalloc-embed: $in defines no malloc" >&2; exit 1; }
echo "pthread_atfork ${prefix}pthread_atfork" >>renames
for f in mmap munmap madvise mprotect sbrk exp log round; do
    echo "$f ${prefix}sys_$f" >>renames
done
for o in "$@"; do
    "$objcopy" --redefine-syms=renames "$o"
done
# The constructor is jemalloc.o's only .init_array entry; check that it is
# the only one anywhere, so that nothing else of jemalloc's is dropped.
ctors=$(for o in "$@"; do
    if "$readelf" -S -W "$o" | grep -q ' \.init_array '; then echo "$o"; fi
done)
[ "$ctors" = "$main" ] || { echo "jemalloc-embed: constructors in: $ctors" >&2; exit 1; }
"$objcopy" --remove-section=.init_array --remove-section=.rela.init_array "$main"
# The two objects whose zeroed data is one large table (arena.o: the 2 MiB
# root of jemalloc's radix tree, of which a process touches a page or two;
# prof_sys.o: the profiler's 64 KiB dump buffer) put it in .lbss, after
# every .bss (src/fb.h, FB_BIG_BSS), so that the small variables of the
# other objects, which jemalloc's start-up writes, share a few pages.
for o in arena prof_sys; do
    for f in "$o.pic.o" "$o.o"; do
        if [ -f "$f" ]; then "$objcopy" --rename-section .bss=.lbss "$f"; fi
    done
done
rm -f "$out"
"$ar" rcs "$out" "$@"
