#!/usr/bin/env python3
"""Allocation-heavy Python workload for scripts/bench.

Models the "real interpreter" entries of allocator benchmark suites (the
CPython and Ruby runs in mimalloc-bench's and jemalloc's comparisons):
building and discarding many dicts, lists, tuples, strings and small class
instances, a JSON round trip, sorting and string joining.  CPython serves
objects up to 512 bytes from its own pymalloc pools and asks malloc for the
rest (dict and list storage, long strings); run it with PYTHONMALLOC=malloc
to send every object to the allocator under test.

usage: pyalloc.py [ROUNDS=40]
"""
import json
import sys


class Record:
    __slots__ = ("key", "name", "tags", "score")

    def __init__(self, key, name, tags, score):
        self.key = key
        self.name = name
        self.tags = tags
        self.score = score


class Node:
    def __init__(self, value, children=()):
        self.value = value
        self.children = list(children)


def build_tree(depth, fanout, seed):
    if depth == 0:
        return Node(seed)
    return Node(seed, (build_tree(depth - 1, fanout, seed * fanout + i)
                       for i in range(fanout)))


def tree_sum(node):
    return node.value + sum(tree_sum(c) for c in node.children)


def one_round(r):
    # Short-lived records in a dict, grouped, sorted and dropped.
    records = {}
    for i in range(20000):
        key = f"user-{(i * 7919 + r) % 50000:05d}"
        records[key] = Record(key, "name " + key * 2,
                              [f"t{i % 13}", f"g{i % 7}", str(i)],
                              (i * 37 + r) % 1000 / 10.0)
    groups = {}
    for rec in records.values():
        groups.setdefault(rec.tags[0], []).append(rec)
    best = [sorted(g, key=lambda x: (-x.score, x.key))[:10]
            for g in groups.values()]

    # A JSON round trip of nested containers.
    doc = {"round": r,
           "items": [{"id": i, "name": f"item {i}", "vals": list(range(i % 20)),
                      "attrs": {"a": i, "b": str(i) * 3}}
                     for i in range(3000)]}
    text = json.dumps(doc)
    back = json.loads(text)

    # Strings: split, join, replace.
    words = text.split(",")
    joined = "|".join(w.strip() for w in words if len(w) > 3)
    replaced = joined.replace("item", "ITEM").lower()

    # A tree of small objects, summed and dropped.
    total = tree_sum(build_tree(7, 4, r))

    # Tuples and a set of mixed-size byte strings.
    pairs = [(i, i * i, str(i)) for i in range(20000)]
    blobs = {bytes([i % 256]) * (i % 700 + 1) for i in range(4000)}

    return (len(records) + len(best) + len(back["items"]) + len(replaced)
            + total % 1000 + len(pairs) + len(blobs))


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    keep = []          # a slowly growing long-lived part
    checksum = 0
    for r in range(rounds):
        checksum += one_round(r)
        keep.append([str(i) * 5 for i in range(2000)])
    print(f"pyalloc: {rounds} rounds, checksum {checksum}, kept {len(keep)}")


if __name__ == "__main__":
    main()
