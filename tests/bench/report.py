#!/usr/bin/env python3
"""Turns the raw data of one scripts/bench run into BENCHMARKS.md and a chart.

usage: report.py RESULTS_DIR --md FILE --chart-dir DIR --chart-href HREF
       report.py --splice SECTION FROM_MD INTO_MD   (replace one "## SECTION")

RESULTS_DIR holds what scripts/bench wrote:
  meta.tsv       key <TAB> value (machine, versions, command)
  workloads.tsv  name <TAB> arguments <TAB> description
  runs.tsv       workload alloc round status code wall_s maxrss_kb user_s
                 sys_s digest
  callgrind.tsv  workload alloc pairs ir status
  modes.tsv      like runs.tsv, one row per debugging mode and round
  modes-callgrind.tsv  mode args ir status
  targets.tsv    target variant round status value (leak-tracking targets)

Writes FILE (markdown), DIR/ratios.svg and DIR/ratios.png (time ratio to
jemalloc per workload and allocator, drawn by gnuplot) and links the chart
as HREF/ratios.svg.  A workload/allocator pair with any failed run (non-zero
exit, signal, timeout, output different from the others, preload refused)
is reported as FAIL, never as a number.  Standard library only.
"""
import argparse
import collections
import glob
import json
import os
import signal
import statistics
import subprocess
import sys

ALLOC_ORDER = ["glibc", "jemalloc", "mimalloc", "tcmalloc", "fbmalloc", "fbprofile"]
BASELINE = "jemalloc"


def read_tsv(path, ncols):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            parts = line.split("\t")
            parts += [""] * (ncols - len(parts))
            rows.append(parts[:ncols])
    return rows


def describe_failure(status, code):
    if status == "signal":
        try:
            return signal.Signals(int(code)).name
        except (ValueError, KeyError):
            return f"signal {code}"
    if status == "exit":
        return f"exit {code}"
    return {"timeout": "timeout", "nopreload": "preload refused",
            "wrong-output": "wrong output", "error": "did not run",
            "nodata": "no data"}.get(status, status)


class Cell:
    """Aggregated runs of one workload under one allocator."""

    def __init__(self, runs):
        self.n = len(runs)
        self.ok = [r for r in runs if r["status"] == "ok"]
        bad = [r for r in runs if r["status"] != "ok"]
        self.failed = bool(bad)
        reasons = collections.Counter(
            describe_failure(r["status"], r["code"]) for r in bad)
        self.reason = ", ".join(f"{k} in {v}/{self.n}"
                                for k, v in reasons.most_common())
        if self.ok:
            walls = [r["wall"] for r in self.ok]
            self.wall = statistics.median(walls)
            self.wall_min, self.wall_max = min(walls), max(walls)
            self.rss = statistics.median(r["rss"] for r in self.ok) / 1024
        else:
            self.wall = self.wall_min = self.wall_max = self.rss = None


def load_runs(path):
    runs = collections.defaultdict(list)
    for w, a, rnd, status, code, wall, rss, user, sys_, dig in read_tsv(path, 10):
        try:
            wall_f, rss_f = float(wall), float(rss)
        except ValueError:
            wall_f, rss_f, status = 0.0, 0.0, "error"
        runs[(w, a)].append({"round": rnd, "status": status, "code": code,
                             "wall": wall_f, "rss": rss_f, "digest": dig})
    # Programs with a deterministic output: every allocator must print the
    # same as glibc (or, without glibc, as the majority).
    by_workload = collections.defaultdict(list)
    for (w, a), rs in runs.items():
        by_workload[w].extend((a, r) for r in rs)
    for w, items in by_workload.items():
        digs = [r["digest"] for a, r in items
                if r["status"] == "ok" and r["digest"] not in ("", "-")]
        if not digs:
            continue
        ref = [r["digest"] for a, r in items
               if a == "glibc" and r["status"] == "ok" and r["digest"] not in ("", "-")]
        expected = collections.Counter(ref or digs).most_common(1)[0][0]
        for a, r in items:
            if r["status"] == "ok" and r["digest"] not in ("", "-") and r["digest"] != expected:
                r["status"] = "wrong-output"
    return runs


def load_callgrind(path):
    """{workload: {alloc: {pairs: (ir, status)}}}"""
    cg = collections.defaultdict(lambda: collections.defaultdict(dict))
    for w, a, pairs, ir, status in read_tsv(path, 5):
        try:
            cg[w][a][int(pairs)] = (int(ir), status)
        except ValueError:
            continue
    return cg


