#!/usr/bin/env python3
"""Flame graphs and PNG plots, checked in a real browser and with pixels.

 - scripts/fbmalloc-report flame turns a JSON leak report (and a folded
   one) of pprof_prog into an SVG that is well-formed XML, self-contained
   (no external reference of any kind), whose frames carry their bytes and
   blocks (the hover text) matching the report's totals;
 - headless Chromium renders it: the screenshot is not blank (many
   non-background pixels, several colours, the "direct leak" red among
   them), and its DOM after the script ran shows a click zoom (#zoom=NAME
   runs the same function the click does): the frame spans the whole
   width, frames outside it are hidden;
 - scripts/fbmalloc-trace plot OUT.png without gnuplot writes a PNG through
   matplotlib that is not blank.
Skipped with a line saying so only where chromium (or matplotlib) is not
installed and cannot be (scripts/setup --tests installs them).

usage: check_flame.py PPROF_PROG    (FBMALLOC_LIB, FBMALLOC_SRC)
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

PROG = sys.argv[1]
LIB = os.environ["FBMALLOC_LIB"]
SRC = os.environ["FBMALLOC_SRC"]
REPORT = os.path.join(SRC, "scripts", "fbmalloc-report")
TRACE = os.path.join(SRC, "scripts", "fbmalloc-trace")
PY = "/usr/bin/python3"          # Debian's, with python3-pil / matplotlib
failures = 0
tmp = tempfile.mkdtemp(prefix="fbflame.")


def ok(msg):
    print("ok   " + msg)


def bad(msg):
    global failures
    failures += 1
    print("FAIL " + msg)


def installed(cmd, pkg):
    if shutil.which(cmd):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", pkg], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    return bool(shutil.which(cmd))


def has_module(mod, pkg):
    probe = [PY, "-c", "import " + mod]
    if subprocess.run(probe, capture_output=True).returncode == 0:
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", pkg], capture_output=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    return subprocess.run(probe, capture_output=True).returncode == 0


CHROMIUM = installed("chromium", "chromium") and shutil.which("chromium")
PIL = has_module("PIL.Image", "python3-pil")
MPL = has_module("matplotlib", "python3-matplotlib")
if not CHROMIUM or not PIL:
    print("SKIP: headless chromium or python3-pil is not available and could "
          "not be installed here")
    sys.exit(77)


def chromium(*args):
    """Headless Chromium as root, nothing from the network, a fresh profile."""
    prof = tempfile.mkdtemp(prefix="chr.", dir=tmp)
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--hide-scrollbars", "--user-data-dir=" + prof] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def pixels(png):
    """(fraction of pixels unlike the corner's colour, distinct colours,
    the set of colours) of an image, by PIL in Debian's python."""
    code = ("import sys, json; from PIL import Image\n"
            "im = Image.open(sys.argv[1]).convert('RGB'); px = list(im.getdata())\n"
            "bg = px[0]; far = sum(1 for p in px if sum(abs(a - b) for a, b in zip(p, bg)) > 30)\n"
            "cols = set(px)\n"
            "print(json.dumps([far / len(px), len(cols), im.size, sorted(cols)[:0]]))\n"
            "print(json.dumps([list(c) for c in cols][:5000]))")
    r = subprocess.run([PY, "-c", code, png], capture_output=True, text=True)
    if r.returncode != 0:
        return 0, 0, (0, 0), set()
    a, b = r.stdout.splitlines()[:2]
    frac, ncol, size, _ = json.loads(a)
    return frac, ncol, tuple(size), {tuple(c) for c in json.loads(b)}


def run_prog(env):
    e = dict(os.environ, LD_PRELOAD=LIB, FBMALLOC_LEAKS="all", **env)
    return subprocess.run([PROG], env=e, capture_output=True, text=True)


# 1. A JSON leak report and its flame graph.
rep = os.path.join(tmp, "leaks.json")
run_prog({"FBMALLOC_REPORT_FORMAT": "json", "FBMALLOC_OUTPUT": rep})
report = json.load(open(rep))["fbmalloc_leak_report"]
want_bytes = sum(g["bytes"] for g in report["leaks"])
want_blocks = sum(g["blocks"] for g in report["leaks"])
svg = os.path.join(tmp, "leaks.svg")
r = subprocess.run([REPORT, "flame", rep, "-o", svg], capture_output=True, text=True)
if r.returncode != 0 or not os.path.exists(svg):
    bad("fbmalloc-report flame: %s" % r.stderr)
    sys.exit(1)
data = open(svg).read()
try:
    root = ET.fromstring(data)
    ok("flame graph: well-formed SVG, %d bytes" % len(data))
except ET.ParseError as e:
    bad("SVG does not parse: %s" % e)
    sys.exit(1)
urls = set(re.findall(r"[a-z]+://[^\s\"'<>)]*", data)) - {"http://www.w3.org/2000/svg"}
refs = re.findall(r"(?:href|src)\s*=|@import|url\(", data)
if not urls and not refs:
    ok("self-contained: no URL but the SVG namespace, no href/src/url()/@import")
else:
    bad("external references: %s %s" % (urls, refs))
