#!/usr/bin/python3
"""check_leaks.py -- driver of the leak-report corpus (tests/leaks/).

usage: check_leaks.py GROUP... [--bin DIR] [--src DIR] [--case SUBSTR]
                      [--keep] [--list]

Groups (each registered as one meson test, leaks-<group>):
  corpus-c    the C corpus: exact leaks of each program (JSON report)
  corpus-cxx  C++ new / new[] (demangled names)
  traps       clean programs and known traps: nothing libc/libstdc++/ld.so
              keeps on purpose is a leak, thread stacks are roots, exit
              codes, exit() from a thread, suppressions,
              fbmalloc_leak_check(), the scripts/fbmalloc launcher
  format      the text report's exact grammar, text == JSON, LEAKS=all,
              module offsets agree with addr2line
  valgrind    fbmalloc's direct/indirect leaks == valgrind's "definitely
              lost"/"indirectly lost" for a few programs of the corpus and
              for python3 (imports) and cc1, whose roots lie in their own
              anonymous mappings (skip if no valgrind)
  real        python3, git, sqlite3 under FBMALLOC_LEAKS=1: same output,
              a parseable report, few direct leaks (numbers printed)
  selftest    the driver's own logic on synthetic reports (needs neither
              the library nor the programs' runs)

Each program's top comment states its expected leaks in lines such as
    EXPECT: direct 3 blocks, 120 bytes, from leak_three at @three
    EXPECT(tag): no leaks
    EXPECT(tag): suppressed 3 blocks, 150 bytes
with a marker comment /* LEAK: three */ on the allocating line; this driver
reads both, so the expected file:line follows the code when it moves.  An
expectation matches a report group when the group's kind agrees (kind
"leak" accepts direct or indirect) and the stack has the named function
at the marker's file (basename) and line, as frame #0 unless the options
say otherwise:
    frame=N|any        index of that frame (default 0)
    f0=SUBSTR          frame #0's function contains SUBSTR (e.g. strdup)
    above=PREFIX       every frame above it is in a module whose basename
                       starts with PREFIX (e.g. libc.so)
    module=NAME        that frame's module basename is NAME
    via=FUNC           a frame below it is FUNC (e.g. main, past libc)
    bytes A|B          either byte count is accepted
Exactly one group must match each expectation, with exactly the stated
blocks and bytes; every direct or indirect group must match one; the
summary must agree with the groups.

Environment: FBMALLOC_LIB (libfbmalloc.so; default
$FBMALLOC_BUILD/libfbmalloc.so), FBMALLOC_BUILD, FBMALLOC_SRC.
Prints "ok <case>" or "FAIL <case>: <what differed>" (with a report
excerpt) per case and a final count.  Exit 0 if all passed, 1 if any
failed, 77 if everything was skipped.
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
PY = '/usr/bin/python3'
RUN_TIMEOUT = 120
EXCERPT_LINES = 40


# --------------------------------------------------------------------------
# Expectations from the sources
# --------------------------------------------------------------------------

EXPECT_RE = re.compile(r'EXPECT(?:\((?P<tag>[\w-]+)\))?:\s*(?P<body>.*\S)')
LEAK_BODY_RE = re.compile(
    r'(?P<kind>direct|indirect|leak|reachable)\s+(?P<blocks>[\d,]+)\s+blocks?,'
    r'\s+(?P<bytes>[\d,|]+)\s+bytes,\s+from\s+(?P<func>\S+)\s+at\s+'
    r'@(?P<site>[\w-]+)(?P<opts>(?:\s+[\w]+=\S+)*)$')
SUPP_BODY_RE = re.compile(
    r'suppressed\s+(?P<blocks>[\d,]+)\s+blocks?,\s+(?P<bytes>[\d,]+)\s+bytes$')
MARK_RE = re.compile(r'/\*\s*LEAK:\s*([\w-]+)\s*\*/')


def num(s):
    return int(s.replace(',', ''))


class Site:
    def __init__(self, path, line):
        self.path, self.line = path, line
        self.base = os.path.basename(path)

    def __str__(self):
        return '%s:%d' % (self.base, self.line)


class Expect:
    def __init__(self, kind, blocks, nbytes, func, site, opts):
        self.kind, self.blocks, self.bytes = kind, blocks, nbytes
        self.func, self.site = func, site
        self.frame = 0
        self.f0 = self.above = self.module = self.via = None
        for key, val in opts.items():
            if key == 'frame':
                self.frame = val if val == 'any' else int(val)
            elif key in ('f0', 'above', 'module', 'via'):
                setattr(self, key, val)
            else:
                raise ValueError('unknown EXPECT option %s=' % key)

    def __str__(self):
        b = '|'.join('{:,}'.format(x) for x in self.bytes)
        return '%s %s block%s, %s bytes, from %s at %s' % (
            self.kind, '{:,}'.format(self.blocks),
            '' if self.blocks == 1 else 's', b, self.func, self.site)


class Spec:
    """The expectations of one tag of one program."""

    def __init__(self):
        self.expects = []
        self.suppressed = None      # (blocks, bytes) or None = 0
        self.clean = False


def load_spec(sources, tag):
    """Parses the EXPECT lines of sources[0]'s top comment for tag ('' =
    untagged) and resolves their @sites in all sources."""
    sites = {}
    for path in sources:
        with open(path) as f:
            for i, line in enumerate(f, 1):
                for m in MARK_RE.finditer(line):
                    if m.group(1) in sites:
                        raise ValueError('marker LEAK: %s twice (%s, %s:%d)'
                                         % (m.group(1), sites[m.group(1)],
                                            os.path.basename(path), i))
                    sites[m.group(1)] = Site(path, i)
    with open(sources[0]) as f:
        text = f.read()
    top = text[:text.index('*/')] if '*/' in text else ''
    spec = Spec()
    seen = False
    for line in top.splitlines():
        m = EXPECT_RE.search(line)
        if not m or (m.group('tag') or '') != tag:
            continue
        seen = True
        body = m.group('body')
        if body == 'no leaks':
            spec.clean = True
            continue
        s = SUPP_BODY_RE.match(body)
        if s:
            spec.suppressed = (num(s.group('blocks')), num(s.group('bytes')))
            continue
        e = LEAK_BODY_RE.match(body)
        if not e:
            raise ValueError('%s: cannot parse EXPECT line: %s'
                             % (os.path.basename(sources[0]), line.strip()))
        if e.group('site') not in sites:
            raise ValueError('%s: no /* LEAK: %s */ marker'
                             % (os.path.basename(sources[0]), e.group('site')))
        opts = dict(o.split('=', 1) for o in e.group('opts').split())
        spec.expects.append(Expect(
            e.group('kind'), num(e.group('blocks')),
            tuple(num(x) for x in e.group('bytes').split('|')),
            e.group('func'), sites[e.group('site')], opts))
    if not seen:
        raise ValueError('%s has no EXPECT%s lines'
                         % (os.path.basename(sources[0]),
                            '(%s)' % tag if tag else ''))
    if spec.clean and any(e.kind != 'reachable' for e in spec.expects):
        raise ValueError('%s: "no leaks" and leak expectations for tag %r'
                         % (os.path.basename(sources[0]), tag))
    return spec


# --------------------------------------------------------------------------
# Reports: JSON documents, the text format, rendering
# --------------------------------------------------------------------------

SUMMARY_KEYS = ('leaks', 'bytes', 'blocks', 'direct_bytes', 'direct_blocks',
                'indirect_bytes', 'indirect_blocks', 'reachable_bytes',
                'reachable_blocks', 'suppressed_bytes', 'suppressed_blocks')
FRAME_KEYS = ('function', 'file', 'line', 'module', 'offset')
KINDS = ('direct', 'indirect', 'reachable')


def parse_json_docs(text):
    """All JSON documents in text (one per report: on-demand checks append
    to the same output).  Returns (reports, problem or None)."""
    dec = json.JSONDecoder()
    docs, i = [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        try:
            doc, i = dec.raw_decode(text, i)
        except ValueError as e:
            return docs, 'not valid JSON at offset %d: %s' % (i, e)
        if not isinstance(doc, dict) or 'fbmalloc_leak_report' not in doc:
            return docs, 'a JSON document without "fbmalloc_leak_report"'
        docs.append(doc['fbmalloc_leak_report'])
    return docs, None


def validate_structure(rep):
    """Problems with the shape of one report (JSON or parsed text)."""
    probs = []
    if not isinstance(rep, dict):
        return ['report is not an object']
    for key in ('pid', 'program', 'leaks', 'summary'):
        if key not in rep:
            probs.append('report has no "%s"' % key)
    if probs:
        return probs
    if not isinstance(rep['leaks'], list):
        return ['"leaks" is not a list']
    for i, g in enumerate(rep['leaks']):
        for key in ('kind', 'bytes', 'blocks', 'stack'):
            if key not in g:
                probs.append('leaks[%d] has no "%s"' % (i, key))
        if probs:
            return probs
        if g['kind'] not in KINDS:
            probs.append('leaks[%d]: unknown kind %r' % (i, g['kind']))
        if not isinstance(g['stack'], list) or not g['stack']:
            probs.append('leaks[%d]: empty stack' % i)
            continue
        for j, fr in enumerate(g['stack']):
            for key in FRAME_KEYS:
                if key not in fr:
                    probs.append('leaks[%d].stack[%d] has no "%s"'
                                 % (i, j, key))
    s = rep['summary']
    for key in SUMMARY_KEYS:
        if key not in s:
            probs.append('summary has no "%s"' % key)
    return probs


def fmt_frame(i, fr):
    func = fr.get('function') or '??'
    at = ''
    if fr.get('file') and fr.get('line'):
        at = ' at %s:%d' % (fr['file'], fr['line'])
    return '    #%d %s%s (%s+0x%x)' % (i, func, at,
                                      os.path.basename(fr.get('module') or '?'),
                                      fr.get('offset') or 0)


def blocks_word(n):
    return '{:,} block{}'.format(n, '' if n == 1 else 's')


def render_text(rep):
    """The contract's text format for a report (used for excerpts, and by
    the self-test as input of the text parser)."""
    out = ['fbmalloc: leak report for pid %s (%s)'
           % (rep.get('pid'), rep.get('program'))]
    for g in rep.get('leaks', []):
        if g.get('kind') == 'reachable':
            out.append('fbmalloc: still reachable: {:,} bytes in {}, '
                       'allocated from:'.format(g['bytes'],
                                                blocks_word(g['blocks'])))
        else:
            out.append('fbmalloc: {} leak of {:,} bytes in {}, allocated '
                       'from:'.format(g.get('kind'), g['bytes'],
                                      blocks_word(g['blocks'])))
        for i, fr in enumerate(g.get('stack', [])):
            out.append(fmt_frame(i, fr))
    s = rep.get('summary', {})
    line = 'fbmalloc: {:,} leak{} ({:,} bytes in {}); {} still reachable'.format(
        s.get('leaks', 0), '' if s.get('leaks') == 1 else 's',
        s.get('bytes', 0), blocks_word(s.get('blocks', 0)),
        blocks_word(s.get('reachable_blocks', 0)))
    if s.get('suppressed_blocks'):
        line += '; {:,} suppressed'.format(s['suppressed_blocks'])
    out.append(line)
    return '\n'.join(out) + '\n'


NUMS = r'\d{1,3}(?:,\d{3})*'
T_HEADER = re.compile(r'^fbmalloc: leak report for pid (\d+) \((.*)\)$')
T_LEAK = re.compile(r'^fbmalloc: (direct|indirect) leak of (%s) bytes in (%s) '
                    r'(blocks?), allocated from:$' % (NUMS, NUMS))
T_REACH = re.compile(r'^fbmalloc: still reachable: (%s) bytes in (%s) '
                     r'(blocks?), allocated from:$' % (NUMS, NUMS))
T_FRAME = re.compile(r'^    #(\d+) (.+) \(([^()]+)\+0x([0-9a-f]+)\)$')
T_AT = re.compile(r'^(.*) at (\S.*):(\d+)$')
T_SUMMARY = re.compile(r'^fbmalloc: (%s) leaks? \((%s) bytes in (%s) '
                       r'(blocks?)\); (%s) (blocks?) still reachable'
                       r'(?:; (%s) suppressed)?$' % (NUMS, NUMS, NUMS, NUMS,
                                                     NUMS))


def check_plural(n, word, where, probs):
    want = 'block' if n == 1 else 'blocks'
    if word != want:
        probs.append('%s: "%s %s" (want "%s")' % (where, '{:,}'.format(n),
                                                  word, want))


def parse_text(text):
    """Parses every text report in text (other lines are ignored, but every
    line starting with "fbmalloc:" or "    #" must fit the grammar).
    Returns (reports, problems); reports have the JSON shape, with summary
    fields the text does not carry set to None."""
    reps, probs = [], []
    cur = grp = None

    def bad(line, why):
        probs.append('%s: %r' % (why, line))

    for line in text.splitlines():
        if not (line.startswith('fbmalloc:') or line.startswith('    #')):
            continue
        # FBMALLOC_VERBOSE's configuration block at start-up, not a report
        if re.match(r'fbmalloc:   FBMALLOC_[A-Z_]+=', line):
            continue
        m = T_HEADER.match(line)
        if m:
            if cur is not None:
                bad(line, 'new report before the summary of the previous one')
            cur = {'pid': int(m.group(1)), 'program': m.group(2),
                   'leaks': [], 'summary': None}
            grp = None
            continue
        if cur is None:
            bad(line, 'report line outside a report (no header before it)')
            continue
        m = T_LEAK.match(line) or T_REACH.match(line)
        if m:
            if m.re is T_LEAK:
                kind, nb, nk, word = m.group(1), m.group(2), m.group(3), m.group(4)
            else:
                kind, nb, nk, word = 'reachable', m.group(1), m.group(2), m.group(3)
            check_plural(num(nk), word, 'group line', probs)
            grp = {'kind': kind, 'bytes': num(nb), 'blocks': num(nk),
                   'stack': []}
            cur['leaks'].append(grp)
            continue
        m = T_FRAME.match(line)
        if m:
            if grp is None:
                bad(line, 'frame line before any group line')
                continue
            idx = int(m.group(1))
            if idx != len(grp['stack']):
                bad(line, 'frame #%d where #%d was due' % (idx, len(grp['stack'])))
            body = m.group(2)
            a = T_AT.match(body)
            if a:
                func, file, lineno = a.group(1), a.group(2), int(a.group(3))
            else:
                func, file, lineno = body, '', 0
            if ' at ' in func and not a:
                bad(line, 'frame with " at " but no file:line')
            grp['stack'].append({'function': '' if func == '??' else func,
                                 'file': file, 'line': lineno,
                                 'module': m.group(3),
                                 'offset': int(m.group(4), 16)})
            continue
        m = T_SUMMARY.match(line)
        if m:
            check_plural(num(m.group(3)), m.group(4), 'summary', probs)
            check_plural(num(m.group(5)), m.group(6), 'summary', probs)
            cur['summary'] = {
                'leaks': num(m.group(1)), 'bytes': num(m.group(2)),
                'blocks': num(m.group(3)),
                'reachable_blocks': num(m.group(5)),
                'suppressed_blocks': num(m.group(7)) if m.group(7) else 0,
            }
            for k in ('direct', 'indirect'):
                gs = [g for g in cur['leaks'] if g['kind'] == k]
                cur['summary'][k + '_bytes'] = sum(g['bytes'] for g in gs)
                cur['summary'][k + '_blocks'] = sum(g['blocks'] for g in gs)
            for k in ('reachable_bytes', 'suppressed_bytes'):
                cur['summary'][k] = None
            reps.append(cur)
            cur = grp = None
            continue
        bad(line, 'line does not fit the text report grammar')
    if cur is not None:
        probs.append('report for pid %s has no summary line' % cur['pid'])
    # Groups sorted by bytes, largest first (leaks and reachable apart).
    for r in reps:
        for kinds in (('direct', 'indirect'), ('reachable',)):
            sizes = [g['bytes'] for g in r['leaks'] if g['kind'] in kinds]
            if sizes != sorted(sizes, reverse=True):
                probs.append('groups not sorted by bytes, largest first: %s'
                             % sizes)
    # The summary line is the last line of each report's block of output.
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if reps and not T_SUMMARY.match(lines[-1]):
        probs.append('the last line is not the summary: %r' % lines[-1])
    return reps, probs


def normalize(rep):
    """Comparable form of a report's groups (text vs JSON)."""
    out = []
    for g in rep['leaks']:
        out.append((g['kind'], g['bytes'], g['blocks'], tuple(
            (fr['function'] or '', os.path.basename(fr['file'] or ''),
             fr['line'] or 0, os.path.basename(fr['module'] or ''),
             fr['offset']) for fr in g['stack'])))
    return sorted(out)


