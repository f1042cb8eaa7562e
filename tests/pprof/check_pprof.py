#!/usr/bin/env python3
"""FBMALLOC_REPORT_FORMAT=pprof, read by the real reader: Go's pprof.

The same program (pprof_prog.c) runs under the library with the text
report and with the pprof report; `go tool pprof -top` must show the text
report's totals (bytes and blocks, leaked and reachable), `-traces` the same
stacks with the same values and function names, `-raw` the mappings with
the ELF build ids and file offsets that readelf sees, and the locations the
text report's file:line.  Heap snapshots likewise, through
fbmalloc_snapshot(fd) (written to that fd) and the snapshot signal (a file
of its own).  Skipped, with a line saying so, only where golang-go is not
installed and cannot be (scripts/setup --tests installs it).

usage: check_pprof.py PPROF_PROG     (FBMALLOC_LIB: the library)
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter

PROG = sys.argv[1]
LIB = os.environ["FBMALLOC_LIB"]
failures = 0


def ok(msg):
    print("ok   " + msg)


def bad(msg):
    global failures
    failures += 1
    print("FAIL " + msg)


def find_go():
    go = shutil.which("go") or ("/usr/bin/go" if os.path.exists("/usr/bin/go") else None)
    if go:
        return go
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "golang-go"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        go = shutil.which("go")
    return go


GO = find_go()
if not GO:
    print("SKIP: go tool pprof is not available (Debian's golang-go is not "
          "installed and could not be installed here)")
    sys.exit(77)

tmp = tempfile.mkdtemp(prefix="fbpprof.")
# pprof keeps a profile cache and settings under $HOME and PPROF_TMPDIR
GOENV = dict(os.environ, HOME=tmp, PPROF_TMPDIR=tmp, GOCACHE=tmp + "/gocache",
             GOFLAGS="", PPROF_BINARY_PATH="")


def run(args, env_extra, **kw):
    env = dict(os.environ, LD_PRELOAD=LIB, **env_extra)
    return subprocess.run([PROG] + args, env=env, capture_output=True, **kw)


def pprof(*args):
    r = subprocess.run([GO, "tool", "pprof", "-symbolize=none"] + list(args),
                       env=GOENV, capture_output=True, text=True)
    if r.returncode != 0:
        bad("go tool pprof %s: %s" % (" ".join(args), r.stderr.strip()[:500]))
    return r.stdout


def text_groups(report):
    """[(kind, bytes, blocks, [function names, leaf first])] of a text report."""
    groups, cur = [], None
    head = re.compile(r"^fbmalloc: (direct leak of|indirect leak of|still reachable:|live:) "
                      r"([\d,]+) bytes in ([\d,]+) blocks?, allocated from:$")
    for line in report.splitlines():
        m = head.match(line)
        if m:
            kind = m.group(1).split()[0].replace("still", "reachable").rstrip(":")
            cur = (kind, int(m.group(2).replace(",", "")), int(m.group(3).replace(",", "")), [])
            groups.append(cur)
            continue
        m = re.match(r"^    #\d+ (.*?)(?: at (\S+):(\d+))? \((\S+)\+0x([0-9a-f]+)\)$", line)
        if m and cur is not None:
            name = m.group(1)
            if name == "??":
                name = "%s+0x%s" % (m.group(4), m.group(5))
            cur[3].append((name, m.group(2) or "", int(m.group(3) or 0)))
        elif not line.startswith("    "):
            cur = None
    return groups


def frame_name(s):
    """A -traces frame as the text report names it: pprof marks the lines
    of a location that were inlined into the next with " (inline)"."""
    s = s.strip()
    return s[:-len(" (inline)")] if s.endswith(" (inline)") else s


def traces(out):
    """[(value, kind, [function names, leaf first])] of pprof -traces."""
    res = []
    for block in out.split("-----------+-------------------------------------------------------"):
        lines = [l for l in block.splitlines() if l.strip()]
        kind, value, stack = None, None, []
        for l in lines:
            m = re.match(r"^\s*kind:\s+(\S+)", l)
            if m:
                kind = m.group(1)
                continue
            m = re.match(r"^\s*(\d+)B?\s{3}(\S.*)$", l)
            if m and value is None:
                value, stack = int(m.group(1)), [frame_name(m.group(2))]
            elif value is not None and l.startswith(" " * 13):
                stack.append(frame_name(l))
        if value is not None:
            res.append((value, kind, stack))
    return res


def top_total(path, index):
    out = pprof("-top", "-unit=B", "-sample_index=" + index, path)
    m = re.search(r"of (\d+)B total", out)
    if not m and re.search(r"Showing nodes accounting for 0, 0% of 0 total", out):
        return 0
    return int(m.group(1)) if m else None


def build_id(path):
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]+)", out)
    return m.group(1) if m else None


def compare(label, path, text, kinds, index_objects, index_space):
    """Totals, traces and names of profile path against text groups."""
    groups = [g for g in text_groups(text) if g[0] in kinds]
    want_bytes = sum(g[1] for g in groups)
    want_blocks = sum(g[2] for g in groups)
    got_bytes, got_blocks = top_total(path, index_space), top_total(path, index_objects)
    if got_bytes == want_bytes and got_blocks == want_blocks and want_bytes > 0:
        ok("%s: pprof -top totals %d bytes, %d blocks, as the text report" %
           (label, got_bytes, got_blocks))
    else:
        bad("%s: pprof -top %s bytes %s blocks, text %d bytes %d blocks" %
            (label, got_bytes, got_blocks, want_bytes, want_blocks))
    tr = traces(pprof("-traces", "-unit=B", "-sample_index=" + index_space, path))
    want = Counter((g[1], g[0], tuple(f[0] for f in g[3])) for g in groups)
    got = Counter((v, k, tuple(s)) for v, k, s in tr if v)
    if want == got:
        ok("%s: pprof -traces: the same %d stacks, values, kinds and function "
           "names as the text report" % (label, len(groups)))
    else:
        bad("%s: -traces differ:\n  text  %s\n  pprof %s" %
            (label, sorted(want.items()), sorted(got.items())))
    names = {f[0] for g in groups for f in g[3]}
    top = pprof("-top", "-unit=B", "-sample_index=" + index_space, path)
    missing = [n for n in names if n not in top]
    if not missing:
        ok("%s: pprof -top names every function of the text report (%d)" %
           (label, len(names)))
    else:
        bad("%s: -top lacks %s" % (label, missing))
    return groups


# 1. Leak report at exit: text, then pprof, of the same program.
t = run([], {"FBMALLOC_LEAKS": "all"}, text=True)
text = t.stderr
out = os.path.join(tmp, "out.%p")
p = run([], {"FBMALLOC_LEAKS": "all", "FBMALLOC_REPORT_FORMAT": "pprof",
             "FBMALLOC_OUTPUT": out}, text=True)
files = glob.glob(os.path.join(tmp, "out.*.leaks.pb.gz"))
if p.returncode == 0 and len(files) == 1 and "leak profile written to " + files[0] in p.stderr:
    ok("leak report: %s, announced on stderr" % os.path.basename(files[0]))
else:
    bad("leak report file: rc %d files %s stderr %s" % (p.returncode, files, p.stderr[:300]))
    sys.exit(1)
prof = files[0]
if subprocess.run(["gzip", "-t", prof]).returncode == 0:
    ok("gzip -t accepts the profile (%d bytes)" % os.path.getsize(prof))
else:
    bad("gzip -t rejects " + prof)
groups = compare("leaks", prof, text, ("direct", "indirect"), "leaked_objects", "leaked_space")
if {"leak_small", "leak_tree", "make_leaf"} <= {f[0] for g in groups for f in g[3]}:
    ok("the known leaking functions are in both")
else:
    bad("known functions missing from the text report: %s" % groups)
compare("reachable", prof, text, ("reachable",), "reachable_objects", "reachable_space")

# -raw: build ids and file offsets of the mappings, file:line of locations.
raw = pprof("-raw", prof)
maps = re.findall(r"^\d+: 0x([0-9a-f]+)/0x([0-9a-f]+)/0x([0-9a-f]+) (\S+) ([0-9a-f]*)", raw, re.M)
want_id = build_id(PROG)
mine = [m for m in maps if os.path.realpath(m[3]) == os.path.realpath(PROG)]
if mine and want_id and mine[0][4] == want_id:
    ok("mapping of the program: build id %s, file offset 0x%s" % (want_id, mine[0][2]))
else:
    bad("program mapping %s, readelf build id %s" % (mine, want_id))
libc = [m for m in maps if "libc.so" in m[3]]
if libc and build_id(libc[0][3]) == libc[0][4]:
    ok("mapping of libc: build id %s" % libc[0][4])
else:
    bad("libc mapping %s" % libc)
lines = {(f[0], f[1], f[2]) for g in text_groups(text) for f in g[3] if f[1]}
missing = [l for l in lines if "%s %s:%d" % l not in raw]
if lines and not missing:
    ok("every function:file:line of the text report is a pprof location line (%d)" % len(lines))
else:
    bad("locations lack %s" % missing[:5])
# An address maps into its mapping's file at the module offset the text
# report prints (program+0x...).
locs = re.findall(r"^\s+\d+: 0x([0-9a-f]+) M=(\d+) leak_small ", raw, re.M)
m_small = re.search(r"#\d+ leak_small at \S+ \((\S+)\+0x([0-9a-f]+)\)", text)
if locs and mine and m_small:
    addr = int(locs[0][0], 16)
    start, off = int(mine[0][0], 16), int(mine[0][2], 16)
    if addr - start + off == int(m_small.group(2), 16):
        ok("address - mapping start + file offset = the text report's offset 0x%s" % m_small.group(2))
    else:
        bad("address 0x%x start 0x%x offset 0x%x vs 0x%s" % (addr, start, off, m_small.group(2)))
else:
    bad("no leak_small location (%s) or mapping" % locs)

# 2. Heap snapshot through fbmalloc_snapshot(1): the profile is on stdout.
t = run(["api"], {"FBMALLOC_LEAKS": "1", "FBMALLOC_OUTPUT": os.devnull}, text=True)
p = run(["api"], {"FBMALLOC_LEAKS": "1", "FBMALLOC_REPORT_FORMAT": "pprof",
                  "FBMALLOC_OUTPUT": os.path.join(tmp, "api")})
snap = os.path.join(tmp, "api.pb.gz")
with open(snap, "wb") as f:
    f.write(p.stdout)
if p.returncode == 0 and p.stdout[:2] == b"\x1f\x8b":
    ok("fbmalloc_snapshot(1): a gzipped profile on stdout")
else:
    bad("api snapshot: rc %d, %r" % (p.returncode, p.stdout[:20]))
compare("snapshot(fd)", snap, t.stdout, ("live",), "inuse_objects", "inuse_space")

# 3. The snapshot signal: a .heap.pb.gz file of its own.
p = run(["signal"], {"FBMALLOC_LEAKS": "1", "FBMALLOC_REPORT_FORMAT": "pprof",
                     "FBMALLOC_OUTPUT": os.path.join(tmp, "sig.%p")}, text=True)
heaps = glob.glob(os.path.join(tmp, "sig.*.heap.pb.gz"))
if heaps and "done" in p.stderr:
    total = top_total(heaps[0], "inuse_space")
    # everything still allocated when the signal came: the snapshot's own
    # text twin says how much
    t = run(["signal"], {"FBMALLOC_LEAKS": "1", "FBMALLOC_OUTPUT": os.path.join(tmp, "sigt.%p")})
    txt = open(glob.glob(os.path.join(tmp, "sigt.*"))[0]).read()
    m = re.search(r"fbmalloc: ([\d,]+) bytes live in", txt)
    want = int(m.group(1).replace(",", "")) if m else None
    if total == want:
        ok("snapshot signal: %s, %d bytes live as in the text snapshot" %
           (os.path.basename(heaps[0]), total))
    else:
        bad("signal snapshot total %s, text %s" % (total, want))
else:
    bad("signal snapshot: %s %s" % (heaps, p.stderr[:300]))

shutil.rmtree(tmp, ignore_errors=True)
print("pprof: %d failures" % failures)
sys.exit(1 if failures else 0)