def callgrind_numbers(cg_w):
    """Per allocator: dict(pairs, ir, ir0, per_pair, steady, startup, status).

    per_pair = (Ir(alloc, N) - Ir(null, N)) / N      (the documented figure)
    steady   = ((Ir(alloc, N) - Ir(alloc, 0)) - (Ir(null, N) - Ir(null, 0))) / N
    startup  = Ir(alloc, 0) - Ir(null, 0)
    """
    out = {}
    null = cg_w.get("null", {})
    n_full = max((p for p in null if p > 0), default=0)
    null_ok = (n_full > 0 and null.get(n_full, (0, ""))[1] == "ok"
               and null.get(0, (0, ""))[1] == "ok")
    for a, by_pairs in cg_w.items():
        if a == "null":
            continue
        n = max((p for p in by_pairs if p > 0), default=0)
        ir, st = by_pairs.get(n, (0, "error"))
        ir0, st0 = by_pairs.get(0, (0, "error"))
        res = {"pairs": n, "ir": ir, "ir0": ir0, "status": st}
        if st != "ok":
            res["status"] = st
        elif st0 != "ok":
            res["status"] = st0
        elif not null_ok or n != n_full:
            res["status"] = "no baseline"
        else:
            res["per_pair"] = (ir - null[n][0]) / n
            res["steady"] = ((ir - ir0) - (null[n][0] - null[0][0])) / n
            res["startup"] = ir0 - null[0][0]
        out[a] = res
    if null_ok:
        out["null"] = {"pairs": n_full, "ir": null[n_full][0], "ir0": null[0][0],
                       "status": "ok"}
    return out


def load_fbstats(res, alloc="fbmalloc", sub="fbstats"):
    """{workload: totals over the processes of the untimed FBMALLOC_STATS run}
    of alloc (fbmalloc; fbprofile, its JSON in fbstats-profile/)"""
    status = {}
    for row in read_tsv(os.path.join(res, "fbstats-runs.tsv"), 10):
        if row[1] == alloc:
            status[row[0]] = (row[3], row[4])
    out = {}
    for d in sorted(glob.glob(os.path.join(res, sub, "*"))):
        w = os.path.basename(d)
        tot = collections.Counter()
        procs = 0
        for path in glob.glob(os.path.join(d, "*.json")):
            try:
                with open(path, encoding="utf-8") as f:
                    st = json.load(f)
            except (OSError, ValueError):
                continue
            procs += 1
            for k in ("fast_mallocs", "backend_mallocs", "buffer_full",
                      "remote_frees", "epochs_reset", "threads", "bad_frees"):
                if isinstance(st.get(k), int):
                    tot[k] += st[k]
        st, code = status.get(w, ("?", ""))
        out[w] = {"procs": procs, "tot": tot, "status": st, "code": code}
    return out


def fast_share(x):
    t = x["tot"]
    n = t["fast_mallocs"] + t["backend_mallocs"]
    return (100.0 * t["fast_mallocs"] / n) if n else None


def fmt_s(x):
    return f"{x:.3f}" if x < 100 else f"{x:.1f}"


def fmt_int(x):
    return f"{x:,}".replace(",", "\u202f")


def sort_allocs(allocs):
    return sorted(allocs, key=lambda a: (ALLOC_ORDER.index(a)
                                         if a in ALLOC_ORDER else 99, a))


