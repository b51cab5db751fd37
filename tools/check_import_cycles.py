"""No import cycle among the modules of the specbound_cpp package.

    python tools/check_import_cycles.py [PACKAGE_DIR]

Reads every module's source (nothing is imported or built) and collects each
import of another module of the package, at the top of a file or inside a
function alike: an import deferred into a function still makes the two
modules depend on each other. Prints the dependencies, then any cycle (a
strongly connected group of modules), and exits 1 if there is one.

Imports of the package itself (`import specbound_cpp`, `from . import
__version__`) are counted apart, not as dependencies: `__init__` runs before
any module of the package, and it only re-exports names lazily (its module
`__getattr__`), so it cannot order two modules' imports. The compiled
extension `_core` has no Python imports.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = "specbound_cpp"
DEFAULT_DIR = Path(__file__).resolve().parents[1] / "python" / PACKAGE


def _imported(node: ast.AST, modules: set[str]) -> list[str]:
    """The package's modules one import statement names ("__init__" for the package itself)."""
    if isinstance(node, ast.Import):
        found = []
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] == PACKAGE:
                found.append(parts[1] if len(parts) > 1 else "__init__")
        return found
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level == 0 and (node.module or "").split(".")[0] != PACKAGE:
        return []  # another package
    if node.level > 1:
        raise ValueError(f"line {node.lineno}: relative import above the package")
    inner = (node.module or "").split(".")
    inner = inner[1:] if node.level == 0 else inner  # drop "specbound_cpp" from an absolute name
    if inner and inner[0]:
        return [inner[0]]
    # `from . import x` / `from specbound_cpp import x`: a module where x is one
    return [a.name if a.name in modules else "__init__" for a in node.names]


def dependencies(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (besides __init__ and _core)."""
    modules = {p.stem for p in package_dir.glob("*.py")}
    deps = {}
    for path in sorted(package_dir.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        named = {m for node in ast.walk(tree) for m in _imported(node, modules)}
        deps[path.stem] = {m for m in named if m in modules and m not in ("__init__", path.stem)}
    return deps


def cycles(deps: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(deps.get(v, ())):
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
                groups.append(sorted(group))

    for v in sorted(deps):
        if v not in index:
            visit(v)
    return groups


def main(argv: list[str]) -> int:
    package_dir = Path(argv[0]) if argv else DEFAULT_DIR
    deps = dependencies(package_dir)
    for module, used in deps.items():
        print(f"{module}: {', '.join(sorted(used)) or '-'}")
    found = cycles(deps)
    for group in found:
        print(f"import cycle: {' <-> '.join(group)}")
    print(f"{len(deps)} modules, {sum(map(len, deps.values()))} dependencies, {len(found)} cycles")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
