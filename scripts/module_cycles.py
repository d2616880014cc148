#!/usr/bin/env python3
"""Finds import circles between the modules of a crate (issue #25).

Every `crate::a::b::…` path in a module's source (in `use` items and in expressions alike)
is an edge to the deepest module of the crate that the path names; `super::` paths and the
module's own children are resolved too. Test modules (`#[cfg(test)] mod tests`) are left out:
a test may use anything. Prints each strongly connected component of more than one module
and exits 1 if there is any.

Usage: scripts/module_cycles.py crates/httpmw crates/server ...
"""

import os
import re
import sys


def modules(src):
    """Module path (tuple) -> file, for every .rs file under src."""
    found = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel in (["lib"], ["main"]):
                mod = ()
            elif rel[-1] == "mod":
                mod = tuple(rel[:-1])
            else:
                mod = tuple(rel)
            found[mod] = path
    return found


def strip_tests(text):
    """Drops `#[cfg(test)] mod tests { … }` blocks (brace-matched)."""
    out = []
    i = 0
    pattern = re.compile(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{")
    while True:
        m = pattern.search(text, i)
        if not m:
            out.append(text[i:])
            break
        out.append(text[i : m.start()])
        depth = 1
        j = m.end()
        while j < len(text) and depth:
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
            j += 1
        i = j
    return "".join(out)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def split_top(body):
    """Splits a use group's body at its top-level commas."""
    parts, depth, cur = [], 0, []
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def expand_tree(tree):
    """`a::{b, c::{d, e}}` -> [`a::b`, `a::c::d`, `a::c::e`]."""
    tree = re.sub(r"\s+", "", tree)
    i = tree.find("{")
    if i < 0 or tree.count("{") != tree.count("}"):
        return [tree]
    prefix, body = tree[:i], tree[i + 1 : tree.rindex("}")]
    out = []
    for part in split_top(body):
        out += [prefix + p for p in expand_tree(part)]
    return out


def expand_use_groups(text):
    """Replaces every `use` item by its expanded paths, one per line."""
    return re.sub(
        r"\buse\s+([^;]*);",
        lambda m: " ".join(expand_tree(m.group(1))) + " ",
        text,
    )


def root_reexports(mods):
    """`pub use a::b::Item;` in the crate root: `crate::Item` means module `a::b`."""
    root = mods.get(())
    if root is None:
        return {}
    text = expand_use_groups(strip_comments(open(root).read()))
    found = {}
    for m in re.finditer(r"\bpub\s+((?:\w+::)+)(\w+)", text):
        parts = tuple(p for p in m.group(1).split("::") if p)
        if parts and parts[0] in ("crate", "self"):
            parts = parts[1:]
        target = ()
        for p in parts:
            if target + (p,) in mods:
                target = target + (p,)
        if target:
            found[m.group(2)] = target
    return found


def edges(mods):
    graph = {m: set() for m in mods}
    reexports = root_reexports(mods)
    for mod, path in mods.items():
        text = expand_use_groups(strip_comments(strip_tests(open(path).read())))
        for m in re.finditer(r"\b(crate|super)((?:::\w+)+)", text):
            parts = [p for p in m.group(2).split("::") if p]
            if m.group(1) == "crate":
                base = ()
            else:
                # `super` of a file module is its parent; of mod.rs too (its parent's dir).
                base = mod[:-1]
                while parts and parts[0] == "super":
                    base = base[:-1]
                    parts = parts[1:]
            target = base
            for p in parts:
                if target + (p,) in mods:
                    target = target + (p,)
                else:
                    break
            if target == () and parts and parts[0] in reexports:
                target = reexports[parts[0]]
            if target != mod and target != () and not is_ancestor(target, mod):
                graph[mod].add(target)
    return graph


def is_ancestor(a, b):
    return len(a) < len(b) and b[: len(a)] == a


def sccs(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main():
    circles = 0
    for crate in sys.argv[1:]:
        mods = modules(os.path.join(crate, "src"))
        graph = edges(mods)
        for comp in sccs(graph):
            if len(comp) > 1:
                circles += 1
                names = sorted("::".join(m) for m in comp)
                print(f"{crate}: circle of {len(comp)}: {', '.join(names)}")
                for m in sorted(comp):
                    inside = sorted("::".join(t) for t in graph[m] if t in comp)
                    print(f"    {'::'.join(m)} -> {', '.join(inside)}")
        if not any(len(c) > 1 for c in sccs(graph)):
            print(f"{crate}: no import circle among {len(mods)} modules")
    sys.exit(1 if circles else 0)


if __name__ == "__main__":
    main()
