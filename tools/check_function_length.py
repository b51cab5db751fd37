"""No Python function whose body is over 60 lines.

    python tools/check_function_length.py [--max 60] [PATH ...]

PATHs are files or folders (default: python/specbound_cpp and tools). A body
runs from its first statement (the docstring, if any) to its last line,
blank lines and comments inside included, nested functions included in the
function around them (each is also checked on its own). Prints every function
over the limit, longest first, and exits 1 if there is one.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATHS = [ROOT / "python" / "specbound_cpp", ROOT / "tools"]
MAX_BODY_LINES = 60


def python_files(paths: list[Path]) -> list[Path]:
    files = []
    for p in paths:
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    return files


def body_lengths(path: Path) -> list[tuple[int, str, int]]:
    """(body lines, qualified name, line of the def) of every function in path."""
    tree = ast.parse(path.read_text(), str(path))
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                found.append((child.end_lineno - child.body[0].lineno + 1, name, child.lineno))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path)
    ap.add_argument("--max", type=int, default=MAX_BODY_LINES)
    a = ap.parse_args(argv)
    files = python_files(a.paths or DEFAULT_PATHS)
    over = []
    n_functions = 0
    for path in files:
        lengths = body_lengths(path)
        n_functions += len(lengths)
        over += [(n, f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line} {name}")
                 for n, name, line in lengths if n > a.max]  # fmt: skip
    for n, where in sorted(over, reverse=True):
        print(f"{n:4d} lines  {where}")
    print(f"{len(files)} files, {n_functions} functions, {len(over)} with a body over {a.max} lines")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
