#!/usr/bin/env python3
"""The exported malloc must leave its fast path by jumps.

alloc.h's _tail doors read the program's call site from their own return
address, which is the call site only if malloc reaches them by a jump (a
sibling call), never by a call.  gcc makes these jumps at -O2; this test
fails if a compiler, a flag or an edit turns one into a call, which would
silently make every site look like one address inside malloc and spoil
lifetime routing.  Anywhere else in the library a _tail door may only be
jumped to as well (gcc may also inline one into another, which keeps the
outer door's return address).

usage: check_tailcalls.py LIBFBMALLOC.so [--self-test]
"""
import re
import subprocess
import sys

TAIL = re.compile(r"<(fb_alloc_malloc_\w+_tail)>")


def functions(lib):
    """{name: [instruction lines]} from objdump -d, every symbol alias."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", lib],
                         check=True, capture_output=True, text=True).stdout
    funcs, cur = {}, None
    for line in out.splitlines():
        m = re.match(r"^([0-9a-f]+) <([^>]+)>:$", line)
        if m:
            cur = int(m.group(1), 16)
            funcs[cur] = []
        elif cur is not None and line.strip():
            funcs[cur].append(line)
    syms = subprocess.run(["nm", lib], check=True, capture_output=True,
                          text=True).stdout
    by_name = {}
    for line in syms.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            addr = int(parts[0], 16)
            if addr in funcs:
                by_name[parts[2]] = funcs[addr]
    return by_name


def check(body, name, want):
    """Errors for body: every reference to a _tail door is a jmp, and the
    doors in want are referenced."""
    errors, seen = [], set()
    for line in body:
        m = TAIL.search(line)
        if not m:
            continue
        seen.add(m.group(1))
        if not re.search(r"\sjmp\s", line):
            errors.append(f"{name}: not a jump to {m.group(1)}: {line.strip()}")
    for w in want:
        if w not in seen:
            errors.append(f"{name}: never reaches {w}")
    return errors


def self_test():
    good = ["  10: jmp    20 <fb_alloc_malloc_big_tail>"]
    bad = ["  10: call   20 <fb_alloc_malloc_big_tail>"]
    assert not check(good, "m", ["fb_alloc_malloc_big_tail"])
    assert check(bad, "m", ["fb_alloc_malloc_big_tail"])
    assert check([], "m", ["fb_alloc_malloc_big_tail"])


def main():
    if "--self-test" in sys.argv:
        self_test()
    lib = sys.argv[1]
    funcs = functions(lib)
    doors = ["fb_alloc_malloc_big_tail", "fb_alloc_malloc_routed_tail",
             "fb_alloc_malloc_slow_tail"]
    errors = []
    if "malloc" not in funcs:
        errors.append("no malloc in " + lib)
    else:
        errors += check(funcs["malloc"], "malloc", doors)
    for name, body in funcs.items():
        if name != "malloc":
            errors += check(body, name, [])
    for e in errors:
        print(e)
    print("tail calls: " + ("FAIL" if errors else "ok"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
