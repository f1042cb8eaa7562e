#!/bin/bash
# real-python3: Debian's CPython (/usr/bin/python3, not pyenv's) under fbmalloc.
#
# Proves that an unmodified, threaded interpreter gives byte-identical output
# with and without LD_PRELOAD=libfbmalloc.so, exits the same way, and takes
# the fast path (fast_mallocs > 0, bad_frees == 0).  The workload -- dicts,
# string building, json dumps/loads round trips, 4 threads building and
# trading lists, sorted output -- runs twice per pass: with CPython's own
# small-object allocator (pymalloc), and with PYTHONMALLOC=malloc, where every
# object, however small or short-lived, is a malloc/free of its own -- the
# allocation pattern the per-thread epoch buffers are built for.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

PY=/usr/bin/python3
fb_need "$PY" python3

cat >"$FB_IN/work.py" <<'EOF'
import hashlib, json, sys, threading

N = int(sys.argv[1])

def words(seed, n):
    x = seed
    out = []
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7fffffff
        out.append("w%x_%s" % (x % 50021, "abcdefghij"[x % 10] * (1 + x % 23)))
    return out

# dicts and strings
counts = {}
for w in words(1, N):
    counts[w] = counts.get(w, 0) + 1
    counts[w.upper()] = len(w)
for k in list(counts)[::3]:
    del counts[k]
text = "|".join("%s=%d" % kv for kv in sorted(counts.items()))
print("dict", len(counts), hashlib.sha256(text.encode()).hexdigest())
print("str", len(text), text.count("A"), text[:60])

# json round trips of nested structures
doc = {"items": [{"id": i, "name": "item-%05d" % i, "tags": ["t%d" % (i % 7), "u%d" % (i % 13)],
                  "vals": [i * 0.5, -i, str(i) * (i % 5)], "sub": {"a": i % 3, "b": None, "c": True}}
                 for i in range(N // 4)]}
s = json.dumps(doc, sort_keys=True)
for _ in range(3):
    back = json.loads(s)
    s2 = json.dumps(back, sort_keys=True, indent=1)
    s = json.dumps(json.loads(s2), sort_keys=True)
assert back == doc
print("json", len(s), hashlib.sha256(s.encode()).hexdigest())

# threads building lists; results handed to the main thread (freed there)
results = {}
lock = threading.Lock()
def worker(tid):
    acc = []
    for i, w in enumerate(words(tid + 100, N // 2)):
        acc.append((w[::-1], i, {"t": tid, "w": w}))
        if len(acc) > 5000:
            acc = acc[len(acc) // 2:]
    part = sorted(a[0] for a in acc)
    blob = json.dumps([a[2] for a in acc[-200:]])
    with lock:
        results[tid] = (part, blob)
threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
merged = sorted(x for tid in results for x in results[tid][0])
print("threads", len(merged), merged[0], merged[-1],
      hashlib.sha256("\n".join(merged).encode()).hexdigest(),
      sum(len(results[t][1]) for t in results))

# sorted output
for k in sorted(counts, key=lambda k: (-counts[k], k))[:20]:
    print(k, counts[k])
EOF

export PY
workload() {
    echo "== pymalloc"
    fb "$PY" -s -B "$FB_IN/work.py" 80000
    echo "== PYTHONMALLOC=malloc"
    PYTHONMALLOC=malloc fb "$PY" -s -B "$FB_IN/work.py" 80000
}
FB_MIN_STATS=2
# Also under leak tracking and under checking + canaries (see common.sh).
FB_EXTRA_MODES=(leaks check)
fb_main