def short_stack(g, n=4):
    parts = []
    for i, fr in enumerate(g['stack'][:n]):
        at = ''
        if fr.get('file'):
            at = ' at %s:%s' % (os.path.basename(fr['file']), fr.get('line'))
        parts.append('#%d %s%s (%s)' % (i, fr.get('function') or '??', at,
                                        os.path.basename(fr.get('module') or '?')))
    if len(g['stack']) > n:
        parts.append('...')
    return ' <- '.join(parts)


def describe(g):
    return '%s %s, %s bytes: %s' % (g['kind'], blocks_word(g['blocks']),
                                    '{:,}'.format(g['bytes']), short_stack(g))


# --------------------------------------------------------------------------
# Checking a report against a Spec
# --------------------------------------------------------------------------

def frame_is(fr, func, site):
    return (fr.get('function') == func
            and os.path.basename(fr.get('file') or '') == site.base
            and fr.get('line') == site.line)


def kind_ok(g, e):
    if e.kind == 'leak':
        return g['kind'] in ('direct', 'indirect')
    return g['kind'] == e.kind


def position(g, e):
    """Index of the expected user frame in g's stack, or None."""
    idx = [i for i, fr in enumerate(g['stack']) if frame_is(fr, e.func, e.site)]
    if not idx:
        return None
    if e.frame == 'any':
        return idx[0]
    return e.frame if e.frame in idx else None


def explain_miss(rep, e):
    """Why no group matched e: the nearest groups."""
    hints = []
    for g in rep['leaks']:
        for i, fr in enumerate(g['stack']):
            if fr.get('function') == e.func:
                hints.append('has %s as frame #%d at %s:%s, %s' % (
                    e.func, i, os.path.basename(fr.get('file') or '') or '?',
                    fr.get('line'), describe(g)))
                break
    if not hints:
        same = [g for g in rep['leaks'] if g['bytes'] in e.bytes
                and g['blocks'] == e.blocks]
        if same:
            hints.append('same size: ' + describe(same[0]))
        else:
            hints.append('no group mentions %s' % e.func)
    return '; '.join(hints[:3])


