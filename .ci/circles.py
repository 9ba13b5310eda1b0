#!/usr/bin/env python3
"""Import circles among the files of each crate.

usage: circles.py CRATE_SRC_DIR...

A file depends on another when it names an item of the other's module
(`use crate::a::b`, `super::x`, `crate::a::f()` in code). Re-exports (`pub
use`, `pub(crate) use`) and `mod` declarations are not dependencies: a
module's front file may re-export what its files define. Tests (`mod
tests` blocks and files under `tests/`) are left out. Prints each circle
and exits 1 if there is one.
"""

import os
import re
import sys


def modules(src):
    """Module path (tuple) -> file, for every .rs file under src."""
    out = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel[-1] in ("lib", "main") and len(rel) == 1:
                rel = []
            elif rel[-1] == "mod":
                rel = rel[:-1]
            if rel and rel[0] == "bin":
                continue
            out[tuple(rel)] = path
    return out


def strip(text):
    """The text without comments, strings and `#[cfg(test)]` modules."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    m = re.search(r"#\[cfg\((all\()?test[^\]]*\]\s*(pub(\([^)]*\))?\s+)?mod \w+\s*\{", text)
    if m:
        text = text[: m.start()]
    return text


def owner(path, mods):
    """The file defining the longest module prefix of `path`."""
    for n in range(len(path), -1, -1):
        if tuple(path[:n]) in mods:
            return tuple(path[:n])
    return None


def reexports(mods):
    """(module, name) -> the module that defines what `module` re-exports
    as `name` (`pub use a::b::Name;`, `pub use a::{B, C};`)."""
    out = {}
    for mod, path in mods.items():
        text = strip(open(path).read())
        for m in re.finditer(r"pub(?:\([^)]*\))?\s+use\s+([^;]*);", text):
            tree = re.sub(r"\s+", "", m.group(1))
            root, _, rest = tree.partition("::{")
            if rest:
                names = [n.split("::")[-1] for n in rest.rstrip("}").split(",") if n]
                prefixes = [(root, n) for n in rest.rstrip("}").split(",") if n]
            else:
                prefixes = [(tree.rsplit("::", 1)[0], tree.rsplit("::", 1)[-1])]
            for base, name in prefixes:
                full = (base + "::" + name).split("::")
                if full[0] == "crate":
                    target = full[1:]
                elif full[0] == "super":
                    target = list(mod)[:-1] + full[1:]
                elif full[0] == "self":
                    target = list(mod) + full[1:]
                else:
                    target = list(mod) + full
                o = owner(target[:-1], mods)
                if o is not None and o != mod:
                    out[(mod, full[-1])] = o
    return out


def resolve(target, mods, again):
    """The file defining `target`, following re-exports."""
    o = owner(target, mods)
    seen = 0
    while o is not None and len(target) > len(o) and (o, target[len(o)]) in again and seen < 8:
        o = again[(o, target[len(o)])]
        seen += 1
    return o


def edges(mods):
    graph = {m: set() for m in mods}
    again = reexports(mods)
    for mod, path in mods.items():
        text = strip(open(path).read())
        # Drop re-exports.
        text = re.sub(r"pub(\([^)]*\))?\s+use\s[^;]*;", "", text)
        here = list(mod) if not path.endswith(("mod.rs", "lib.rs", "main.rs")) else list(mod)
        # `use` trees: expand braces shallowly by taking every path prefix.
        for m in re.finditer(r"\b(crate|super|self)((?:::\w+)+)", text):
            root, rest = m.group(1), m.group(2).split("::")[1:]
            if root == "crate":
                target = rest
            elif root == "self":
                target = here + rest
            else:
                # `super` is relative to the module the file defines.
                base = list(mod)
                parts = [root] + rest
                while parts and parts[0] == "super":
                    base = base[:-1]
                    parts = parts[1:]
                target = base + parts
            o = resolve(target, mods, again)
            if o is not None and o != mod:
                graph[mod].add(o)
        # `use super::{a, b}` and `use crate::{a::x, b}`: the names inside.
        for m in re.finditer(r"\b(crate|super)::\{([^;]*)\};", text):
            base = [] if m.group(1) == "crate" else list(mod)[:-1]
            for name in re.findall(r"(?:^|[,{]\s*)(\w+)", m.group(2)):
                o = resolve(base + [name], mods, again)
                if o is not None and o != mod:
                    graph[mod].add(o)
    return graph


def cycles(graph):
    """Strongly connected components with more than one file (Tarjan)."""
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
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main():
    found = False
    for src in sys.argv[1:]:
        mods = modules(src)
        graph = edges(mods)
        for comp in cycles(graph):
            found = True
            names = sorted("::".join(c) or "lib" for c in comp)
            print(f"{src}: circle among {', '.join(names)}")
            for c in sorted(comp):
                deps = sorted("::".join(d) or "lib" for d in graph[c] if d in comp)
                print(f"    {'::'.join(c) or 'lib'} -> {', '.join(deps)}")
    if found:
        sys.exit(1)
    print("no import circles")


if __name__ == "__main__":
    main()
