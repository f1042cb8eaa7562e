#!/bin/bash
# real-node: Node.js (a V8 binary with a large symbol table, JIT frames and
# threads) building 100k objects, under fbmalloc, with leak tracking and
# with checking + canaries: the same output each time, within a bounded
# multiple of the plain run's time (stack capture must not depend on the
# binary's size: it once cost 52 s instead of 0.2 s here).
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

fb_need node nodejs

workload() {
    fb node -e '
const objs = [];
for (let i = 0; i < 100000; i++) objs.push({ i, s: "x" + i, v: [i, i + 1] });
let sum = 0;
for (const o of objs) sum += o.v[1] + o.s.length;
const m = new Map(objs.slice(0, 5000).map(o => [o.s, o]));
console.log(objs.length, sum, m.size, JSON.stringify(objs[12345]));
'
}
FB_EXTRA_MODES=(leaks check)
fb_main