def check_report(rep, spec, listed_reachable, strict_unexpected=True):
    probs = validate_structure(rep)
    if probs:
        return probs
    leaks = [g for g in rep['leaks'] if g['kind'] in ('direct', 'indirect')]
    reach = [g for g in rep['leaks'] if g['kind'] == 'reachable']
    if reach and not listed_reachable:
        probs.append('%d still-reachable groups listed although '
                     'FBMALLOC_LEAKS=1 (only =all lists them)' % len(reach))
    matched = set()
    for e in spec.expects:
        pool = reach if e.kind == 'reachable' else leaks
        cands = [g for g in pool if kind_ok(g, e) and position(g, e) is not None]
        if not cands:
            other = [g for g in rep['leaks'] if position(g, e) is not None]
            if other:
                probs.append('expected %s; found it as %s' % (
                    e, ', '.join(describe(g) for g in other)))
            else:
                probs.append('expected %s; not found (%s)'
                             % (e, explain_miss(rep, e)))
            continue
        if len(cands) > 1:
            probs.append('expected ONE group %s; found %d: %s' % (
                e, len(cands), ' | '.join(describe(g) for g in cands)))
        g = cands[0]
        for c in cands:
            matched.add(id(c))
        if sum(c['blocks'] for c in cands) != e.blocks or \
                sum(c['bytes'] for c in cands) not in e.bytes:
            probs.append('expected %s; got %s' % (e, describe(g)))
        i = position(g, e)
        st = g['stack']
        if e.f0 and e.f0 not in (st[0].get('function') or ''):
            probs.append('%s: frame #0 is %r, expected a function containing '
                         '%r' % (e, st[0].get('function'), e.f0))
        if e.above:
            for j in range(i):
                mod = os.path.basename(st[j].get('module') or '')
                if not mod.startswith(e.above):
                    probs.append('%s: frame #%d (%s) is in module %r, expected '
                                 '%s*' % (e, j, st[j].get('function'), mod,
                                          e.above))
        if e.via and not any(fr.get('function') == e.via for fr in st[i + 1:]):
            probs.append('%s: no frame %s below frame #%d: %s'
                         % (e, e.via, i, short_stack(g, 12)))
        if e.module:
            mod = os.path.basename(st[i].get('module') or '')
            if mod != e.module:
                probs.append('%s: frame #%d is in module %r, expected %r'
                             % (e, i, mod, e.module))
    if strict_unexpected:
        for g in leaks:
            if id(g) not in matched:
                probs.append('unexpected %s' % describe(g))
    # The summary agrees with the groups.
    s = rep['summary']
    want = {
        'leaks': len(leaks),
        'bytes': sum(g['bytes'] for g in leaks),
        'blocks': sum(g['blocks'] for g in leaks),
    }
    for k in ('direct', 'indirect'):
        gs = [g for g in leaks if g['kind'] == k]
        want[k + '_bytes'] = sum(g['bytes'] for g in gs)
        want[k + '_blocks'] = sum(g['blocks'] for g in gs)
    if listed_reachable:
        want['reachable_blocks'] = sum(g['blocks'] for g in reach)
        if s.get('reachable_bytes') is not None:
            want['reachable_bytes'] = sum(g['bytes'] for g in reach)
    sup = spec.suppressed or (0, 0)
    want['suppressed_blocks'] = sup[0]
    if s.get('suppressed_bytes') is not None:
        want['suppressed_bytes'] = sup[1]
    for k, v in want.items():
        if s.get(k) != v:
            probs.append('summary %s = %r, expected %r' % (k, s.get(k), v))
    if not listed_reachable:
        need = sum(e.blocks for e in spec.expects if e.kind == 'reachable')
        if (s.get('reachable_blocks') or 0) < need:
            probs.append('summary reachable_blocks = %r, expected at least %d'
                         % (s.get('reachable_blocks'), need))
    return probs


# --------------------------------------------------------------------------
# Running programs
# --------------------------------------------------------------------------

class Result:
    def __init__(self, pid, rc, out, err, timed_out=False):
        self.pid, self.rc, self.out, self.err = pid, rc, out, err
        self.timed_out = timed_out


def silent_report(pid, program):
    """What a run with no leak reports at exit: nothing, i.e. no group and
    a zero summary (reachable blocks are not counted: nothing was said)."""
    return {'pid': pid, 'program': program, 'leaks': [], 'silent': True,
            'summary': {k: 0 for k in SUMMARY_KEYS}}


def run(argv, env, timeout=RUN_TIMEOUT, cwd=None):
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         cwd=cwd)
    try:
        out, err = p.communicate(timeout=timeout)
        r = Result(p.pid, p.returncode, out.decode('utf-8', 'replace'),
                   err.decode('utf-8', 'replace'))
        r.argv0 = argv[0]
        return r
    except subprocess.TimeoutExpired:
        p.kill()                      # only the process we started
        out, err = p.communicate()
        r = Result(p.pid, None, out.decode('utf-8', 'replace'),
                   err.decode('utf-8', 'replace'), timed_out=True)
        r.argv0 = argv[0]
        return r


def base_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('FBMALLOC_') and k not in (
               'LD_PRELOAD', 'LT_REQUIRE_FBMALLOC', 'MALLOC_CHECK_',
               'MALLOC_PERTURB_', 'GLIBC_TUNABLES')}
    env['LC_ALL'] = 'C'
    return env


class Failed(Exception):
    pass


class Ctx:
    """One case: its temp dir, its problems, the report to quote."""

    def __init__(self, drv, name, tmp=None):
        self.drv, self.name = drv, name
        self.tmp = tmp or tempfile.mkdtemp(prefix='fbleaks-%s.' % name)
        self.probs = []
        self.excerpt = None
        self.notes = []
        self.skipped = None

    def fail(self, msg):
        self.probs.append(msg)

    def stop(self, msg):
        self.probs.append(msg)
        raise Failed()

    def quote(self, text):
        if text is not None:
            self.excerpt = text

    def fb_env(self, leaks='1', fmt='json', output='file', extra=None):
        env = base_env()
        env['LD_PRELOAD'] = self.drv.lib
        env['LT_REQUIRE_FBMALLOC'] = '1'
        if leaks is not None:
            env['FBMALLOC_LEAKS'] = leaks
        if fmt:
            env['FBMALLOC_REPORT_FORMAT'] = fmt
        if output == 'file':
            self.outdir = tempfile.mkdtemp(prefix='out.', dir=self.tmp)
            env['FBMALLOC_OUTPUT'] = os.path.join(self.outdir, 'r.%p.' + (
                'json' if fmt == 'json' else 'txt'))
        if extra:
            env.update(extra)
        return env

    def check_rc(self, res, want, what='the program'):
        if res.timed_out:
            self.stop('%s timed out after %ds (killed)' % (what, RUN_TIMEOUT))
        if res.rc == 97:
            self.stop('libfbmalloc was not loaded (the program found no '
                      'fbmalloc_version): %s' % res.err.strip()[-300:])
        if res.rc != want:
            sig = ' (killed by signal %d)' % -res.rc if res.rc < 0 else ''
            self.fail('%s exited with %s%s, expected %s; stderr: %s' % (
                what, res.rc, sig, want, res.err.strip()[-800:] or '(empty)'))

    def output_files(self):
        return sorted(glob.glob(os.path.join(self.outdir, 'r.*')))

    def reports_of(self, path):
        with open(path, errors='replace') as f:
            text = f.read()
        if path.endswith('.json'):
            docs, err = parse_json_docs(text)
            if err:
                self.quote(text[:4000])
                self.stop('%s: %s' % (os.path.basename(path), err))
            return docs, text
        reps, probs = parse_text(text)
        for p in probs:
            self.fail('%s: %s' % (os.path.basename(path), p))
        return reps, text

    def one_report(self, res, nreports=1, silent_ok=False):
        """The JSON report of the run: exactly one file r.<pid>.json holding
        nreports documents; returns the last.  silent_ok: the program has
        no leak, so at exit fbmalloc says nothing (no file at all) unless
        FBMALLOC_LEAKS=all or FBMALLOC_VERBOSE; then an empty report
        stands for the silence."""
        files = self.output_files()
        want = os.path.join(self.outdir, 'r.%d.json' % res.pid)
        if not files and silent_ok:
            return silent_report(res.pid, res.argv0)
        if not files:
            self.stop('no report written (expected %s; stderr: %s)' % (
                os.path.basename(want), res.err.strip()[-500:] or '(empty)'))
        if files != [want]:
            self.fail('report files %s, expected exactly [%s]' % (
                [os.path.basename(f) for f in files], os.path.basename(want)))
            if want not in files:
                raise Failed()
        docs, text = self.reports_of(want)
        if not docs:
            self.quote(text)
            self.stop('the report file holds no report')
        self.quote(render_text(docs[-1]))
        if len(docs) != nreports:
            self.fail('%d reports in %s, expected %d' % (
                len(docs), os.path.basename(want), nreports))
        return docs[-1]

    def check_ids(self, rep, pid, exe):
        if rep.get('pid') != pid:
            self.fail('report pid %r, expected %d' % (rep.get('pid'), pid))
        prog = str(rep.get('program'))
        if os.path.basename(prog) != os.path.basename(exe):
            self.fail('report program %r, expected %s (or a path to it)'
                      % (prog, os.path.basename(exe)))

    def expect(self, rep, spec, listed_reachable=False):
        for p in check_report(rep, spec, listed_reachable):
            self.fail(p)


