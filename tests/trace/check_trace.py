#!/usr/bin/env python3
"""check_trace.py -- tests of the allocation log (FBMALLOC_TRACE) and of
its decoder, scripts/fbmalloc-trace.

usage: check_trace.py GROUP... [--bin DIR] [--keep]

Groups (each registered as one meson test, trace-<group>):
  prog     trace_prog (threads, remote frees, reallocs in place and
           moving, 100 short-lived threads, two forks) under
           FBMALLOC_TRACE=dir/t.%p: one file per process, named by its pid;
           the MALLOC / FREE / REALLOC events of the program's own call
           sites and the blocks live at exit equal the program's counts, in
           the parent and in each child (so a child holds none of the
           parent's unwritten events); each allocating function is named as
           frame #0 of its sites with its exact allocation count; known
           blocks have the printed pointer and size; hist, text and plot
           (SVG drawn here, and gnuplot's SVG and PNG when installed)
  silent   python3 -c pass and ls -la under the log: identical stdout,
           stderr and exit status with and without it; each log decodes
           completely
  decoder  several processes appending to one file (no %p) are split by
           pid; concatenated files; a truncated file (cut inside a record,
           inside the header) is decoded up to the cut with a warning and
           no traceback; a process that calls exec is two images under one
           pid (the first incomplete: exec runs no destructors); 1100
           threads alive at once (more than the 1024 buffers)

Environment: FBMALLOC_LIB (libfbmalloc.so; default
$FBMALLOC_BUILD/libfbmalloc.so), FBMALLOC_BUILD, FBMALLOC_SRC.  Prints
"ok <case>" or "FAIL <case>: <what differed>" per case.  Exit 0 if all
passed, 1 if any failed.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get('FBMALLOC_SRC') or os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get('FBMALLOC_BUILD') or os.path.join(SRC, 'build')
LIB = os.environ.get('FBMALLOC_LIB') or os.path.join(BUILD, 'libfbmalloc.so')
DECODER = os.path.join(SRC, 'scripts', 'fbmalloc-trace')
PY = sys.executable or '/usr/bin/python3'
PROG_NAME = 'trace-prog'

failures = 0
passes = 0


def ok(name):
    global passes
    passes += 1
    print('ok ' + name)


def fail(name, why):
    global failures
    failures += 1
    print('FAIL %s: %s' % (name, why))


def check(name, cond, why=''):
    if cond:
        ok(name)
    else:
        fail(name, why)
    return cond


def clean_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('FBMALLOC_') and k != 'LD_PRELOAD'}
    env['LC_ALL'] = 'C'
    return env


def traced_env(trace):
    env = clean_env()
    env['LD_PRELOAD'] = LIB
    env['FBMALLOC_TRACE'] = trace
    return env


def run(cmd, env, **kw):
    return subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=240, **kw)


def decode(*args):
    """Runs the decoder; returns the CompletedProcess."""
    return subprocess.run([PY, DECODER] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=240,
                          env=clean_env())


def decode_json(*args):
    r = decode(*args)
    if r.returncode != 0:
        raise RuntimeError('fbmalloc-trace %s failed: %s'
                           % (' '.join(args), r.stderr.strip()))
    return json.loads(r.stdout)


def parse_prog_output(out):
    """COUNT/CHILD/FUNC/KNOWN lines of trace_prog, grouped by pid."""
    procs = {}
    cur = None
    known = []
    children = {}
    for line in out.splitlines():
        w = line.split()
        if not w:
            continue
        if w[0] == 'COUNT':
            cur = int(w[1])
            procs[cur] = {'malloc': int(w[3]), 'free': int(w[5]),
                          'realloc': int(w[7]), 'live': int(w[9]), 'funcs': {}}
        elif w[0] == 'FUNC' and cur is not None:
            procs[cur]['funcs'][w[1]] = int(w[2])
        elif w[0] == 'CHILD':
            children[int(w[1])] = int(w[2])
        elif w[0] == 'KNOWN':
            known.append({'what': w[1], 'ptr': int(w[2], 16), 'size': int(w[3]),
                          'func': w[4]})
    return procs, children, known


def own_sites(sites):
    """Sites whose frame #0 is in trace_prog."""
    return [s for s in sites if s['frames'] and
            os.path.basename(s['frames'][0]['module']) == PROG_NAME]


