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


def source_files(paths: list[Path], suffixes: tuple[str, ...]) -> list[Path]:
    """The files of `paths` (folders searched for these suffixes; files taken as given)."""
    files = []
    for p in paths:
        files += sorted(f for f in p.rglob("*") if f.suffix in suffixes) if p.is_dir() else [p]
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


def check_lengths(argv: list[str], doc: str, default_paths: list[Path], suffixes: tuple[str, ...],
                  bodies_of) -> int:
    """The command of both checkers: bodies_of(path) -> [(body lines, name, line)].
    Prints every function over --max, longest first, and a summary; 1 if any."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path)
    ap.add_argument("--max", type=int, default=MAX_BODY_LINES)
    a = ap.parse_args(argv)
    files = source_files(a.paths or default_paths, suffixes)
    over = []
    n_functions = 0
    for path in files:
        bodies = bodies_of(path)
        n_functions += len(bodies)
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        over += [(n, f"{where}:{line} {name}") for n, name, line in bodies if n > a.max]
    for n, where in sorted(over, reverse=True):
        print(f"{n:4d} lines  {where}")
    print(f"{len(files)} files, {n_functions} functions, {len(over)} with a body over {a.max} lines")
    return 1 if over else 0


def main(argv: list[str]) -> int:
    return check_lengths(argv, __doc__, DEFAULT_PATHS, (".py",), body_lengths)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