def draw_chart(workloads, allocs, cells, chart_dir, title, results_dir):
    """Clustered bars of median time / jemalloc median, log scale."""
    shown = [a for a in allocs if a != BASELINE]
    if not shown or not workloads:
        return False
    dat = os.path.join(results_dir, "ratios.dat")
    fails = os.path.join(results_dir, "ratios-fail.dat")
    values = []
    with open(dat, "w", encoding="utf-8") as f, \
            open(fails, "w", encoding="utf-8") as ff:
        f.write("# workload " + " ".join(shown) + "\n")
        nb = len(shown)
        gap = 1
        for i, w in enumerate(workloads):
            base = cells.get((w, BASELINE))
            row = [w.replace("_", "-")]
            for j, a in enumerate(shown):
                c = cells.get((w, a))
                if c is None:
                    row.append("?")
                elif c.failed or c.wall is None:
                    row.append("?")
                    x = i - 0.5 + (gap / 2 + j + 0.5) / (nb + gap)
                    ff.write(f"{x:.4f} FAIL\n")
                elif base is None or base.failed or not base.wall:
                    row.append("?")
                else:
                    r = c.wall / base.wall
                    values.append(r)
                    row.append(f"{r:.4f}")
            f.write(" ".join(row) + "\n")
        ff.write("")
    if not values:
        values = [1.0]
    lo = min(min(values), 1.0) / 1.4
    hi = max(max(values), 1.0) * 1.4
    has_fails = os.path.getsize(fails) > 0
    plots = []
    for j, a in enumerate(shown):
        plots.append(f"'{dat}' using {j + 2}:xtic(1) title '{a}'")
    fail_plot = (f", '{fails}' using 1:({lo * 1.15}):2 with labels "
                 "rotate by 90 left font ',9' textcolor rgb '#c00000' notitle"
                 if has_fails else "")
    width = max(800, 22 * len(workloads) * (len(shown) + 1) + 160)
    script = f"""
set datafile missing '?'
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 1
set logscale y 2
set yrange [{lo:.4f}:{hi:.4f}]
set grid ytics
set ytics format '%g'
set xtics rotate by -35 left nomirror
set key above horizontal reverse Left samplen 2 width 3
set xrange [-0.6:{len(workloads) - 0.4}]
set ylabel 'median wall time / jemalloc (log scale, lower is better)'
set title '{title}'
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 dt 2 lc rgb '#404040' front
plot {", ".join(plots)}{fail_plot}
"""
    gp = os.path.join(results_dir, "ratios.gp")
    ok = True
    for term, ext in (("svg size %d,520 dynamic background rgb 'white' font 'sans,12'" % width, "svg"),
                      ("pngcairo size %d,520 font 'sans,10'" % width, "png")):
        path = os.path.join(chart_dir, "ratios." + ext)
        with open(gp, "w", encoding="utf-8") as f:
            f.write(f"set terminal {term}\nset output '{path}'\n{script}")
        res = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
        if res.returncode != 0:
            sys.stderr.write(f"gnuplot failed for {ext}:\n{res.stderr}")
            ok = False
    return ok


MODE_WHAT = {
    "fbmalloc": "fbmalloc, no option",
    "stats": "FBMALLOC_STATS=json (count every call)",
    "leaks": "FBMALLOC_LEAKS=1 (stack per allocation, report at exit)",
    "check": "FBMALLOC_CHECK=1 (bad frees with stacks, quarantine)",
    "canary": "FBMALLOC_CANARY=1 (guard bytes)",
    "fail": "FBMALLOC_FAIL_AFTER=10^12 (failure injection on, never reached)",
    "trace": "FBMALLOC_TRACE=file (allocation log)",
    "memcheck": "valgrind --leak-check=full (no fbmalloc)",
    "heaptrack": "heaptrack (no fbmalloc)",
    "lsan": "LD_PRELOAD=liblsan.so.0, gcc's LeakSanitizer (no fbmalloc)",
}
MODE_ORDER = ["fbmalloc", "stats", "leaks", "check", "canary", "fail", "trace",
              "memcheck", "heaptrack", "lsan"]