# --------------------------------------------------------------------------

def group_prog(tmp, prog):
    d = os.path.join(tmp, 'prog')
    os.mkdir(d)
    r = run([prog, '4', '3000'], traced_env(os.path.join(d, 't.%p')))
    if not check('prog-runs', r.returncode == 0 and r.stderr == '',
                 'exit %d, stderr %r' % (r.returncode, r.stderr[-2000:])):
        return
    procs, children, known = parse_prog_output(r.stdout)
    parent = [p for p in procs if p not in children]
    if not check('prog-output', len(parent) == 1 and len(children) == 2 and
                 len(procs) == 3 and len(known) == 4,
                 'unexpected program output:\n' + r.stdout):
        return
    parent = parent[0]

    # One file per process, named by its pid.
    files = sorted(glob.glob(os.path.join(d, 't.*')))
    want = sorted(os.path.join(d, 't.%d' % p) for p in procs)
    check('prog-one-file-per-process', files == want,
          'files %s, expected %s' % (files, want))

    sums = {}
    for pid in procs:
        f = os.path.join(d, 't.%d' % pid)
        if not os.path.exists(f):
            continue
        s = decode_json('summary', '--json', f)
        if check('prog-summary-%s' % ('parent' if pid == parent else 'child'),
                 len(s) == 1 and s[0]['pid'] == pid and s[0]['complete'],
                 'summary of %s: %s' % (f, s)):
            sums[pid] = s[0]
    for c, pp in children.items():
        s = sums.get(c)
        if s:
            check('prog-child-header', s['forked'] and s['ppid'] == parent == pp,
                  'child %d: forked %s ppid %d, parent %d'
                  % (c, s['forked'], s['ppid'], parent))
    if parent in sums:
        s = sums[parent]
        # main + 4 churn + 3 handoff + 100 short-lived + idle
        check('prog-threads', s['threads'] >= 109,
              'parent saw %d threads, expected at least 109' % s['threads'])
        check('prog-no-drops', s['dropped'] == 0 and s['reused_live'] == 0,
              'dropped %d, reused live %d' % (s['dropped'], s['reused_live']))

    # Event counts of the program's own sites, per process.
    for pid, want_c in procs.items():
        role = 'parent' if pid == parent else 'child'
        f = os.path.join(d, 't.%d' % pid)
        if not os.path.exists(f):
            continue
        sites = decode_json('sites', '--json', f)
        mine = own_sites(sites)
        got = {'malloc': sum(s['allocs'] for s in mine),
               'free': sum(s['frees'] for s in mine),
               'realloc': sum(s['reallocs'] for s in mine),
               'live': sum(s['live'] for s in mine)}
        exp = {k: want_c[k] for k in got}
        check('prog-counts-%s-%d' % (role, pid), got == exp,
              'log has %s, program did %s' % (got, exp))
        byfunc = {}
        for s in mine:
            fn = s['frames'][0]['function']
            byfunc[fn] = byfunc.get(fn, 0) + s['allocs']
        byfunc = {k: v for k, v in byfunc.items() if v}
        check('prog-site-functions-%s-%d' % (role, pid), byfunc == want_c['funcs'],
              'allocations by frame #0 function in the log %s, program %s'
              % (byfunc, want_c['funcs']))
        if pid != parent:
            check('prog-child-has-no-parent-events',
                  not any(s['frames'][0]['function'] in ('make_node', 'worker_alloc')
                          and s['allocs'] for s in mine),
                  'parent functions have allocations in the child log')
        # frame #0 has file:line, frame #1 names the caller
        fl = [s for s in mine if s['frames'][0]['function'] == 'make_node']
        check('prog-site-file-line-%s-%d' % (role, pid),
              pid != parent or (fl and fl[0]['frames'][0]['file'].endswith('trace_prog.c')
                                and fl[0]['frames'][0]['line'] > 0
                                and len(fl[0]['frames']) > 1),
              'make_node site: %s' % (fl[:1],))

    # Known blocks: pointer and size, and their frees.
    pf = os.path.join(d, 't.%d' % parent)
    t = decode('text', pf)
    check('prog-text', t.returncode == 0 and t.stderr == '',
          'exit %d: %s' % (t.returncode, t.stderr[-2000:]))
    lines = t.stdout.splitlines()
    for k in known:
        pat = re.compile(r'^\d+\.\d{9} T\d+\s+malloc\s+0x0*%x\s+%d site \d+ %s \('
                         % (k['ptr'], k['size'], re.escape(k['func'])))
        hits = [ln for ln in lines if pat.search(ln)]
        check('prog-known-%s' % k['what'], len(hits) == 1,
              '%d lines match %s' % (len(hits), pat.pattern))
        if k['what'] != 'kept':
            fpat = re.compile(r'\sfree\s+0x0*%x\s+\(%d bytes from site \d+ %s '
                              % (k['ptr'], k['size'], re.escape(k['func'])))
            check('prog-known-free-%s' % k['what'],
                  any(fpat.search(ln) for ln in lines), 'no line matches ' + fpat.pattern)
    times = [float(ln.split()[0]) for ln in lines if ln and ln[0].isdigit()]
    check('prog-text-sorted', times == sorted(times) and len(times) > 1000,
          '%d events, sorted %s' % (len(times), times == sorted(times)))
    sites_text = decode('sites', pf)
    check('prog-sites-text', sites_text.returncode == 0 and
          re.search(r'#0 make_node at \S*trace_prog\.c:\d+ \(trace-prog\+0x[0-9a-f]+\)',
                    sites_text.stdout) and
          re.search(r'#1 main at \S*trace_prog\.c:\d+', sites_text.stdout),
          sites_text.stdout[:3000] + sites_text.stderr)

    # Histogram: one entry per MALLOC and REALLOC event.
    allf = [os.path.join(d, 't.%d' % p) for p in procs]
    h = decode_json('hist', '--json', *allf)
    total = sum(s['malloc'] + s['realloc'] for s in sums.values())
    check('prog-hist', sum(b['count'] for b in h) == total and
          all(b['min'] <= b['max'] for b in h),
          'histogram counts %d, events %d' % (sum(b['count'] for b in h), total))
    hb = {(b['min'], b['max']): b['count'] for b in h}
    check('prog-hist-buckets', hb.get((65536, 131071), 0) >= 1 and
          hb.get((32, 63), 0) >= 100, 'buckets %s' % hb)

    # Several files at once: the processes' totals add up.
    s_all = decode_json('summary', '--json', *allf)
    check('prog-multi-file', sorted(x['pid'] for x in s_all) == sorted(procs),
          'summary of all files: %s' % [x['pid'] for x in s_all])

    # Plots.
    svg = os.path.join(d, 'live.svg')
    r = decode('plot', '--no-gnuplot', svg, *allf)
    body = open(svg).read() if os.path.exists(svg) else ''
    check('prog-plot-svg', r.returncode == 0 and body.startswith('<?xml') and
          '<polyline' in body and body.rstrip().endswith('</svg>') and len(body) > 2000,
          'exit %d, %d bytes: %s' % (r.returncode, len(body), r.stderr))
    if shutil.which('gnuplot'):
        gsvg = os.path.join(d, 'gp.svg')
        r = decode('plot', gsvg, pf)
        body = open(gsvg).read() if os.path.exists(gsvg) else ''
        check('prog-plot-gnuplot-svg', r.returncode == 0 and '<svg' in body and
              len(body) > 2000, 'exit %d, %d bytes: %s' % (r.returncode, len(body), r.stderr))
        png = os.path.join(d, 'live.png')
        r = decode('plot', png, *allf)
        head = open(png, 'rb').read(8) if os.path.exists(png) else b''
        check('prog-plot-gnuplot-png', r.returncode == 0 and head == b'\x89PNG\r\n\x1a\n'
              and os.path.getsize(png) > 1000, 'exit %d: %s' % (r.returncode, r.stderr))
    else:
        print('skip prog-plot-gnuplot: gnuplot not installed')


