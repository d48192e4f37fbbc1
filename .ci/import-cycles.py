#!/usr/bin/env python3
"""Fails when the files of a crate import each other in a circle (`just lint` runs it).

Each `.rs` file under a crate's `src/` is a module; every `crate::…`, `super::…` and `self::…`
path in it (in `use` lines and in code) is an edge to the deepest module the path names. Two kinds
of edges cannot make a reportable circle:

- a module using one of its ancestors (`super::Ctx` in a command family, `crate::Error` from the
  crate root): a folder's files are its parent's subsystems, and the parent is what they share;
- any module using its component's state (`STATE` below: the one type that holds every subsystem
  and that every subsystem is handed), as the design allows.

Every other circle is printed with the edges that close it, and the script exits 1.
Usage: .ci/import-cycles.py [crate dir …]   (default: every workspace member with a src/)
       .ci/import-cycles.py --self-test       (the check finds a planted circle, and only it)
"""

import os
import re
import sys

# The state module of each component: it holds its subsystems and is handed to them.
STATE = {
    "nodes/server": {"state"},
    "nodes/proxy": {"proxy"},
    "nodes/dashboard": {"dashboard"},
}

PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+|::\{)")


def modules(src):
    """Maps each module path (a tuple) to its file."""
    found = {}
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel[0] == "bin":
                continue
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            found[tuple(rel)] = path
    return found


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    # String literals may hold `crate::` in messages.
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def expand_group(text, start):
    """The paths inside `{…}` beginning at `start` (nested groups flattened), and where it ends."""
    depth, index, item, items = 0, start, "", []
    while index < len(text):
        char = text[index]
        if char == "{":
            depth += 1
            if depth > 1:
                item += char
        elif char == "}":
            depth -= 1
            if depth == 0:
                items.append(item)
                break
            item += char
        elif char == "," and depth == 1:
            items.append(item)
            item = ""
        elif depth >= 1:
            item += char
        index += 1
    paths = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        if "{" in item:
            head = item[: item.index("{")].rstrip(":").strip()
            for sub in expand_group(item, item.index("{"))[0]:
                paths.append(f"{head}::{sub}" if head else sub)
        else:
            paths.append(item.split(" as ")[0].strip())
    return paths, index


def edges_of(module, text, known):
    text = strip_comments(text)
    targets = set()
    for match in PATH.finditer(text):
        anchor, rest = match.group(1), match.group(2)
        if anchor == "crate":
            base = ()
        elif anchor == "super":
            base = module[:-1]
        else:
            base = module
        if rest == "::{":
            paths, _ = expand_group(text, match.end() - 1)
            suffixes = [path.split("::") for path in paths]
        else:
            suffixes = [rest.strip(":").split("::")]
        for parts in suffixes:
            path = list(base)
            for part in parts:
                if part == "super":
                    path = path[:-1]
                elif part in ("self", "*"):
                    pass
                else:
                    path.append(part)
            # The deepest module the path names.
            while path and tuple(path) not in known:
                path.pop()
            targets.add(tuple(path))
    targets.discard(module)
    return targets


def cycles(graph):
    """Tarjan's strongly connected components with more than one module."""
    index, low, stack, on, result, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def check(crate):
    src = os.path.join(crate, "src")
    known = modules(src)
    state = {tuple(name.split("::")) for name in STATE.get(crate, ())}
    graph = {}
    for module, path in known.items():
        with open(path, encoding="utf-8") as file:
            targets = edges_of(module, file.read(), known)
        graph[module] = {
            target
            for target in targets
            if target[: len(target)] != module[: len(target)]  # not an ancestor
            and target not in state
        }
    found = cycles(graph)
    for component in found:
        names = ["::".join(module) or "(root)" for module in component]
        print(f"{crate}: import cycle between {len(component)} files: {', '.join(names)}")
        members = set(component)
        for module in component:
            for target in sorted(graph[module] & members):
                print(f"    {'::'.join(module)} -> {'::'.join(target)}")
    return not found


def members():
    with open("Cargo.toml", encoding="utf-8") as file:
        text = file.read()
    listed = re.search(r"members\s*=\s*\[(.*?)\]", text, re.S)
    return [name for name in re.findall(r'"([^"]+)"', listed.group(1)) if os.path.isdir(os.path.join(name, "src"))]


def self_test():
    """Plants a circle between two sibling files, next to the allowed shapes, and checks that
    exactly the planted one is reported."""
    import contextlib
    import io
    import tempfile

    with tempfile.TemporaryDirectory() as crate:
        files = {
            "lib.rs": "pub mod a;\npub mod b;\npub mod family;\npub mod state;\npub struct Error;\n",
            "a.rs": "use crate::b::Thing;\nuse crate::state::State;\n",
            "b.rs": "use crate::{a::Other, Error};\npub struct Thing;\n",
            "state.rs": "use crate::family::Table;\n",
            "family/mod.rs": "mod strings;\nuse self::strings::HANDLERS;\nuse crate::state::State;\n",
            "family/strings.rs": "use super::{Ctx, Handler};\n// use crate::a::Commented;\nconst S: &str = \"crate::a::Quoted\";\n",
        }
        for name, text in files.items():
            path = os.path.join(crate, "src", name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as file:
                file.write(text)
        STATE[crate] = {"state"}
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            ok = check(crate)
        report = out.getvalue()
        assert not ok, "a planted circle was not found"
        assert "import cycle between 2 files: a, b" in report, report
        assert report.count("import cycle") == 1, report
    print("import-cycles self-test: the planted circle is found, the allowed shapes are not")


def main():
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return
    crates = sys.argv[1:] or members()
    ok = all([check(crate) for crate in crates])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