ns = "{http://www.w3.org/2000/svg}"
titles = [t.text for t in root.iter(ns + "title")]
top = [t for t in titles if t.startswith("all: ")]
m = re.match(r"all: ([\d,]+) bytes \(100\.00%\), ([\d,]+) blocks", top[0]) if top else None
if m and int(m.group(1).replace(",", "")) == want_bytes \
        and int(m.group(2).replace(",", "")) == want_blocks:
    ok("root frame's hover text: %s bytes, %s blocks, as the report" % m.groups())
else:
    bad("root title %s, report %d bytes %d blocks" % (top, want_bytes, want_blocks))
small = [t for t in titles if t.startswith("leak_small: ")]
if small and re.match(r"leak_small: 40,000 bytes \([\d.]+%\), 1,000 blocks$", small[0]):
    ok("leak_small's hover text: %s" % small[0])
else:
    bad("leak_small title: %s" % small)
if all(re.search(r": [\d,]+ bytes \([\d.]+%\), [\d,]+ blocks?$", t) for t in titles):
    ok("every one of %d frames shows bytes and blocks on hover" % len(titles))
else:
    bad("titles without bytes and blocks: %s" % [t for t in titles if "blocks" not in t][:3])

# 2. Chromium renders it: a screenshot that is not blank.
height = int(root.get("height"))
png = os.path.join(tmp, "leaks.png")
r = chromium("--window-size=1200,%d" % height, "--screenshot=" + png, "file://" + svg)
frac, ncol, size, cols = pixels(png) if os.path.exists(png) else (0, 0, (0, 0), set())
red = (214, 39, 40)
near_red = any(sum(abs(a - b) for a, b in zip(c, red)) < 20 for c in cols)
if frac > 0.15 and ncol > 8 and near_red and size == (1200, height):
    ok("chromium screenshot %dx%d: %.0f%% of pixels drawn, %d colours, the direct-leak red"
       % (size[0], size[1], 100 * frac, ncol))
else:
    bad("screenshot: %.3f drawn, %d colours, red %s, size %s: %s"
        % (frac, ncol, near_red, size, r.stderr[-300:]))

# 3. Click zoom, run by Chromium: leak_small then spans the width.
r = chromium("--dump-dom", "file://" + svg + "#zoom=leak_small")
dom = r.stdout
g = re.search(r'<g class="f"[^>]*><title>leak_small:[^<]*</title><rect x="([\d.]+)"[^>]*'
              r'width="([\d.]+)"', dom)
hidden = len(re.findall(r'<g class="f hide"', dom))
shown = len(re.findall(r'<g class="f( anc)?"', dom))
if 'data-zoom="leak_small"' in dom and g and float(g.group(1)) == 10.0 \
        and abs(float(g.group(2)) - 1180.0) < 0.01 and hidden > 0:
    ok("zoom into leak_small in chromium: x=%s width=%s, %d frames hidden, %d shown"
       % (g.group(1), g.group(2), hidden, shown))
else:
    bad("zoom: %s hidden %d; %s" % (g.groups() if g else None, hidden, r.stderr[-300:]))

# 4. A folded report draws too (bytes only: folded stacks carry no blocks).
fold = os.path.join(tmp, "leaks.folded")
run_prog({"FBMALLOC_REPORT_FORMAT": "folded", "FBMALLOC_OUTPUT": fold})
fsvg = os.path.join(tmp, "folded.svg")
r = subprocess.run([REPORT, "flame", fold, "-o", fsvg], capture_output=True, text=True)
want = sum(int(l.rsplit(" ", 1)[1]) for l in open(fold) if l.strip())
ftitles = [t.text for t in ET.parse(fsvg).getroot().iter(ns + "title")] if r.returncode == 0 else []
if ftitles and ftitles[0] == "all: %s bytes (100.00%%)" % "{:,}".format(want):
    ok("folded report: flame graph of %s bytes" % "{:,}".format(want))
else:
    bad("folded: %s %s" % (ftitles[:1], r.stderr))

# 5. fbmalloc-trace plot OUT.png without gnuplot: matplotlib draws it.
if MPL:
    log = os.path.join(tmp, "t.%p")
    subprocess.run([PROG], env=dict(os.environ, LD_PRELOAD=LIB, FBMALLOC_TRACE=log),
                   capture_output=True)
    logs = [os.path.join(tmp, f) for f in os.listdir(tmp) if f.startswith("t.")]
    out = os.path.join(tmp, "live.png")
    r = subprocess.run([TRACE, "plot", out, "--no-gnuplot"] + logs, capture_output=True,
                       text=True)
    frac, ncol, size, _ = pixels(out) if os.path.exists(out) else (0, 0, (0, 0), set())
    if r.returncode == 0 and open(out, "rb").read(8) == b"\x89PNG\r\n\x1a\n" \
            and frac > 0.01 and ncol > 4:
        ok("fbmalloc-trace plot live.png (matplotlib, no gnuplot): %dx%d, %.1f%% drawn"
           % (size[0], size[1], 100 * frac))
    else:
        bad("plot png: rc %d %s, %.3f drawn" % (r.returncode, r.stderr[-300:], frac))
else:
    print("SKIP plot PNG: python3-matplotlib is not installed and could not be")

shutil.rmtree(tmp, ignore_errors=True)
print("flame: %d failures" % failures)
sys.exit(1 if failures else 0)