def modes_section(res, modes, meta):
    """The "Debugging modes" section: wall/RSS per mode, instruction counts
    per fbmalloc mode, the leak-tracking targets of issue 11."""
    L = []
    base = Cell(modes.get(("fbmalloc", "mode"), [])).wall
    L.append("## Debugging modes")
    L.append("")
    L.append("The 2-thread request churn (`tests/bench/request "
             f"{'2000 2' if meta.get('quick') == '1' else '10000 2'}`) under each of "
             "fbmalloc's debugging modes and, for comparison, under the tools that do "
             "the same jobs without recompiling (gcc's LeakSanitizer runtime preloaded "
             "into the unchanged binary: its malloc and its leak check at exit); modes "
             "interleaved within each round, medians.")
    if not meta.get("workloads", "").strip():
        # A modes-only run spliced into a full report: say which run.
        L.append("")
        L.append(f"This section alone: `{meta.get('command', '?')}`, {meta.get('date', '?')}, "
                 f"fbmalloc {meta.get('fbmalloc', '?')}"
                 + (f" (libfbmalloc.so sha256 {meta['fbmalloc_sha256']}…)"
                    if meta.get("fbmalloc_sha256") else "") + ".")
    L.append("")
    L.append("| mode | median s | slowdown vs fbmalloc | peak RSS MiB |")
    L.append("|---|---:|---:|---:|")
    for m in MODE_ORDER:
        rs = modes.get((m, "mode"))
        if not rs:
            continue
        if rs[0]["status"] == "missing":
            L.append(f"| {MODE_WHAT[m]} | not installed (package {rs[0]['code']}) | | |")
            continue
        c = Cell(rs)
        if c.wall is None:
            L.append(f"| {MODE_WHAT[m]} | FAIL ({c.reason}) | | |")
            continue
        ratio = f"{c.wall / base:.2f}x" if base else "-"
        L.append(f"| {MODE_WHAT[m]} | {c.wall:.3f} | {ratio} | {c.rss:.1f} |")
    L.append("")

    cg = read_tsv(os.path.join(res, "modes-callgrind.tsv"), 4)
    cg_base = next((int(ir) for m, _, ir, st in cg if m == "fbmalloc" and st == "ok"), None)
    cg_ratio = {}
    if cg:
        L.append(f"Instructions (`valgrind --tool=callgrind`, whole process, one run each) "
                 f"of the same churn, smaller (`request {cg[0][1]}`), per fbmalloc mode. "
                 "Unlike the wall times they do not move with the load of a shared "
                 "machine; they do not see cache misses, page faults or lock waits.")
        L.append("")
        L.append("| mode | instructions | vs fbmalloc |")
        L.append("|---|---:|---:|")
        for m, _, ir, st in cg:
            if st != "ok":
                L.append(f"| {MODE_WHAT.get(m, m)} | FAIL ({describe_failure(st, '')}) | |")
                continue
            r = int(ir) / cg_base if cg_base else None
            cg_ratio[m] = r
            L.append(f"| {MODE_WHAT.get(m, m)} | {fmt_int(int(ir))} | "
                     f"{f'{r:.2f}x' if r else '-'} |")
        L.append("")

    tg = collections.defaultdict(list)
    tg_bad = collections.Counter()
    for target, variant, _, st, value in read_tsv(os.path.join(res, "targets.tsv"), 5):
        if st == "ok":
            tg[target, variant].append(float(value))
        else:
            tg_bad[target, variant] += 1
    leaks = Cell(modes.get(("leaks", "mode"), [])).wall
    rows = []
    if leaks and base:
        rows.append(("2-thread churn, FBMALLOC_LEAKS=1 / untracked fbmalloc, wall",
                     f"{leaks / base:.2f}x", "at most 2x", leaks / base <= 2))
    if cg_ratio.get("leaks"):
        r = cg_ratio["leaks"]
        rows.append(("2-thread churn, FBMALLOC_LEAKS=1 / untracked fbmalloc, instructions",
                     f"{r:.2f}x", "at most 2x", r <= 2))

    def med(key):
        v = tg.get(key)
        return statistics.median(v) if v and not tg_bad[key] else None
    pp, pl = med(("pypass", "plain")), med(("pypass", "leaks"))
    if pp and pl:
        rows.append((f"`python3 -c pass`, FBMALLOC_LEAKS=1 / untracked "
                     f"({pl * 1000:.1f} / {pp * 1000:.1f} ms)",
                     f"{pl / pp:.2f}x", "at most 1.5x", pl / pp <= 1.5))
    elif tg_bad[("pypass", "plain")] or tg_bad[("pypass", "leaks")]:
        rows.append(("`python3 -c pass`", "FAIL", "at most 1.5x", False))
    ep, el = med(("exit", "plain")), med(("exit", "leaks"))
    if ep is not None and el is not None:
        d = (el - ep) * 1000
        rows.append((f"one leaked block (`tests/bench/oneleak`): main's return to exit, "
                     f"FBMALLOC_LEAKS=1 minus untracked ({el * 1000:.2f} - {ep * 1000:.2f} ms)",
                     f"{d:.2f} ms", "at most 5 ms", d <= 5))
    elif tg_bad[("exit", "plain")] or tg_bad[("exit", "leaks")]:
        rows.append(("one leaked block, exit report", "FAIL", "at most 5 ms", False))
    if rows:
        n = max((len(v) for v in tg.values()), default=0)
        L.append("Leak-tracking cost targets (issue 11). `python3 -c pass` and the "
                 f"one-leak process: medians of {n} runs each, tracked and untracked "
                 "interleaved; the exit time runs from the last statement of main "
                 "(the monotonic time it prints) until the harness has reaped the "
                 "process, so it holds the exit path, and with tracking the leak "
                 "check and its report (checked to name the one leak).")
        L.append("")
        L.append("| target | measured | limit | met |")
        L.append("|---|---:|---:|---|")
        for what, val, lim, ok in rows:
            L.append(f"| {what} | {val} | {lim} | {'yes' if ok else '**no**'} |")
        L.append("")
    return L


