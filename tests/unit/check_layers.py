#!/usr/bin/env python3
"""Calls go down the layers of docs/ARCHITECTURE.md.

Reads the layer table between <!-- layers:begin --> and <!-- layers:end -->,
derives the graph of #include "x.h" among src/ files (a module is x.c and
x.h together), and fails on an include of the same or a higher layer, on a
cycle, and on a src/ module the table does not place.  With --self-test it
first checks that it catches an upward edge, a same-layer edge and an
unplaced module in a made-up tree, so a broken checker cannot pass.

usage: check_layers.py SRC_DIR ARCHITECTURE_MD [--self-test]
"""
import os
import re
import sys


def read_layers(text):
    m = re.search(r"<!-- layers:begin -->(.*?)<!-- layers:end -->", text, re.S)
    if not m:
        raise SystemExit("no layer table between <!-- layers:begin/end --> markers")
    layers = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].isdigit():
            continue
        for mod in cells[1].split(","):
            mod = mod.strip()
            if mod in layers:
                raise SystemExit(f"module {mod} is listed twice")
            layers[mod] = int(cells[0])
    return layers


def read_graph(files):
    """files: {name: text}.  Returns {module: {module it includes}}."""
    graph = {}
    for name, text in files.items():
        mod = os.path.splitext(name)[0]
        graph.setdefault(mod, set())
        for inc in re.findall(r'^\s*#\s*include\s+"([^"]+)\.h"', text, re.M):
            inc = os.path.basename(inc)
            if inc != mod and inc + ".h" in files:
                graph[mod].add(inc)
    return graph


def find_cycle(graph):
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if not state.get(n):
                c = visit(n)
                if c:
                    return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if not state.get(m):
            c = visit(m)
            if c:
                return c
    return None


def problems(files, layers):
    graph = read_graph(files)
    out = []
    for mod in sorted(graph):
        if mod not in layers:
            out.append(f"src/{mod}: not in the layer table of docs/ARCHITECTURE.md")
    for mod in sorted(graph):
        for inc in sorted(graph[mod]):
            if mod in layers and inc in layers and layers[inc] >= layers[mod]:
                how = "same layer" if layers[inc] == layers[mod] else "upward"
                out.append(f"{how} include: {mod} (layer {layers[mod]}) -> "
                           f"{inc} (layer {layers[inc]})")
    cycle = find_cycle(graph)
    if cycle:
        out.append("cycle: " + " -> ".join(cycle))
    return out, graph


def self_test():
    layers = {"low": 0, "mid": 1, "mid2": 1, "top": 2}
    good = {"low.h": "", "mid.c": '#include "low.h"\n', "mid2.h": "",
            "top.c": '#include "mid.h"\n#include "mid2.h"\n', "mid.h": ""}
    assert problems(good, layers)[0] == [], problems(good, layers)[0]
    cases = {
        "upward": dict(good, **{"low.c": '#include "top.h"\n', "top.h": ""}),
        "same layer": dict(good, **{"mid2.c": '  #  include "mid.h"\n'}),
        "not in the layer table": dict(good, **{"new.c": '#include "low.h"\n'}),
    }
    for want, files in cases.items():
        found = problems(files, layers)[0]
        assert any(want in p for p in found), (want, found)
    cyc = {"a.c": '#include "b.h"\n', "b.h": '#include "a.h"\n', "a.h": ""}
    assert find_cycle(read_graph(cyc)), "cycle not found"


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    src, arch = sys.argv[1], sys.argv[2]
    if "--self-test" in sys.argv[3:]:
        self_test()
        print("ok   self-test: upward, same-layer, unplaced and cyclic includes are caught")
    layers = read_layers(open(arch).read())
    files = {}
    for name in sorted(os.listdir(src)):
        if name.endswith((".c", ".h")):
            files[name] = open(os.path.join(src, name)).read()
    found, graph = problems(files, layers)
    edges = sum(len(v) for v in graph.values())
    for p in found:
        print("FAIL " + p)
    if found:
        return 1
    print(f"ok   {len(graph)} modules, {edges} includes, all downward "
          f"({max(layers.values()) + 1} layers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
