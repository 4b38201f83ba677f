"""Structure figures of the four packages: module sizes, longest functions, module-level import
cycles and imports inside functions (the figures of issue 12's closing note).

    python -m benchmarks.structure [--top 12] [--inner]

Reads the source with ``ast`` (nothing is imported). An import at module level of a module in a
package also counts as importing the package (its ``__init__`` runs first); imports under
``if TYPE_CHECKING:`` are not counted. A cycle is a strongly connected group of modules.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("duban", "definitions", "flows", "notifications")


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            if "migrations" in f.parts:
                continue
            name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = f
    return mods


def _targets(mods: dict[str, Path], current: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = current.split(".")
            keep = len(parts) - node.level + (1 if mods[current].name == "__init__.py" else 0)
            base = ".".join(parts[:keep] + ([node.module] if node.module else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
    out = []
    for imported in names:
        name = imported
        while name not in mods and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in mods and name != current:
            out.append(name)
            parts = name.split(".")  # importing a.b.c runs a and a.b first
            out += [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in mods]
    return [t for t in out if t != current]


class _Walker:
    def __init__(self, mods: dict[str, Path]) -> None:
        self.mods = mods
        self.graph: dict[str, set[str]] = defaultdict(set)
        self.inner: list[tuple[str, int, str]] = []
        self.functions: list[tuple[int, str]] = []

    def module(self, name: str) -> None:
        tree = ast.parse(self.mods[name].read_text(encoding="utf-8"))
        skip = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                for n in ast.walk(block)}  # fmt: skip
        self._visit(name, tree, skip, in_function=False)

    def _visit(self, name: str, node: ast.AST, skip: set[int], *, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom) and id(child) not in skip:
                if in_function:
                    self.inner.append((name, child.lineno, ast.unparse(child)))
                else:
                    self.graph[name].update(_targets(self.mods, name, child))
            is_function = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if is_function:
                rel = self.mods[name].relative_to(ROOT)
                self.functions.append((child.end_lineno - child.lineno + 1, f"{rel}:{child.name}"))  # type: ignore[attr-defined,operator]
            self._visit(name, child, skip, in_function=in_function or is_function)


def _cycles(graph: dict[str, set[str]], nodes: list[str]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in nodes:
        if v not in index:
            visit(v)
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", type=int, default=12, help="how many of the longest functions to list")
    ap.add_argument("--inner", action="store_true", help="list every import inside a function")
    args = ap.parse_args()
    mods = _modules()
    walker = _Walker(mods)
    for name in mods:
        walker.module(name)
    sizes = sorted(len(f.read_text(encoding="utf-8").splitlines()) for f in mods.values())
    lengths = sorted(walker.functions, reverse=True)
    print(f"modules: {len(mods)}; lines per module: median {sizes[len(sizes) // 2]}, largest {sizes[-1]}")
    print(
        f"  over 500 lines: {', '.join(str(f.relative_to(ROOT)) for f in mods.values() if len(f.read_text().splitlines()) > 500) or 'none'}"
    )
    over = {n: sum(1 for length, _ in lengths if length > n) for n in (50, 80, 100)}
    print(f"functions: {len(lengths)}; over 50 lines: {over[50]}, over 80: {over[80]}, over 100: {over[100]}")
    for length, where in lengths[: args.top]:
        print(f"  {length:4d}  {where}")
    cycles = _cycles(walker.graph, list(mods))
    print(f"module-level import cycles: {len(cycles)}")
    for group in cycles:
        print("  " + " <-> ".join(group))
    print(f"imports inside functions: {len(walker.inner)}")
    if args.inner:
        for name, line, text in walker.inner:
            print(f"  {name}:{line}  {text}")


if __name__ == "__main__":
    main()