def splice(section, src, dst):
    """Replaces the "## section" of dst (up to the next "## " heading) with
    the one of src, or puts it before "## Method"; the rest of dst stays."""
    def find(lines):
        head = f"## {section}"
        if head not in lines:
            return None, None
        i = lines.index(head)
        j = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("## ")),
                 len(lines))
        return i, j
    s_lines = open(src, encoding="utf-8").read().split("\n")
    d_lines = open(dst, encoding="utf-8").read().split("\n")
    si, sj = find(s_lines)
    if si is None:
        print(f"report.py: no '## {section}' in {src}", file=sys.stderr)
        return 1
    new = s_lines[si:sj]
    while new and new[-1] == "":
        new.pop()
    di, dj = find(d_lines)
    if di is None:
        di = dj = d_lines.index("## Method") if "## Method" in d_lines else len(d_lines)
    # The section, then one blank line more than the generator leaves
    # before the next heading (as in a full report).
    blanks = 0
    k = dj - 1
    while k > di and d_lines[k] == "":
        blanks += 1
        k -= 1
    out = d_lines[:di] + new + [""] * max(blanks, 1) + d_lines[dj:]
    with open(dst, "w", encoding="utf-8") as f:
        f.write("\n".join(out))
    return 0


def profile_lines(res, w):
    """Long-lived sites in the profiles a workload's runs left (one file
    per program)."""
    n = 0
    for f in glob.glob(os.path.join(res, "profiles", w, "*.fbprofile")):
        with open(f, errors="replace") as fh:
            n += sum(1 for line in fh if line.startswith("L "))
    return n


