#!/bin/bash
# real-git: git (and every git subprocess it spawns) under fbmalloc.
#
# Proves that a multi-process, partly multi-threaded program (git gc runs
# pack-objects with one delta-search thread per core; fsck, index-pack and
# repack are child processes that inherit LD_PRELOAD) produces byte-identical
# output -- same object ids, same log --stat, same fsck verdict -- with and
# without LD_PRELOAD=libfbmalloc.so, and that the processes together took the
# fast path (sum of fast_mallocs > 0, bad_frees == 0 in every process).
# Workload in a fresh repo: init, config, 6 commits adding/modifying/
# renaming/deleting ~1000 files, branch + merge, log --stat, log -p, diff,
# blame, gc, repack -f (a fresh, threaded delta search), fsck --full,
# verify-pack and cat-file over every object.  Fixed author/committer dates
# and HOME make the ids reproducible.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

fb_need git git

# Source files for the commits, generated once (not under the allocator).
mkdir -p "$FB_IN/src"
awk -v dir="$FB_IN/src" 'BEGIN {
    x = 7
    for (f = 0; f < 1000; f++) {
        file = sprintf("%s/f%03d.txt", dir, f)
        n = 20 + f % 150
        for (l = 0; l < n; l++) {
            x = (x * 69069 + 1) % 4294967296
            printf "line %d of file %d: %08x %s\n", l, f, x, substr("the quick brown fox jumps over the lazy dog", 1 + x % 20) > file
        }
        close(file)
    }
}'

export GIT_CONFIG_NOSYSTEM=1 GIT_PAGER=cat PAGER=cat GIT_TERMINAL_PROMPT=0
export GIT_AUTHOR_NAME=Tester GIT_AUTHOR_EMAIL=tester@example.invalid
export GIT_COMMITTER_NAME=Tester GIT_COMMITTER_EMAIL=tester@example.invalid
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY || true

workload() {
    export HOME=$PWD/home
    mkdir -p "$HOME"
    local t=1600000000
    commit() {   # commit MESSAGE: one commit a fixed minute after the last
        t=$((t + 60))
        GIT_AUTHOR_DATE="@$t +0000" GIT_COMMITTER_DATE="@$t +0000" \
            fb git commit -q -m "$1"
    }
    fb git init -q -b main repo
    cd repo
    fb git config user.name Tester
    fb git config user.email tester@example.invalid
    fb git config gc.auto 0
    fb git config gc.autoDetach false
    fb git config maintenance.auto false
    fb git config core.fsyncMethod writeout-only

    mkdir -p a/b c
    cp "$FB_IN"/src/f[0-2]*.txt a/
    fb git add -A
    commit "first: 300 files"

    cp "$FB_IN"/src/f[3-5]*.txt a/b/
    sed -i 's/fox/cat/' a/f0*.txt
    fb git add -A
    commit "second: 300 more, edit 100"

    cp "$FB_IN"/src/f[6-9]*.txt c/
    fb git mv a/f050.txt c/moved050.txt
    fb git rm -q a/f2[0-4]*.txt
    fb git add -A
    commit "third: rename, delete, add"

    fb git checkout -q -b topic
    for f in c/f[6-7]*.txt; do printf 'topic change\n' >>"$f"; done
    fb git add -A
    commit "topic: append to 200 files"

    fb git checkout -q main
    sed -i '1d' a/b/f[3-4]*.txt c/f9*.txt
    fb git add -A
    commit "main: drop first lines"

    t=$((t + 60))
    GIT_AUTHOR_DATE="@$t +0000" GIT_COMMITTER_DATE="@$t +0000" \
        fb git merge -q --no-edit topic
    GIT_COMMITTER_DATE="@$t +0000" fb git tag -a v1 -m "tag v1"

    echo "== HEAD"; fb git rev-parse HEAD HEAD^ HEAD^2 v1
    echo "== log --stat"; fb git log --stat --format='%H %an %ad %s' --date=iso-strict
    echo "== log -p"; fb git log -p --format='%H %s' | sha256sum
    echo "== diff"; fb git diff --stat HEAD~3 HEAD
    echo "== blame"; fb git blame -s c/moved050.txt >../blame.txt; head -n 5 ../blame.txt; sha256sum <../blame.txt
    echo "== ls-tree"; fb git ls-tree -r HEAD | sha256sum
    echo "== gc"; fb git gc -q --prune=now
    fb git repack -q -a -d -f --window=20 --depth=20
    echo "== fsck"; fb git fsck --full --strict --no-progress 2>&1
    echo "== count"; fb git count-objects -v | grep -E '^(count|in-pack|packs|prune-packable|garbage):'
    echo "== verify-pack"
    # (not -s/-v: delta chains depend on the timing of pack-objects' threads)
    fb git verify-pack .git/objects/pack/pack-*.idx && echo ok
    echo "== cat-file"
    fb git cat-file --batch-all-objects --batch-check='%(objectname) %(objecttype) %(objectsize)' | sha256sum
    fb git cat-file --batch-all-objects --batch | sha256sum
    echo "== status"; fb git status --porcelain=v1 --branch
}
# 37 top-level git commands (each exits normally), plus their children.
FB_MIN_STATS=37
# Also under leak tracking and under checking + canaries (see common.sh).
FB_EXTRA_MODES=(leaks check)
fb_main
