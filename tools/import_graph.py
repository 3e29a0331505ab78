"""The package's import graph: its cycles and its layering, with every import counted (module
level, inside functions, under ``TYPE_CHECKING``).

    python tools/import_graph.py            # cycles and layer violations; exit 1 if any
    python tools/import_graph.py --edges    # and every edge, module → module

Layers, lowest first; a module may import its own layer's modules and lower layers only::

    0  _io                                    generic: framing, files, text
    1  _jsonrpc                               generic: JSON-RPC
    2  errors events config requests          the package's types
       conversation _version                  (and telemetry, the edges' reporting)
       telemetry _otel
    3  _codex                                 codex knowledge
    4  _engine                                the seam and its engines
    5  _bridge | _turn                        host tools | one turn (never each other)
    6  provider                               the life cycle
    7  plugin                                 the protocol
    8  testing                                test support (a scripted model, a fake codex)
    9  cli                                    commands (``--demo`` uses testing's model)
   10  (the package itself: its lazy public surface)

    python tools/import_graph.py --src OTHER/src/plexum_openai_provider   # another checkout

"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "plexum_openai_provider"
SRC = Path(__file__).resolve().parent.parent / "src" / PACKAGE

LAYERS: dict[str, int] = {
    "_io": 0,
    "_jsonrpc": 1,
    "errors": 2,
    "events": 2,
    "config": 2,
    "requests": 2,
    "conversation": 2,
    "_version": 2,
    "telemetry": 2,
    "_otel": 2,
    "_codex": 3,
    "_engine": 4,
    "_bridge": 5,
    "_turn": 5,
    "provider": 6,
    "plugin": 7,
    "testing": 8,
    "cli": 9,
    "__main__": 9,
    "": 10,
}
# Same layer, but never importing each other.
APART = [{"_bridge", "_turn"}]


def modules(src: Path = SRC) -> dict[str, Path]:
    out = {}
    for path in sorted(src.rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([PACKAGE, *parts])] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> Iterator[str]:
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                module = ".".join(anchor + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        for target in targets:
            # the longest known module the import names
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def graph(src: Path = SRC) -> dict[str, set[str]]:
    mods = modules(src)
    known = set(mods)
    return {name: set(_imports(name, path, known)) for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violations(edges: dict[str, set[str]]) -> list[str]:
    out = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            a, b = top(source), top(target)
            if a == b or a not in LAYERS or b not in LAYERS:
                continue
            if LAYERS[b] > LAYERS[a]:
                out.append(f"{source} (layer {LAYERS[a]}) imports {target} (layer {LAYERS[b]})")
            elif any({a, b} <= pair for pair in APART):
                out.append(f"{source} imports {target}: {a} and {b} stay apart")
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edges", action="store_true")
    parser.add_argument("--src", type=Path, default=SRC, help="the package folder to read")
    args = parser.parse_args()
    edges = graph(args.src)
    if args.edges:
        for source, targets in sorted(edges.items()):
            for target in sorted(targets):
                print(f"{source} -> {target}")
    found = cycles(edges)
    bad = violations(edges)
    print(f"{len(edges)} modules, {sum(map(len, edges.values()))} imports")
    for component in found:
        print("cycle: " + " <-> ".join(component))
    for line in bad:
        print("layering: " + line)
    if not found and not bad:
        print("no cycles; every import goes to the same or a lower layer")
    return 1 if found or bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