def profile_section(res, workloads, cells, st1, st2):
    """fbprofile (every timed run starts from the profile the runs before
    it saved) against fbmalloc (no profile: every run is a first run)."""
    rows = [w for w in workloads if (w, "fbprofile") in cells and (w, "fbmalloc") in cells]
    if not rows:
        return []
    L = ["", "## Second runs with a profile", "",
         "**fbprofile** is fbmalloc with `FBMALLOC_PROFILE` set to a directory of "
         "the workload's own: one untimed run saved the first profile, and every "
         "timed run loads the profile the run before it saved (a second or later "
         "run); **fbmalloc** runs without one (every run a first run). Both in the "
         "same rounds. The target: the second run at least as fast as the first "
         "(ratio at most 1.00; on this VM wall times move by several percent "
         "between runs). **sites** = long-lived sites in the profile at the end; "
         "**buffers** = the share of allocations the buffers served in the untimed "
         "statistics run of each (a later run for fbprofile).",
         "",
         "| workload | first run s | second run s | ratio | first RSS MiB | second RSS MiB "
         "| buffers, first | buffers, second | sites |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def share(st, w):
        x = st.get(w)
        v = fast_share(x) if x is not None and x["status"] == "ok" else None
        return "–" if v is None else f"{v:.1f}%"
    ratios = []
    for w in rows:
        a, b = cells[(w, "fbmalloc")], cells[(w, "fbprofile")]
        if a.failed or b.failed or not a.wall:
            L.append(f"| {w} | {'**FAIL**' if a.failed else fmt_s(a.wall)} | "
                     f"{'**FAIL**' if b.failed else fmt_s(b.wall)} | – | – | – | "
                     f"{share(st1, w)} | {share(st2, w)} | {profile_lines(res, w)} |")
            continue
        ratios.append(b.wall / a.wall)
        L.append(f"| {w} | {fmt_s(a.wall)} | {fmt_s(b.wall)} | {b.wall / a.wall:.2f} | "
                 f"{a.rss:.1f} | {b.rss:.1f} | {share(st1, w)} | {share(st2, w)} | "
                 f"{profile_lines(res, w)} |")
    if ratios:
        g = 1.0
        for r in ratios:
            g *= r
        g **= 1 / len(ratios)
        L.append("")
        L.append(f"Geometric mean of the ratios: {g:.3f} over {len(ratios)} workloads; "
                 f"worst {max(ratios):.2f}.")
    return L


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--splice":
        return splice(sys.argv[2], sys.argv[3], sys.argv[4])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results")
    ap.add_argument("--md", required=True)
    ap.add_argument("--chart-dir", required=True)
    ap.add_argument("--chart-href", required=True)
    args = ap.parse_args()
    res = args.results

    meta = dict((k, v) for k, v in read_tsv(os.path.join(res, "meta.tsv"), 2))
    wl_rows = read_tsv(os.path.join(res, "workloads.tsv"), 3)
    workloads = [r[0] for r in wl_rows]
    wl_args = {r[0]: r[1] for r in wl_rows}
    wl_desc = {r[0]: r[2] for r in wl_rows}
    runs = load_runs(os.path.join(res, "runs.tsv"))
    cg = load_callgrind(os.path.join(res, "callgrind.tsv"))
    allocs = sort_allocs({a for (_, a) in runs} |
                         set(meta.get("allocators", "").split()))
    cells = {key: Cell(rs) for key, rs in runs.items()}
    cg_numbers = {w: callgrind_numbers(cg[w]) for w in cg}
    fbstats = load_fbstats(res)

    quick = meta.get("quick") == "1"
    os.makedirs(args.chart_dir, exist_ok=True)
    title = f"fbmalloc benchmarks, {meta.get('date', '')}" + (" (--quick)" if quick else "")
    charted = draw_chart(workloads, allocs, cells, args.chart_dir, title, res)

    L = []
    L.append("# Benchmarks")
    L.append("")
    L.append("Generated by `scripts/bench` (do not edit by hand; rerun it). "
             "Workloads: `tests/bench/`; method and caveats at the end.")
    if quick:
        L.append("")
        L.append("**This is a `--quick` smoke run: small sizes, few rounds; "
                 "the numbers are not meant for comparison.**")
    L.append("")
    L.append(f"- Command: `{meta.get('command', '?')}`")
    L.append(f"- Date: {meta.get('date', '?')}; {meta.get('rounds', '?')} rounds, "
             "allocators interleaved within each round; medians.")
    L.append(f"- Machine: {meta.get('cpu', '?')}, nproc = {meta.get('nproc', '?')}, "
             f"{meta.get('kernel', '?')}, {meta.get('os', '?')}")
    L.append(f"- Versions: glibc {meta.get('glibc', '?')}, "
             f"jemalloc {meta.get('jemalloc', '?')} (libjemalloc2), "
             f"mimalloc {meta.get('mimalloc', '?')} (libmimalloc2.0), "
             f"tcmalloc {meta.get('tcmalloc', '?')} (libgoogle-perftools4, "
             "tcmalloc_minimal), "
             f"fbmalloc {meta.get('fbmalloc', '?')}"
             + (f" (libfbmalloc.so sha256 {meta['fbmalloc_sha256']}…)"
                if meta.get("fbmalloc_sha256") else ""))
    L.append(f"- Programs: gcc {meta.get('gcc', '?')}, python3 {meta.get('python3', '?')}, "
             f"sqlite3 {meta.get('sqlite3', '?')}, redis {meta.get('redis', '?')}, "
             f"valgrind {meta.get('valgrind', '?')}")
    if meta.get("fb_status"):
        L.append(f"- **fbmalloc was skipped**: {meta['fb_status']}")
    L.append("")
    if charted:
        L.append(f"![median wall time relative to jemalloc]({args.chart_href}/ratios.svg)")
        L.append("")
        L.append(f"Chart: median wall time / jemalloc's per workload, log scale, "
                 f"lower is better ([SVG]({args.chart_href}/ratios.svg), "
                 f"[PNG]({args.chart_href}/ratios.png)); FAIL marks a failed "
                 "allocator, a missing bar one not run.")
        L.append("")

    # Summary: one line per workload, seconds per allocator.
    L.append("## Summary (median seconds)")
    L.append("")
    L.append("| workload | " + " | ".join(allocs) + " |")
    L.append("|---|" + "---:|" * len(allocs))
    for w in workloads:
        row = [w]
        for a in allocs:
            c = cells.get((w, a))
            if c is None:
                row.append("–")
            elif c.failed:
                row.append("**FAIL**")
            else:
                row.append(fmt_s(c.wall))
        L.append("| " + " | ".join(row) + " |")
    L.append("")

    L.append("## Per workload")
    for w in workloads:
        L.append("")
        L.append(f"### {w}")
        L.append("")
        L.append(f"{wl_desc.get(w, '')}. Arguments: `{wl_args.get(w, '')}`.")
        L.append("")
        cgw = cg_numbers.get(w, {})
        has_cg = bool(cgw)
        head = "| allocator | median s | ratio to jemalloc | peak RSS MiB | min–max s |"
        sep = "|---|---:|---:|---:|---:|"
        if has_cg:
            head += " instructions/pair |"
            sep += "---:|"
        L.append(head)
        L.append(sep)
        base = cells.get((w, BASELINE))
        for a in allocs:
            c = cells.get((w, a))
            if c is None:
                continue
            if c.failed:
                row = [a, f"**FAIL** ({c.reason})", "–", "–", "–"]
            else:
                if base is not None and not base.failed and base.wall:
                    ratio = f"{c.wall / base.wall:.2f}"
                else:
                    ratio = "n/a"
                row = [a, fmt_s(c.wall), ratio, f"{c.rss:.1f}",
                       f"{fmt_s(c.wall_min)}–{fmt_s(c.wall_max)}"]
            if has_cg:
                x = cgw.get(a)
                if x is None:
                    row.append("–")
                elif "per_pair" in x:
                    row.append(f"{x['per_pair']:.1f}")
                else:
                    row.append(f"**FAIL** ({describe_failure(x['status'], '')})")
            L.append("| " + " | ".join(row) + " |")
        x = fbstats.get(w)
        if x is not None and x["status"] == "ok" and fast_share(x) is not None:
            t = x["tot"]
            L.append("")
            L.append(f"fbmalloc's buffers served {fast_share(x):.1f}% of the "
                     f"{fmt_int(t['fast_mallocs'] + t['backend_mallocs'])} allocations "
                     f"(buffer full: {fmt_int(t['buffer_full'])}; see "
                     "[fbmalloc statistics](#fbmalloc-statistics)).")

    if fbstats:
        L.append("")
        L.append("## fbmalloc statistics")
        L.append("")
        L.append("From one extra, untimed run of each workload under fbmalloc with "
                 "`FBMALLOC_STATS=json` (summed over the processes of the run, e.g. "
                 "gcc's driver, cc1 and as). **fast path** = share of allocations "
                 "served from the per-thread buffers; **buffer full** = small "
                 "requests sent to jemalloc because every epoch of the thread's "
                 "buffer still held a live object.")
        L.append("")
        L.append("| workload | processes | allocations | fast path | buffer full | "
                 "cross-thread frees | epochs reset | threads |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for w in workloads:
            x = fbstats.get(w)
            if x is None:
                continue
            if x["status"] != "ok":
                L.append(f"| {w} | **FAIL** ({describe_failure(x['status'], x['code'])}) "
                         "| – | – | – | – | – | – |")
                continue
            t = x["tot"]
            share = fast_share(x)
            if share is None:
                L.append(f"| {w} | {x['procs']} | – | – | – | – | – | – |")
                continue
            L.append(f"| {w} | {x['procs']} | "
                     f"{fmt_int(t['fast_mallocs'] + t['backend_mallocs'])} | "
                     f"{share:.1f}% | {fmt_int(t['buffer_full'])} | "
                     f"{fmt_int(t['remote_frees'])} | {fmt_int(t['epochs_reset'])} | "
                     f"{fmt_int(t['threads'])} |")

    L.extend(profile_section(res, workloads, cells, fbstats,
                             load_fbstats(res, "fbprofile", "fbstats-profile")))

    modes = load_runs(os.path.join(res, "modes.tsv"))
    if modes:
        L.extend(modes_section(res, modes, meta))

    if cg_numbers:
        L.append("")
        L.append("## Instruction counts (callgrind)")
        L.append("")
        L.append("Each workload runs under `valgrind --tool=callgrind` once per allocator "
                 "and once with `tests/bench/nullalloc.c` (a do-nothing stand-in whose "
                 "malloc hands out slots of a static ring and whose free returns), each "
                 "with N pairs and with 0 pairs. "
                 "**instructions/pair** = (Ir(allocator, N) − Ir(stand-in, N)) / N, the "
                 "figure in the tables above; it includes the allocator's start-up "
                 "spread over N pairs. **steady** = ((Ir(allocator, N) − Ir(allocator, 0)) "
                 "− (Ir(stand-in, N) − Ir(stand-in, 0))) / N leaves start-up out; "
                 "**start-up** = Ir(allocator, 0) − Ir(stand-in, 0) (glibc's can come out slightly "
                 "negative: the stand-in is one more library for ld.so to load). Both subtract what the "
                 "workload loop itself and the stand-in's few instructions per pair "
                 "cost, so they measure the allocator alone (relative to handing out "
                 "a ring slot).")
        for w in workloads:
            cgw = cg_numbers.get(w)
            if not cgw:
                continue
            L.append("")
            L.append(f"### {w} (callgrind)")
            L.append("")
            L.append("| allocator | pairs N | Ir (N pairs) | Ir (0 pairs) | instructions/pair | steady | start-up Ir |")
            L.append("|---|---:|---:|---:|---:|---:|---:|")
            order = sort_allocs([a for a in cgw if a != "null"])
            for a in order + (["null"] if "null" in cgw else []):
                x = cgw[a]
                name = "stand-in (nullalloc)" if a == "null" else a
                if a == "null":
                    L.append(f"| {name} | {fmt_int(x['pairs'])} | {fmt_int(x['ir'])} | "
                             f"{fmt_int(x['ir0'])} | – | – | – |")
                elif "per_pair" in x:
                    L.append(f"| {name} | {fmt_int(x['pairs'])} | {fmt_int(x['ir'])} | "
                             f"{fmt_int(x['ir0'])} | {x['per_pair']:.1f} | "
                             f"{x['steady']:.1f} | {fmt_int(x['startup'])} |")
                else:
                    L.append(f"| {name} | {fmt_int(x['pairs'])} | – | – | **FAIL** "
                             f"({describe_failure(x['status'], '')}) | – | – |")

    L.append("")
    L.append("## Method")
    L.append("")
    L.append("- Every program runs with the allocator in `LD_PRELOAD` (glibc: nothing "
             "preloaded), started by `tests/bench/runstat.c`, which sets `LD_PRELOAD` "
             "for the child only and reports wall time (monotonic clock) and peak RSS "
             "(`wait4` rusage: the largest resident set of the process and of the "
             "children it waited for, e.g. gcc's cc1).")
    L.append("- Rounds: each round runs every workload under every allocator in turn "
             "(glibc, jemalloc, mimalloc, tcmalloc, fbmalloc, fbprofile: fbmalloc with "
             "a saved profile), so slow drifts of a "
             "shared machine hit all allocators alike; tables give medians, the "
             "min–max column the spread.")
    L.append("- A run fails when it exits non-zero (the C workloads tag every object "
             "and exit 3 if one was overwritten while live), dies of a signal, "
             "times out, prints output different from glibc's (python, sqlite: "
             "stdout; gcc: stdout and the object file), or when ld.so refuses the "
             "preload. Any failed round makes the cell **FAIL**.")
    L.append("- redis: the time is that of `redis-benchmark` (run without preload) "
             "against a `redis-server` started under the allocator on 127.0.0.1 and "
             "a random high port, shut down afterwards; the RSS is the server's. "
             "Debian's `redis-server` links jemalloc itself, so its \"glibc\" row "
             "is really jemalloc.")
    L.append("- Multi-threaded workloads use 2 threads on a 2-core machine that is "
             "shared with other work: expect a few percent of noise; compare "
             "ratios, not absolute times.")
    L.append("- Instruction counts need the allocator to really run under valgrind. "
             "callgrind replaces no malloc, and a run only counts if the allocator's "
             "library appears in callgrind's object list. For fbmalloc, check that its "
             "fast path stayed on under valgrind (its 64 GiB reservation could fail "
             "there, leaving only jemalloc) with `FBMALLOC_STATS=1 "
             "LD_PRELOAD=build/libfbmalloc.so valgrind --tool=callgrind "
             "--callgrind-out-file=/dev/null build/tests/bench/pair 100000`: "
             "\"buffers\" should hold ~100% of the allocations.")
    L.append("")
    L.append("## Running")
    L.append("")
    L.append("```")
    L.append("scripts/bench                  # full run (~10-15 min on 2 cores), rewrites this file")
    L.append("scripts/bench --quick          # one-minute smoke run, report in bench-results/")
    L.append("scripts/bench --only pair,redis --alloc jemalloc,fbmalloc --rounds 9")
    L.append("scripts/bench --fb-lib /path/to/libfbmalloc.so --no-callgrind")
    L.append("scripts/bench --only modes --publish   # only the Debugging modes section (~5 min)")
    L.append("scripts/bench --list           # workloads and what they model")
    L.append("```")
    L.append("")
    L.append("Raw data of every run (one row per run, callgrind totals, logs of each "
             "program) stay in `bench-results/<date>/` (git-ignored); "
             "`bench-results/latest` points to the last one. To rerun one "
             "measurement by hand: `build/tests/bench/runstat -p "
             "build/libfbmalloc.so build/tests/bench/pair 30000000` (one line: "
             "status, code, wall s, peak RSS KiB, user s, sys s).")
    L.append("")
    with open(args.md, "w", encoding="utf-8") as f:
        f.write("\n".join(L))
    return 0


if __name__ == "__main__":
    sys.exit(main())