class Driver:
    def __init__(self, args):
        self.bin = os.path.abspath(args.bin)
        self.src = os.path.abspath(args.src)
        build = os.environ.get('FBMALLOC_BUILD', '')
        self.lib = os.environ.get('FBMALLOC_LIB') or (
            os.path.join(build, 'libfbmalloc.so') if build else '')
        self.keep = args.keep
        self.case_filter = args.case
        self.n_ok = self.n_fail = self.n_skip = 0

    def exe(self, prog):
        return os.path.join(self.bin, 'leaks-' + prog)

    def module(self, name):
        return os.path.join(self.bin, name)

    def source(self, prog):
        for ext in ('.c', '.cpp'):
            p = os.path.join(self.src, prog + ext)
            if os.path.exists(p):
                return p
        raise ValueError('no source for %s in %s' % (prog, self.src))

    def spec(self, prog, tag='', extra_sources=()):
        srcs = [self.source(prog)] + [os.path.join(self.src, s)
                                      for s in extra_sources]
        return load_spec(srcs, tag)

    def case(self, name, fn):
        if self.case_filter and self.case_filter not in name:
            return
        ctx = Ctx(self, name)
        try:
            fn(ctx)
        except Failed:
            pass
        except Exception as e:            # a driver bug or a missing file
            import traceback
            ctx.fail('driver error: %s: %s\n%s' % (
                type(e).__name__, e, traceback.format_exc()))
        if ctx.skipped and not ctx.probs:
            print('skip %s: %s' % (name, ctx.skipped))
            self.n_skip += 1
        elif ctx.probs:
            self.n_fail += 1
            print('FAIL %s: %s' % (name, ctx.probs[0]))
            for p in ctx.probs[1:]:
                print('    also: %s' % p)
            if ctx.excerpt:
                lines = ctx.excerpt.rstrip('\n').split('\n')
                print('    report excerpt:')
                for ln in lines[:EXCERPT_LINES]:
                    print('      | ' + ln)
                if len(lines) > EXCERPT_LINES:
                    print('      | ... (%d more lines)' % (len(lines) - EXCERPT_LINES))
            print('    (temp dir kept: %s)' % ctx.tmp)
        else:
            self.n_ok += 1
            print('ok %s' % name)
            for n in ctx.notes:
                print('    ' + n)
        sys.stdout.flush()
        if not ctx.probs and not self.keep:
            shutil.rmtree(ctx.tmp, ignore_errors=True)

    # ----------------------------------------------------------------------
    # Generic corpus case: one run, one JSON report, the tag's expectations

    def corpus(self, name, prog, args=(), tag='', leaks='1', rc=0,
               extra_env=None, extra_sources=(), listed_reachable=None,
               after=None):
        def fn(ctx):
            spec = self.spec(prog, tag, extra_sources)
            exe = self.exe(prog)
            res = run([exe] + list(args),
                      ctx.fb_env(leaks=leaks, extra=extra_env))
            ctx.check_rc(res, rc)
            rep = ctx.one_report(res, silent_ok=spec.clean and leaks != 'all')
            ctx.check_ids(rep, res.pid, exe)
            ctx.expect(rep, spec, listed_reachable=(
                leaks == 'all' if listed_reachable is None else listed_reachable))
            if after:
                after(ctx, rep, res)
        self.case(name, fn)

    # ----------------------------------------------------------------------
    # Groups

    def group_corpus_c(self):
        for prog in ('plain', 'calloc', 'realloc', 'strdup', 'indirect',
                     'cycle', 'thread', 'many', 'aligned', 'stale',
                     'ctor', 'callbacks', 'end_pointer', 'sighandler'):
            self.corpus(prog, prog)
        self.case('big-100MB-30-runs', self.big_case)
        self.corpus('inlined-frames', 'inlined', after=self.after_inlined)
        self.corpus('dlopen-dlclose', 'dl_main',
                    args=[self.module('libleakdl.so')],
                    extra_sources=['dl_lib.c'], after=self.after_dl)
        self.case('fork', self.fork_case)

        def depth(n):
            def after(ctx, rep, res):
                for g in rep['leaks']:
                    if g['stack'][0].get('function') == 'leak_deep' and \
                            len(g['stack']) != n:
                        ctx.fail('stack of %d frames, expected exactly %d '
                                 '(FBMALLOC_STACK_DEPTH=%s, the leak is 32 '
                                 'calls deep): %s' % (len(g['stack']), n,
                                                      n, short_stack(g, 40)))
                    if g['stack'][0].get('function') == 'leak_deep':
                        rec = [fr.get('function') for fr in g['stack'][1:n]]
                        if any(f != 'recurse' for f in rec):
                            ctx.fail('frames #1..#%d should all be recurse: %s'
                                     % (n - 1, rec))
            return after
        self.corpus('end-pointers-leaks-all', 'end_pointer', tag='all',
                    leaks='all')
        self.corpus('stack-depth-default', 'depth', after=depth(16))
        for n in (4, 1):
            self.corpus('stack-depth-%d' % n, 'depth', after=depth(n),
                        extra_env={'FBMALLOC_STACK_DEPTH': str(n)})

    def big_case(self, ctx, runs=30):
        """big.c, 30 times (ASLR moves the block): every run must report
        it as a direct leak."""
        self.repeat(ctx, 'big', runs)

    def after_inlined(self, ctx, rep, res):
        """inlined.c (-O2): make_inner, inlined into make_middle, inlined
        into leak_outer: three frames at the same offset, each at its own
        line (the malloc, then each call), as addr2line -i."""
        spec_sites = {}
        with open(self.source('inlined')) as f:
            for i, line in enumerate(f, 1):
                m = MARK_RE.search(line)
                if m:
                    spec_sites[m.group(1)] = i
        want = [('make_inner', spec_sites['inner']),
                ('make_middle', spec_sites['middle']),
                ('leak_outer', spec_sites['outer'])]
        for g in rep['leaks']:
            st = g['stack']
            got = [(fr.get('function'), fr.get('line')) for fr in st[:3]]
            if got != want:
                ctx.fail('frames #0-#2 %s, expected %s' % (got, want))
            elif len({fr.get('offset') for fr in st[:3]}) != 1:
                ctx.fail('frames #0-#2 at different offsets: %s'
                         % [fr.get('offset') for fr in st[:3]])
            elif len(st) < 4 or st[3].get('function') != 'main':
                ctx.fail('frame #3 should be main: %s' % short_stack(g))

    def after_dl(self, ctx, rep, res):
        for g in rep['leaks']:
            st = g['stack']
            if st and st[0].get('function') == 'lib_make_leak':
                if len(st) < 2 or st[1].get('function') != 'main' or \
                        os.path.basename(st[1].get('file') or '') != 'dl_main.c':
                    ctx.fail('frame #1 should be main at dl_main.c: %s'
                             % short_stack(g))

    def fork_case(self, ctx):
        exe = self.exe('fork')
        res = run([exe], ctx.fb_env())
        ctx.check_rc(res, 0)
        m = re.search(r'parent=(\d+) child=(\d+)', res.out)
        if not m:
            ctx.stop('no "parent=P child=C" line on stdout: %r' % res.out)
        parent, child = int(m.group(1)), int(m.group(2))
        if parent != res.pid:
            ctx.fail('parent pid %d != the pid we started %d' % (parent, res.pid))
        files = ctx.output_files()
        names = [os.path.basename(f) for f in files]
        want = ['r.%d.json' % parent, 'r.%d.json' % child]
        if sorted(names) != sorted(want):
            ctx.stop('report files %s, expected %s (one per process)'
                     % (names, want))
        excerpts = []
        for who, pid in (('parent', parent), ('child', child)):
            docs, _ = ctx.reports_of(os.path.join(ctx.outdir, 'r.%d.json' % pid))
            if len(docs) != 1:
                ctx.fail('%s: %d reports in its file, expected 1' % (who, len(docs)))
            if not docs:
                continue
            rep = docs[-1]
            excerpts.append('[%s]\n%s' % (who, render_text(rep)))
            if rep.get('pid') != pid:
                ctx.fail('%s report pid %r, expected %d' % (who, rep.get('pid'), pid))
            for p in check_report(rep, self.spec('fork', who), False):
                ctx.fail('%s: %s' % (who, p))
        ctx.quote('\n'.join(excerpts))

    def group_corpus_cxx(self):
        self.corpus('cxx-new', 'cxx_new')
        self.corpus('cxx-vector-end-pointers', 'cxx_vector')

    def group_traps(self):
        lib_tls = self.module('libtlsdl.so')

        def no_churn(ctx, rep, res):
            for g in rep['leaks']:
                if any(fr.get('function') == 'churn_thread' for fr in g['stack']):
                    ctx.fail('a group from churn_thread (all its blocks were '
                             'freed): %s' % describe(g))
        self.corpus('churn-2-threads', 'churn', leaks='all', after=no_churn)

        def globals_reachable(ctx, rep, res):
            if (rep['summary'].get('reachable_blocks') or 0) < 6:
                ctx.fail('summary reachable_blocks = %r, expected >= 6 '
                         '(the globals\' blocks)'
                         % rep['summary'].get('reachable_blocks'))
        # No leak: the report is written only when asked (VERBOSE).
        self.corpus('globals-still-reachable', 'globals', after=globals_reachable,
                    extra_env={'FBMALLOC_VERBOSE': '1'})
        self.corpus('globals-leaks-all', 'globals', tag='all', leaks='all')
        self.case('exit-from-thread', self.exit_thread_case)
        self.corpus('libc-caches-stdout-buffer', 'stdio_trap',
                    after=self.after_stdio)
        self.corpus('cxx-exceptions-iostream', 'cxx_trap')
        self.corpus('cxx-array-cookie-global', 'cxx_trap', args=['cookie'],
                    tag='cookie')
        self.corpus('tls-dlopen-threads', 'tls_trap', args=[lib_tls])
        self.corpus('realloc-zero-frees', 'realloc0', after=self.after_realloc0)
        self.corpus('exitcode-kept', 'exitcode', args=['leak'], tag='leak', rc=3)
        self.corpus('exitcode-leaks-23', 'exitcode', args=['leak'], tag='leak',
                    rc=23, extra_env={'FBMALLOC_LEAK_EXITCODE': '23'})
        self.corpus('exitcode-return-from-main-23', 'plain', rc=23,
                    extra_env={'FBMALLOC_LEAK_EXITCODE': '23'})
        self.corpus('exitcode-clean-keeps-3', 'exitcode', args=['clean'],
                    tag='clean', rc=3,
                    extra_env={'FBMALLOC_LEAK_EXITCODE': '23'})
        self.corpus('anonymous-mappings-are-roots', 'anon_roots')
        self.corpus('anonymous-mappings-leaks-all', 'anon_roots', tag='all',
                    leaks='all')
        self.corpus('thread-stacks-are-roots', 'thread_roots')
        self.corpus('thread-stacks-leaks-all', 'thread_roots', tag='all',
                    leaks='all')
        self.corpus('thread-specific-values', 'tsd')
        self.corpus('thread-specific-leaks-all', 'tsd', tag='all',
                    leaks='all')
        self.case('exit-while-threads-allocate', self.busy_exit_case)
        self.corpus('100-threads-blocked-at-exit', 'many_threads')
        self.corpus('100-threads-leaks-all', 'many_threads', tag='all',
                    leaks='all')
        self.case('50-threads-blocking-signals-at-exit', self.blocked_threads_case)
        self.suppression_cases()
        self.case('leak-check-on-demand', self.check_api_case)
        self.case('leak-check-off', self.check_api_off_case)
        self.case('launcher', self.launcher_case)

    def after_stdio(self, ctx, rep, res):
        if 'line 99 of buffered output' not in res.out:
            ctx.fail('the program\'s stdout was lost: %r' % res.out[-200:])

    def after_realloc0(self, ctx, rep, res):
        if res.err.strip():
            ctx.fail('realloc(p, 0) did not behave as glibc\'s: %s'
                     % res.err.strip())

    def exit_thread_case(self, ctx):
        """exit() from a non-main thread.  exit_thread: clean, so silent at
        exit, and with FBMALLOC_VERBOSE the report appears exactly once.
        exit_thread_leak: a leak in each thread, exact, 20 runs."""
        exe = self.exe('exit_thread')
        spec = self.spec('exit_thread')
        res = run([exe], ctx.fb_env(fmt='text', output='stderr'))
        ctx.check_rc(res, 0)
        if res.err.strip():
            ctx.quote(res.err)
            ctx.fail('a clean exit_thread run wrote on stderr (nothing leaked: '
                     'nothing to say)')
        res = run([exe], ctx.fb_env(fmt='text', output='stderr',
                                    extra={'FBMALLOC_VERBOSE': '1'}))
        ctx.check_rc(res, 0)
        err = '\n'.join(ln for ln in res.err.splitlines()
                        if not ln.startswith('fbmalloc 0') and
                        not re.match(r'^fbmalloc [\d.]+: ', ln)) + '\n'
        ctx.quote(err)
        heads = len(re.findall(r'^fbmalloc: leak report for pid', err, re.M))
        sums = len([ln for ln in err.splitlines() if T_SUMMARY.match(ln)])
        if heads != 1 or sums != 1:
            ctx.stop('with FBMALLOC_VERBOSE=1 the report appeared %d times '
                     '(%d summary lines), expected exactly once' % (heads, sums))
        reps, probs = parse_text(err)
        for p in probs:
            ctx.fail('text: ' + p)
        if reps:
            ctx.check_ids(reps[-1], res.pid, exe)
            ctx.expect(reps[-1], spec)
        self.repeat(ctx, 'exit_thread_leak', 20)

    def repeat(self, ctx, prog, runs, tag=''):
        """prog's JSON report, runs times: every run must be exact."""
        spec = self.spec(prog, tag)
        exe = self.exe(prog)
        bad = []
        for i in range(runs):
            sub = Ctx(self, ctx.name, tmp=ctx.tmp)
            try:
                res = run([exe], sub.fb_env())
                sub.check_rc(res, 0)
                rep = sub.one_report(res, silent_ok=spec.clean)
                sub.expect(rep, spec)
            except Failed:
                pass
            if sub.probs:
                if not bad:
                    ctx.quote(sub.excerpt)
                bad.append((i + 1, sub.probs[0]))
        if bad:
            ctx.fail('%s: %d of %d runs wrong; run %d: %s'
                     % (prog, len(bad), runs, bad[0][0], bad[0][1]))
        else:
            ctx.notes.append('%s: %d of %d runs right' % (prog, runs, runs))

    def blocked_threads_case(self, ctx):
        """50 threads blocking every signal at exit: the report is exact
        (their stacks are roots) and the exit takes no timeout per thread.
        Plainly the program takes ~0.05 s; at the former 200 ms per thread
        it took 10 s.  The bound is generous (a loaded machine): 4 s."""
        import time
        exe = self.exe('blocked_threads')
        times = []
        for leaks, tag in (('1', ''), ('all', 'all')):
            t0 = time.monotonic()
            res = run([exe], ctx.fb_env(leaks=leaks))
            times.append(time.monotonic() - t0)
            ctx.check_rc(res, 0)
            rep = ctx.one_report(res)
            ctx.expect(rep, self.spec('blocked_threads', tag),
                       listed_reachable=leaks == 'all')
        if max(times) > 4.0:
            ctx.fail('runs took %s s: stopping threads that block signals '
                     'must not cost a timeout each' % ['%.2f' % t for t in times])
        ctx.notes.append('run times %s s' % ['%.2f' % t for t in times])

    def busy_exit_case(self, ctx):
        exe = self.exe('busy_exit')
        seen = []
        for attempt in range(3):
            res = run([exe], ctx.fb_env(fmt='text', output='stderr'),
                      timeout=60)
            ctx.quote(res.err)
            ctx.check_rc(res, 0, 'busy_exit (run %d)' % (attempt + 1))
            reps, probs = parse_text(res.err)
            for p in probs:
                ctx.fail('run %d: text: %s' % (attempt + 1, p))
            # Silence when nothing was in flight at exit.
            if len(reps) > 1:
                ctx.stop('run %d: %d reports, expected at most 1'
                         % (attempt + 1, len(reps)))
            if not reps:
                seen.append(0)
                continue
            rep = reps[0]
            for p in validate_structure(rep):
                ctx.stop(p)
            # In-flight blocks of churn_forever only, and few of them.
            n = 0
            for g in rep['leaks']:
                if g['kind'] == 'reachable':
                    continue
                if not any(fr.get('function') == 'churn_forever'
                           for fr in g['stack']):
                    ctx.fail('run %d: unexpected %s' % (attempt + 1, describe(g)))
                n += g['blocks']
            if n > 4:
                ctx.fail('run %d: %d leaked blocks from churn_forever (at most '
                         '4 can be in flight: 2 threads x (malloc + free))'
                         % (attempt + 1, n))
            seen.append(n)
        ctx.notes.append('in-flight blocks reported per run: %s' % seen)

    def suppression_cases(self):
        files = {
            'name': '# the noisy one is known\n\nleak:noisy_leak\n\n',
            'wildcard-anchored': 'leak:^noi*_le*k$\n',
        }
        for what, text in files.items():
            self.suppressed('suppress-' + what, 'suppress', 'suppressed', text)
        self.suppressed('suppress-anchors-no-match', 'suppress', '',
                        '# none of these matches\nleak:^oisy_leak\n'
                        'leak:noisy_lea$\n# leak:real_leak\n')
        self.suppressed('suppress-module-path', 'dl_main', 'suppressed',
                        'leak:libleakdl.so\n', args=[self.module('libleakdl.so')],
                        extra_sources=['dl_lib.c'])
        self.suppressed('suppress-source-file', 'dl_main', 'suppressed',
                        'leak:dl_lib.c\n', args=[self.module('libleakdl.so')],
                        extra_sources=['dl_lib.c'])

    def suppressed(self, name, prog, tag, text, args=(), extra_sources=()):
        def fn(ctx):
            path = os.path.join(ctx.tmp, 'supp.txt')
            with open(path, 'w') as f:
                f.write(text)
            spec = self.spec(prog, tag, extra_sources)
            exe = self.exe(prog)
            # VERBOSE: a run whose every leak is suppressed says nothing
            # otherwise.
            res = run([exe] + list(args),
                      ctx.fb_env(extra={'FBMALLOC_SUPPRESSIONS': path,
                                        'FBMALLOC_VERBOSE': '1'}))
            ctx.check_rc(res, 0)
            rep = ctx.one_report(res)
            ctx.expect(rep, spec)
            if ctx.probs:
                ctx.probs.append('suppressions file: %r' % text)
        self.case(name, fn)

    def check_api_case(self, ctx):
        exe = self.exe('check_api')
        spec = self.spec('check_api')
        res = run([exe, 'on'], ctx.fb_env(fmt='text', output='stderr'))
        ctx.quote(res.err)
        if res.rc == 3:
            ctx.stop('fbmalloc_leak_check is not exported')
        ctx.check_rc(res, 0, 'check_api (it checks the returned counts '
                     '0 2 3 2 itself)')
        if 'checks: 0 2 3 2' not in res.out:
            ctx.fail('stdout %r, expected "checks: 0 2 3 2"' % res.out.strip())
        reps, probs = parse_text(res.err)
        for p in probs:
            ctx.fail('text: ' + p)
        if len(reps) != 5:
            ctx.stop('%d reports on stderr, expected 5 (4 on demand + 1 at '
                     'exit)' % len(reps))
        counts = [r['summary']['blocks'] for r in reps]
        if counts != [0, 2, 3, 2, 2]:
            ctx.fail('leaked blocks per report %s, expected [0, 2, 3, 2, 2]'
                     % counts)
        ctx.expect(reps[-1], spec)

    def check_api_off_case(self, ctx):
        exe = self.exe('check_api')
        res = run([exe, 'off'], ctx.fb_env(leaks=None, fmt=None,
                                           output='stderr'))
        if res.rc == 3:
            ctx.stop('fbmalloc_leak_check is not exported')
        ctx.check_rc(res, 0, 'check_api off (fbmalloc_leak_check must return '
                     '-1 without FBMALLOC_LEAKS)')
        if 'leak report' in res.err:
            ctx.fail('a report was written with leak tracking off: %s'
                     % res.err[:300])

    def launcher_case(self, ctx):
        launcher = os.path.join(self.src, '..', '..', 'scripts', 'fbmalloc')
        launcher = os.path.normpath(launcher)
        own = os.path.normpath(os.path.join(os.path.dirname(launcher), '..',
                                            'build', 'libfbmalloc.so'))
        if not os.path.exists(launcher):
            ctx.skipped = 'no %s' % launcher
            return
        if not os.path.exists(own) or not os.path.samefile(own, self.lib):
            ctx.skipped = ('scripts/fbmalloc uses %s, not the library under '
                           'test (%s)' % (own, self.lib))
            return
        env = base_env()
        env['LT_REQUIRE_FBMALLOC'] = '1'
        exe = self.exe('exitcode')
        for opts, prog_args, want in (
                (['--leaks'], ['leak'], 23),
                (['--leaks', '--leaks-exitcode=42'], ['leak'], 42),
                (['--leaks'], ['clean'], 3)):
            res = run([launcher] + opts + ['--', exe] + prog_args, env)
            ctx.quote(res.err)
            ctx.check_rc(res, want, 'scripts/fbmalloc %s -- exitcode %s'
                         % (' '.join(opts), prog_args[0]))
            reps, probs = parse_text(res.err)
            for p in probs:
                ctx.fail('text: ' + p)
            # A clean run says nothing at exit.
            want_reps = 0 if prog_args[0] == 'clean' else 1
            if len(reps) != want_reps:
                ctx.fail('%s %s: %d text reports on stderr, expected %d'
                         % (' '.join(opts), prog_args[0], len(reps), want_reps))
            elif reps:
                ctx.expect(reps[0], self.spec('exitcode', prog_args[0]))
        # --json --output --stack-depth --suppressions
        supp = os.path.join(ctx.tmp, 'supp.txt')
        with open(supp, 'w') as f:
            f.write('leak:noisy_leak\n')
        out = os.path.join(ctx.tmp, 'l.%p.json')
        res = run([launcher, '--leaks', '--json', '--output=' + out,
                   '--stack-depth=2', '--suppressions=' + supp, '--',
                   self.exe('suppress')], env)
        ctx.check_rc(res, 23, 'scripts/fbmalloc --leaks --json ... -- suppress')
        path = os.path.join(ctx.tmp, 'l.%d.json' % res.pid)
        if not os.path.exists(path):
            ctx.stop('--output=%s wrote no %s' % (out, os.path.basename(path)))
        docs, _ = ctx.reports_of(path)
        if len(docs) != 1:
            ctx.stop('%d reports in %s' % (len(docs), path))
        ctx.quote(render_text(docs[0]))
        ctx.expect(docs[0], self.spec('suppress', 'suppressed'))
        for g in docs[0]['leaks']:
            if len(g['stack']) > 2:
                ctx.fail('--stack-depth=2 gave %d frames' % len(g['stack']))

    # ----------------------------------------------------------------------

    def group_format(self):
        for prog, args in (('many', []), ('plain', []), ('strdup', []),
                           ('indirect', []), ('cxx_new', []),
                           ('dl_main', [self.module('libleakdl.so')])):
            self.case('text-' + prog, lambda ctx, p=prog, a=args:
                      self.text_case(ctx, p, a))
        self.case('text-leaks-all', self.text_all_case)
        self.case('text-suppressed-count', self.text_suppressed_case)
        self.case('json-frames-addr2line', self.addr2line_case)
        self.case('json-text-odd-program-path', self.odd_path_case)

    def text_case(self, ctx, prog, args):
        exe = self.exe(prog)
        extra = ['dl_lib.c'] if prog == 'dl_main' else []
        spec = self.spec(prog, '', extra)
        res = run([exe] + args, ctx.fb_env(fmt='text', output='stderr'))
        ctx.quote(res.err)
        ctx.check_rc(res, 0)
        reps, probs = parse_text(res.err)
        for p in probs:
            ctx.fail('text: ' + p)
        if len(reps) != 1:
            ctx.stop('%d text reports on stderr, expected 1' % len(reps))
        rep = reps[0]
        if not res.err.startswith('fbmalloc: leak report for pid'):
            ctx.fail('stderr does not start with the report header: %r'
                     % res.err[:100])
        ctx.check_ids(rep, res.pid, exe)
        ctx.expect(rep, spec)
        # Frames of our own code (built with -g) carry "at file:line" with
        # an absolute path to the source; libc's frames name libc.so.6.
        for g in rep['leaks']:
            for fr in g['stack']:
                mod = fr['module']
                ours = mod.startswith('leaks-') or mod in ('libleakdl.so',
                                                           'libtlsdl.so')
                if not ours or fr['function'].startswith('_'):
                    continue
                if not fr['file'].startswith('/') or fr['line'] <= 0 or \
                        not os.path.exists(fr['file']):
                    ctx.fail('frame "%s": "at %s:%s" is not an absolute path '
                             'to an existing file with a line'
                             % (fr['function'], fr['file'], fr['line']))
                    break
        # Same groups as the JSON report of the same program.
        res2 = run([exe] + args, ctx.fb_env())
        ctx.check_rc(res2, 0)
        jrep = ctx.one_report(res2)
        ctx.quote(res.err)
        a, b = normalize(rep), normalize(jrep)
        if a != b:
            ctx.fail('text and JSON reports differ:\n      text: %s\n      json: %s'
                     % (a, b))

    def text_all_case(self, ctx):
        exe = self.exe('globals')
        spec = self.spec('globals', 'all')
        res = run([exe], ctx.fb_env(leaks='all', fmt='text', output='stderr'))
        ctx.quote(res.err)
        ctx.check_rc(res, 0)
        reps, probs = parse_text(res.err)
        for p in probs:
            ctx.fail('text: ' + p)
        if len(reps) != 1:
            ctx.stop('%d text reports on stderr, expected 1' % len(reps))
        if 'fbmalloc: still reachable: 1,000 bytes in 1 block, allocated from:' \
                not in res.err:
            ctx.fail('no line "fbmalloc: still reachable: 1,000 bytes in 1 '
                     'block, allocated from:"')
        ctx.expect(reps[0], spec, listed_reachable=True)

    def text_suppressed_case(self, ctx):
        path = os.path.join(ctx.tmp, 'supp.txt')
        with open(path, 'w') as f:
            f.write('leak:noisy_leak\n')
        res = run([self.exe('suppress')], ctx.fb_env(
            fmt='text', output='stderr',
            extra={'FBMALLOC_SUPPRESSIONS': path}))
        ctx.quote(res.err)
        ctx.check_rc(res, 0)
        want = ('fbmalloc: 1 leak (70 bytes in 1 block); ',
                'fbmalloc: 1 leaks (70 bytes in 1 block); ')
        last = [ln for ln in res.err.splitlines() if ln.strip()][-1:] or ['']
        if not last[0].startswith(want) or not last[0].endswith(
                'still reachable; 3 suppressed'):
            ctx.fail('summary line %r, expected "fbmalloc: 1 leak (70 bytes in '
                     '1 block); N blocks still reachable; 3 suppressed"' % last[0])
        reps, probs = parse_text(res.err)
        for p in probs:
            ctx.fail('text: ' + p)
        if reps:
            ctx.expect(reps[-1], self.spec('suppress', 'suppressed'))

    def odd_path_case(self, ctx):
        """A program whose path holds a double quote, a backslash, a tab,
        parentheses and non-ASCII: the JSON must still parse (escaped
        strings) and name it exactly; the text header too."""
        d = os.path.join(ctx.tmp, 'dir "q" \\ \u00e9\t(x)')
        os.makedirs(d)
        exe = os.path.join(d, 'leaks-plain "copy"')
        shutil.copy2(self.exe('plain'), exe)
        spec = self.spec('plain')
        res = run([exe], ctx.fb_env())
        ctx.check_rc(res, 0)
        rep = ctx.one_report(res)
        if rep.get('program') != exe:
            ctx.fail('JSON program %r, expected %r' % (rep.get('program'), exe))
        mods = {fr.get('module') for g in rep['leaks'] for fr in g['stack']
                if fr.get('function') == 'main'}
        if mods != {exe}:
            ctx.fail('JSON module of main %r, expected {%r}' % (mods, exe))
        ctx.expect(rep, spec)
        res = run([exe], ctx.fb_env(fmt='text', output='stderr'))
        ctx.check_rc(res, 0)
        reps, probs = parse_text(res.err)
        for p in probs:
            ctx.fail('text: ' + p)
        if len(reps) != 1 or reps[0]['program'] != exe:
            ctx.quote(res.err)
            ctx.fail('text header does not name %r: %r' % (
                exe, [r['program'] for r in reps]))

    def addr2line_case(self, ctx):
        a2l = shutil.which('addr2line')
        if not a2l:
            ctx.skipped = 'no addr2line (binutils)'
            return
        exe = self.exe('plain')
        res = run([exe], ctx.fb_env())
        ctx.check_rc(res, 0)
        rep = ctx.one_report(res)
        n = 0
        for g in rep['leaks']:
            for fr in g['stack'][:2]:
                mod = fr.get('module') or ''
                if not mod.startswith('/') or not os.path.exists(mod):
                    ctx.fail('frame %s: module %r is not an absolute path to '
                             'an existing file' % (fr.get('function'), mod))
                    continue
                if os.path.basename(mod) != os.path.basename(exe):
                    continue
                ok = False
                got = []
                for off in (fr['offset'], fr['offset'] - 1):
                    r = subprocess.run([a2l, '-f', '-e', mod, '0x%x' % off],
                                       capture_output=True, text=True)
                    lines = r.stdout.split('\n') + ['', '']
                    got.append(' / '.join(lines[:2]))
                    where = re.sub(r' \(discriminator \d+\)$', '', lines[1])
                    if lines[0] == fr['function'] and \
                            where.endswith(':%d' % fr['line']):
                        ok = True
                n += 1
                if not ok:
                    ctx.fail('addr2line -f -e %s 0x%x (or -1) gives %s, the '
                             'report says %s at line %d' % (
                                 os.path.basename(mod), fr['offset'], got,
                                 fr['function'], fr['line']))
        if n == 0:
            ctx.fail('no frame of the program itself to check')

    # ----------------------------------------------------------------------

    def group_valgrind(self):
        vg = shutil.which('valgrind')
        if not vg:
            print('SKIP leaks-valgrind: valgrind is not installed '
                  '(apt-get install valgrind)')
            self.n_skip += 1
            return
        for prog in ('plain', 'indirect', 'many', 'strdup', 'cxx_new',
                     'stale', 'anon_roots'):
            self.case('valgrind-' + prog,
                      lambda ctx, p=prog: self.valgrind_case(ctx, vg, p))
        # Real programs whose only pointers to some blocks lie in their own
        # anonymous mappings (pymalloc's arenas; cc1's GC heap): no false
        # direct leak (issue 11 item 4).
        self.case('valgrind-python3-imports', lambda ctx: self.valgrind_case(
            ctx, vg, None, [PY, '-c', 'import json, re, sqlite3']))
        self.case('valgrind-cc1', lambda ctx: self.valgrind_cc1_case(ctx, vg))

    def valgrind_cc1_case(self, ctx, vg):
        cc1 = subprocess.run(['gcc', '-print-prog-name=cc1'], capture_output=True,
                             text=True).stdout.strip() if shutil.which('gcc') else ''
        if not cc1.startswith('/') or not os.path.exists(cc1):
            ctx.skipped = 'no cc1 (gcc is not installed)'
            return
        src = os.path.join(ctx.tmp, 'small.c')
        with open(src, 'w') as f:
            f.write('struct s { int a; char b[10]; };\n'
                    'static int twice(int x) { return 2 * x; }\n'
                    'int main(void) { struct s v = {1, "x"}; '
                    'return twice(v.a) - 2; }\n')
        self.valgrind_case(ctx, vg, None, [cc1, '-quiet', src, '-o',
                                            os.path.join(ctx.tmp, 'small.s')])

    def valgrind_case(self, ctx, vg, prog, argv=None):
        real = argv is not None
        argv = argv or [self.exe(prog)]
        env = ctx.fb_env()
        if real:
            del env['LT_REQUIRE_FBMALLOC']
        res = run(argv, env, cwd=ctx.tmp)
        ctx.check_rc(res, 0)
        rep = ctx.one_report(res, silent_ok=real)
        log = os.path.join(ctx.tmp, 'vg.txt')
        vres = run([vg, '--leak-check=full', '--log-file=' + log] + argv,
                   base_env(), timeout=240, cwd=ctx.tmp)
        if vres.timed_out or vres.rc != 0:
            ctx.stop('valgrind run failed (rc %s): %s' % (vres.rc, vres.err[-300:]))
        with open(log) as f:
            text = f.read()
        got = {}
        for kind in ('definitely lost', 'indirectly lost'):
            m = re.search(r'%s: ([\d,]+) bytes in ([\d,]+) blocks' % kind, text)
            if m:
                got[kind] = (num(m.group(1)), num(m.group(2)))
            elif 'All heap blocks were freed' in text:
                got[kind] = (0, 0)
            else:
                ctx.stop('no "%s" in valgrind\'s LEAK SUMMARY:\n%s'
                         % (kind, text[-1500:]))
        s = rep['summary']
        fb = {'definitely lost': (s.get('direct_bytes'), s.get('direct_blocks')),
              'indirectly lost': (s.get('indirect_bytes'), s.get('indirect_blocks'))}
        for kind in got:
            if fb[kind] != got[kind]:
                ctx.fail('valgrind %s: {:,} bytes in {:,} blocks; fbmalloc '
                         '%s: %s bytes in %s blocks'.format(*got[kind]) % (
                             kind, 'direct' if kind[0] == 'd' else 'indirect',
                             fb[kind][0], fb[kind][1]))
        ctx.notes.append('valgrind definitely lost %s, indirectly lost %s '
                         '(bytes, blocks) == fbmalloc direct, indirect'
                         % (got['definitely lost'], got['indirectly lost']))

    # ----------------------------------------------------------------------

    def group_real(self):
        cmds = [('python3', [PY, '-c', 'pass']),
                ('git', ['git', '--version']),
                ('sqlite3', ['sqlite3', ':memory:', 'select 1'])]
        for name, argv in cmds:
            self.case('real-' + name, lambda ctx, a=argv: self.real_case(ctx, a))

    def real_case(self, ctx, argv):
        path = argv[0] if argv[0].startswith('/') else shutil.which(argv[0])
        if not path or not os.path.exists(path):
            if os.environ.get('CI'):
                ctx.stop('%s is not installed' % argv[0])
            ctx.skipped = '%s is not installed' % argv[0]
            return
        argv = [path] + argv[1:]
        plain = run(argv, base_env(), cwd=ctx.tmp)
        env = ctx.fb_env()
        del env['LT_REQUIRE_FBMALLOC']
        res = run(argv, env, cwd=ctx.tmp)
        cmd = ' '.join(argv)
        if res.timed_out:
            ctx.stop('%s timed out under fbmalloc' % cmd)
        if res.rc != plain.rc:
            ctx.fail('%s: exit %s under fbmalloc, %s without' % (cmd, res.rc, plain.rc))
        if res.out != plain.out:
            ctx.fail('%s: stdout differs: %r vs %r' % (cmd, res.out[:200], plain.out[:200]))
        if res.err != plain.err:
            ctx.fail('%s: stderr differs: %r vs %r' % (cmd, res.err[:300], plain.err[:300]))
        # Nothing leaked: nothing written (and stderr unchanged, above).
        rep = ctx.one_report(res, silent_ok=True)
        for p in validate_structure(rep):
            ctx.stop(p)
        # Internal consistency only (no expectations for real programs).
        for p in check_report(rep, Spec(), False, strict_unexpected=False):
            if not p.startswith('summary suppressed') and \
                    not p.startswith('summary reachable'):
                ctx.fail(p)
        s = rep['summary']
        ctx.notes.append('%s: %s' % (cmd, render_text(rep).rstrip('\n')
                                     .split('\n')[-1]))
        ctx.notes.append('  direct {:,} bytes in {}, indirect {:,} bytes in '
                         '{}, reachable {:,} bytes in {}'.format(
                             s['direct_bytes'], blocks_word(s['direct_blocks']),
                             s['indirect_bytes'], blocks_word(s['indirect_blocks']),
                             s['reachable_bytes'] or 0,
                             blocks_word(s['reachable_blocks'] or 0)))
        leaks = [g for g in rep['leaks'] if g['kind'] != 'reachable']
        for g in sorted(leaks, key=lambda g: -g['bytes'])[:8]:
            ctx.notes.append('  ' + describe(g))
        if s['direct_blocks'] >= 100:
            ctx.fail('%s: %d direct leak blocks (bound: < 100)'
                     % (cmd, s['direct_blocks']))

    # ----------------------------------------------------------------------

    def group_selftest(self):
        """The checker and the text parser on synthetic reports built from
        the EXPECT lines: a faithful report must pass, and each of a set of
        mutations must be caught."""
        cases = [('plain', '', ()), ('indirect', '', ()), ('strdup', '', ()),
                 ('cxx_new', '', ()), ('many', '', ()), ('aligned', '', ()),
                 ('suppress', 'suppressed', ()), ('globals', 'all', ()),
                 ('dl_main', '', ('dl_lib.c',)), ('cycle', '', ()),
                 ('fork', 'child', ()), ('callbacks', '', ())]
        for prog, tag, extra in cases:
            self.case('selftest-%s%s' % (prog, '-' + tag if tag else ''),
                      lambda ctx, p=prog, t=tag, x=extra:
                      self.selftest_case(ctx, p, t, x))

    def synth(self, prog, spec):
        libc = '/usr/lib/x86_64-linux-gnu/libc.so.6'
        me = '/build/tests/leaks/leaks-' + prog
        groups = []
        for k, e in enumerate(spec.expects):
            user = {'function': e.func, 'file': e.site.path,
                    'line': e.site.line,
                    'module': '/build/' + e.module if e.module else me,
                    'offset': 0x1100 + 16 * k}
            above = []
            if e.frame == 'any':
                above = [{'function': '', 'file': '', 'line': 0,
                          'module': libc, 'offset': 0x7a000},
                         {'function': 'asprintf', 'file': '', 'line': 0,
                          'module': libc, 'offset': 0x5b000}]
            elif e.frame:
                above = [{'function': e.f0 or 'f', 'file': '', 'line': 0,
                          'module': libc, 'offset': 0x9e000 + j}
                         for j in range(e.frame)]
            tail = [{'function': 'main', 'file': spec_src(e), 'line': 999,
                     'module': me, 'offset': 0x1200},
                    {'function': '__libc_start_call_main', 'file': '',
                     'line': 0, 'module': libc, 'offset': 0x271ca}]
            kind = 'direct' if e.kind == 'leak' else e.kind
            groups.append({'kind': kind, 'bytes': e.bytes[0],
                           'blocks': e.blocks, 'stack': above + [user] + tail})
        groups.sort(key=lambda g: (g['kind'] == 'reachable', -g['bytes']))
        lk = [g for g in groups if g['kind'] != 'reachable']
        rc = [g for g in groups if g['kind'] == 'reachable']
        sup = spec.suppressed or (0, 0)
        summ = {
            'leaks': len(lk), 'bytes': sum(g['bytes'] for g in lk),
            'blocks': sum(g['blocks'] for g in lk),
            'reachable_bytes': sum(g['bytes'] for g in rc),
            'reachable_blocks': sum(g['blocks'] for g in rc),
            'suppressed_bytes': sup[1], 'suppressed_blocks': sup[0]}
        for k in ('direct', 'indirect'):
            gs = [g for g in lk if g['kind'] == k]
            summ[k + '_bytes'] = sum(g['bytes'] for g in gs)
            summ[k + '_blocks'] = sum(g['blocks'] for g in gs)
        return {'pid': 4242, 'program': me, 'leaks': groups, 'summary': summ}

    def selftest_case(self, ctx, prog, tag, extra):
        import copy
        spec = self.spec(prog, tag, extra)
        listed = any(e.kind == 'reachable' for e in spec.expects)
        rep = self.synth(prog, spec)
        doc = json.dumps({'fbmalloc_leak_report': rep})
        docs, err = parse_json_docs(doc + '\n' + doc)
        if err or len(docs) != 2:
            ctx.stop('parse_json_docs: %s, %d docs' % (err, len(docs)))
        probs = check_report(docs[1], spec, listed)
        ctx.quote(render_text(rep))
        if probs:
            ctx.stop('a faithful synthetic report fails: %s' % probs)
        text = 'program output\n' + render_text(rep)
        treps, tprobs = parse_text(text)
        if tprobs or len(treps) != 1:
            ctx.stop('text parser on rendered report: %s, %d reports'
                     % (tprobs, len(treps)))
        if normalize(treps[0]) != normalize(rep):
            ctx.stop('text round trip differs:\n%s\n%s'
                     % (normalize(treps[0]), normalize(rep)))
        probs = check_report(treps[0], spec, listed)
        if probs:
            ctx.stop('the parsed text report fails: %s' % probs)

        def mutant(name, fn, textual=False):
            m = copy.deepcopy(rep)
            fn(m)
            if textual:
                t = fn_text(render_text(rep))
                r, p = parse_text(t)
                caught = bool(p) or not r or bool(check_report(r[0], spec, listed))
            else:
                caught = bool(check_report(m, spec, listed))
            if not caught:
                ctx.fail('mutation not caught: %s' % name)

        first = rep['leaks'][0] if rep['leaks'] else None

        def user_frame(m):
            g = m['leaks'][0]
            e = [e for e in spec.expects if kind_ok(g, e) and position(g, e)
                 is not None][0]
            return g['stack'][position(g, e)]

        if first:
            mutant('line + 1', lambda m: user_frame(m).update(
                line=user_frame(m)['line'] + 1))
            mutant('other file', lambda m: user_frame(m).update(file='/x/other.c'))
            mutant('other function', lambda m: user_frame(m).update(
                function='other'))
            mutant('bytes + 1', lambda m: m['leaks'][0].update(
                bytes=m['leaks'][0]['bytes'] + 7))
            mutant('blocks + 1', lambda m: m['leaks'][0].update(
                blocks=m['leaks'][0]['blocks'] + 1))
            mutant('group split in two', lambda m: m['leaks'].append(
                copy.deepcopy(m['leaks'][0])))
            mutant('kind flipped', lambda m: m['leaks'][0].update(
                kind={'direct': 'indirect', 'indirect': 'direct',
                      'reachable': 'direct'}[m['leaks'][0]['kind']])
                if spec.expects[0].kind != 'leak' else m['leaks'].clear())
            mutant('group missing', lambda m: m['leaks'].pop(0))
            mutant('summary leaks + 1', lambda m: m['summary'].update(
                leaks=m['summary']['leaks'] + 1))
            mutant('summary bytes - 1', lambda m: m['summary'].update(
                bytes=m['summary']['bytes'] - 1))

            def plural(t):
                return re.sub(r' in 1 block\b', ' in 1 blocks', t, count=1) \
                    if ' in 1 block' in t else t.replace(' blocks', ' block', 1)
            fn_text = plural
            mutant('text: wrong plural', lambda m: None, textual=True)

            def no_sep(t):
                return re.sub(r'(\d),(\d{3})', r'\1\2', t, count=1) \
                    if re.search(r'\d,\d{3}', t) else t.replace(
                        ' leak of ', ' leak  of ', 1)
            fn_text = no_sep
            mutant('text: no thousands separator', lambda m: None, textual=True)

            def drop_summary(t):
                return '\n'.join(t.rstrip('\n').split('\n')[:-1]) + '\n'
            fn_text = drop_summary
            mutant('text: no summary line', lambda m: None, textual=True)
        mutant('unexpected direct group', lambda m: m['leaks'].append(
            {'kind': 'direct', 'bytes': 8, 'blocks': 1, 'stack': [
                {'function': '_dl_allocate_tls', 'file': '', 'line': 0,
                 'module': '/lib64/ld-linux-x86-64.so.2', 'offset': 0x1000}]}))
        if spec.suppressed:
            mutant('suppressed count', lambda m: m['summary'].update(
                suppressed_blocks=0))
        if any(e.f0 for e in spec.expects):
            def f0(m):
                for g in m['leaks']:
                    if g['stack'][0]['module'].endswith('libc.so.6'):
                        g['stack'][0]['function'] = 'malloc'
            mutant('frame #0 not strdup', f0)
        if any(e.above for e in spec.expects):
            def above(m):
                for g in m['leaks']:
                    if g['stack'][0]['module'].endswith('libc.so.6'):
                        g['stack'][0]['module'] = '/x/libfbmalloc.so'
            mutant('frame above in libfbmalloc', above)
        if any(e.via for e in spec.expects):
            mutant('no main below', lambda m: [g['stack'].__setitem__(
                slice(None), [fr for fr in g['stack'] if fr['function'] != 'main'])
                for g in m['leaks']])
        if any(e.module for e in spec.expects):
            mutant('module', lambda m: [fr.update(module='/x/leaks-dl_main')
                                        for g in m['leaks'] for fr in g['stack']
                                        if fr['module'].endswith('libleakdl.so')])