def group_silent(tmp, prog):
    d = os.path.join(tmp, 'silent')
    os.mkdir(d)
    listing = os.path.join(d, 'dir')
    os.mkdir(listing)
    for i in range(20):
        with open(os.path.join(listing, 'file%02d' % i), 'w') as f:
            f.write('x' * i)
    py = '/usr/bin/python3' if os.path.exists('/usr/bin/python3') else PY
    cases = [('python3', [py, '-c', 'pass']),
             ('python3-work', [py, '-c', 'import json, re; print(sorted(json.loads('
                               '"[3,1,2]")), re.sub("a+", "b", "caaat"))']),
             ('ls', ['ls', '-la', '--time-style=+%s', listing])]
    for name, cmd in cases:
        logdir = os.path.join(d, name)
        os.mkdir(logdir)             # first: ls lists ".." with its mtime
        base = run(cmd, clean_env())
        r = run(cmd, traced_env(os.path.join(logdir, 't.%p')))
        check('silent-%s-output' % name,
              (r.returncode, r.stdout, r.stderr) == (base.returncode, base.stdout, base.stderr),
              'without the log: exit %d %r %r; with: exit %d %r %r'
              % (base.returncode, base.stdout[-500:], base.stderr[-500:],
                 r.returncode, r.stdout[-500:], r.stderr[-500:]))
        files = glob.glob(os.path.join(logdir, 't.*'))
        if not check('silent-%s-file' % name, len(files) == 1, 'log files: %s' % files):
            continue
        s = decode('summary', '--json', files[0])
        try:
            js = json.loads(s.stdout)
        except ValueError:
            js = None
        check('silent-%s-decodes' % name,
              s.returncode == 0 and s.stderr == '' and js and js[0]['complete'] and
              js[0]['events'] > 50 and js[0]['call_sites'] > 5,
              'exit %d %s %s' % (s.returncode, s.stderr, s.stdout[:1000]))