def spec_src(e):
    return e.site.path


GROUPS = {
    'corpus-c': Driver.group_corpus_c,
    'corpus-cxx': Driver.group_corpus_cxx,
    'traps': Driver.group_traps,
    'format': Driver.group_format,
    'valgrind': Driver.group_valgrind,
    'real': Driver.group_real,
    'selftest': Driver.group_selftest,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('groups', nargs='*', help='|'.join(GROUPS))
    build = os.environ.get('FBMALLOC_BUILD')
    ap.add_argument('--bin', default=os.path.join(build, 'tests', 'leaks')
                    if build else '.', help='directory of the built programs')
    ap.add_argument('--src', default=HERE, help='directory of the sources')
    ap.add_argument('--case', help='only cases whose name contains this')
    ap.add_argument('--keep', action='store_true', help='keep temp dirs')
    ap.add_argument('--list', action='store_true', help='list the groups')
    args = ap.parse_args()
    if args.list or not args.groups:
        print('\n'.join(GROUPS))
        return 0
    drv = Driver(args)
    for g in args.groups:
        if g not in GROUPS:
            ap.error('unknown group %r (one of %s)' % (g, ', '.join(GROUPS)))
    needs_lib = [g for g in args.groups if g != 'selftest']
    if needs_lib and not (drv.lib and os.path.exists(drv.lib)):
        print('FAIL setup: libfbmalloc.so not found (FBMALLOC_LIB=%r)' % drv.lib)
        return 1
    for g in args.groups:
        GROUPS[g](drv)
    total = drv.n_ok + drv.n_fail
    print('%d ok, %d failed, %d skipped' % (drv.n_ok, drv.n_fail, drv.n_skip))
    if drv.n_fail:
        return 1
    if total == 0 and drv.n_skip:
        return 77
    return 0


if __name__ == '__main__':
    sys.exit(main())