def group_decoder(tmp, prog):
    d = os.path.join(tmp, 'decoder')
    os.mkdir(d)
    # Every process appends to the same file.
    shared = os.path.join(d, 'shared.log')
    r = run([prog, '2', '500'], traced_env(shared))
    if not check('decoder-shared-runs', r.returncode == 0 and r.stderr == '',
                 'exit %d %s' % (r.returncode, r.stderr)):
        return
    procs, children, known = parse_prog_output(r.stdout)
    s = decode_json('summary', '--json', shared)
    check('decoder-shared-split', sorted(x['pid'] for x in s) == sorted(procs) and
          all(x['complete'] for x in s), 'processes in the shared file: %s'
          % [(x['pid'], x['complete']) for x in s])
    for pid, want in procs.items():
        sites = decode_json('sites', '--json', '--pid', str(pid), shared)
        mine = own_sites(sites)
        got = (sum(x['allocs'] for x in mine), sum(x['frees'] for x in mine),
               sum(x['reallocs'] for x in mine))
        check('decoder-shared-counts-%d' % pid,
              got == (want['malloc'], want['free'], want['realloc']),
              'log %s, program %s' % (got, want))

    # Separate files, then concatenated.
    sep = os.path.join(d, 'sep')
    os.mkdir(sep)
    r = run([prog, '1', '200'], traced_env(os.path.join(sep, 't.%p')))
    files = sorted(glob.glob(os.path.join(sep, 't.*')))
    cat = os.path.join(d, 'cat.log')
    with open(cat, 'wb') as out:
        for f in files:
            with open(f, 'rb') as inp:
                out.write(inp.read())
    s1 = decode_json('summary', '--json', *files)
    s2 = decode_json('summary', '--json', cat)
    strip = lambda xs: sorted((x['pid'], x['events'], x['peak_live_bytes']) for x in xs)
    check('decoder-concatenated', len(files) == 3 and strip(s1) == strip(s2),
          'files %s: %s vs %s' % (files, strip(s1), strip(s2)))

    # Truncated: inside the last record, inside a chunk, inside the header.
    data = open(files[0], 'rb').read()
    whole = decode_json('summary', '--json', files[0])[0]
    for name, cut in (('last-record', len(data) - 13), ('middle', len(data) // 2 + 5),
                      ('header', 30), ('magic', 5)):
        tf = os.path.join(d, 'trunc-' + name)
        with open(tf, 'wb') as f:
            f.write(data[:cut])
        results = []
        for cmd in (['summary', '--json'], ['text'], ['sites'], ['hist'],
                    ['plot', '--no-gnuplot', tf + '.svg']):
            rr = decode(*(cmd + [tf]))
            results.append(rr)
        tb = [rr for rr in results if 'Traceback' in rr.stderr]
        if name in ('header', 'magic'):
            check('decoder-truncated-' + name, not tb and
                  all(rr.returncode != 0 or rr.stdout.strip() in ('', '[]')
                      for rr in results[:1]),
                  'stderr: %s' % [rr.stderr for rr in results])
            continue
        try:
            s = json.loads(results[0].stdout)[0]
        except (ValueError, IndexError):
            s = None
        check('decoder-truncated-' + name,
              not tb and all(rr.returncode == 0 for rr in results) and s and
              not s['complete'] and 0 < s['events'] <= whole['events'] and
              'truncated' in results[0].stderr,
              'exits %s, summary %s, stderr %s'
              % ([rr.returncode for rr in results], s, results[0].stderr[-1000:]))

    # exec: one pid, two images, each with its own header.
    ex = os.path.join(d, 'exec')
    os.mkdir(ex)
    r = run([prog, 'exec'], traced_env(os.path.join(ex, 't.%p')))
    files = glob.glob(os.path.join(ex, 't.*'))
    procs, _, _ = parse_prog_output(r.stdout)
    if check('decoder-exec-runs', r.returncode == 0 and len(files) == 1 and
             len(procs) == 1, 'exit %d, files %s, output %r'
             % (r.returncode, files, r.stdout)):
        s = decode_json('summary', '--json', files[0])
        pid = list(procs)[0]
        check('decoder-exec-images',
              [(x['pid'], x['complete']) for x in s] == [(pid, False), (pid, True)]
              and s[0]['malloc'] >= 2000 and s[0]['malloc'] <= 3000 and
              s[1]['malloc'] >= 10 and s[1]['first_ns'] < 100000000 <= s[0]['first_ns'],
              'images %s' % [(x['pid'], x['complete'], x['malloc'], x['first_ns'],
                              x['last_ns']) for x in s])
        sites = decode_json('sites', '--json', files[0])
        mine = own_sites(sites)
        check('decoder-exec-counts',
              sum(x['allocs'] for x in mine) == procs[pid]['malloc'] and
              sum(x['frees'] for x in mine) == procs[pid]['free'],
              'sites of the exec\'d image %s, program %s'
              % ([(x['allocs'], x['frees']) for x in mine], procs[pid]))

    # More threads alive at once than the log has buffers.
    mn = os.path.join(d, 'many')
    os.mkdir(mn)
    r = run([prog, 'many', '1100'], traced_env(os.path.join(mn, 't.%p')))
    files = glob.glob(os.path.join(mn, 't.*'))
    procs, _, _ = parse_prog_output(r.stdout)
    if check('decoder-many-threads-runs', r.returncode == 0 and r.stderr == '' and
             len(files) == 1 and len(procs) == 1,
             'exit %d, files %s, stderr %r' % (r.returncode, files, r.stderr[-500:])):
        want = list(procs.values())[0]
        s = decode_json('summary', '--json', files[0])[0]
        mine = own_sites(decode_json('sites', '--json', files[0]))
        got = (sum(x['allocs'] for x in mine), sum(x['frees'] for x in mine))
        check('decoder-many-threads', s['complete'] and s['threads'] >= 1101 and
              got == (want['malloc'], want['free']) == (3301, 3301),
              'threads %d, log %s, program %s' % (s['threads'], got, want))

    # Garbage is refused without a traceback.
    junk = os.path.join(d, 'junk')
    with open(junk, 'wb') as f:
        f.write(b'not a log at all\n' * 10)
    rr = decode('summary', junk)
    check('decoder-junk', rr.returncode != 0 and 'Traceback' not in rr.stderr,
          'exit %d: %s' % (rr.returncode, rr.stderr))


GROUPS = {'prog': group_prog, 'silent': group_silent, 'decoder': group_decoder}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('groups', nargs='+', choices=sorted(GROUPS))
    ap.add_argument('--bin', default=os.path.join(BUILD, 'tests', 'trace'))
    ap.add_argument('--keep', action='store_true', help='keep the temporary directory')
    args = ap.parse_args()
    prog = os.path.join(args.bin, PROG_NAME)
    if not os.path.exists(LIB) or not os.path.exists(prog):
        print('FAIL setup: missing %s or %s' % (LIB, prog))
        return 1
    tmp = tempfile.mkdtemp(prefix='fbtrace-test-')
    try:
        for g in args.groups:
            try:
                GROUPS[g](tmp, prog)
            except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                fail(g, str(e))
    finally:
        if args.keep:
            print('kept ' + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print('%d passed, %d failed' % (passes, failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
