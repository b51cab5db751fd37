"""The type stubs of the extension: nanobind's stubgen writes them at build time
(CMakeLists.txt, nanobind_add_stub) as the stub package _core/ (__init__.pyi,
and testing.pyi for the _core.testing submodule), installed beside the
extension module; py.typed marks the package as typed. Parsed here with ast:
what a type checker reads must declare what the module holds."""

from __future__ import annotations

import ast
from pathlib import Path

import specbound_cpp
from specbound_cpp import _core

STUBS = Path(_core.__file__).resolve().parent / "_core"


def _parse(name: str) -> ast.Module:
    path = STUBS / name
    assert path.is_file(), f"{path} was not installed beside {_core.__file__}"
    return ast.parse(path.read_text(), filename=str(path))


def _classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}


def _members(cls: ast.ClassDef) -> set[str]:
    out = set()
    for n in cls.body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
        elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name):
            out.add(n.target.id)
        elif isinstance(n, ast.Assign):
            out.update(t.id for t in n.targets if isinstance(t, ast.Name))
    return out


def _functions(tree: ast.Module) -> dict[str, list[ast.FunctionDef]]:
    out: dict[str, list[ast.FunctionDef]] = {}
    for n in tree.body:
        if isinstance(n, ast.FunctionDef):
            out.setdefault(n.name, []).append(n)  # overloads repeat a name
    return out


def _public(obj) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_core_stub_declares_the_api():
    tree = _parse("__init__.pyi")
    classes = _classes(tree)
    bound = {n for n in _public(_core) if isinstance(getattr(_core, n), type)}
    assert bound <= set(classes), bound - set(classes)
    assert {"Session", "SpecParams", "SpecStats", "GenerateResult", "GenerateParams"} <= set(classes)
    session = _members(classes["Session"])
    assert _public(_core.Session) <= session, _public(_core.Session) - session
    assert not {"probe_matmul", "time_forward", "forward_timing"} & session  # test hooks are in _core.testing
    spec = _members(classes["SpecParams"])
    assert set(_core.SpecParams.fields) | {"fields", "field_types"} <= spec
    assert "check_spec_params" in _functions(tree)
    # the submodule is reachable through the stub (a `from . import testing`)
    imported = {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    assert "testing" in imported


def test_testing_stub_declares_the_hooks():
    tree = _parse("testing.pyi")
    functions, classes = _functions(tree), _classes(tree)
    hooks = _public(_core.testing)
    assert hooks <= set(functions) | set(classes), hooks - set(functions) - set(classes)
    assert {"NgramPool", "SpecGate", "RoundKind"} <= set(classes)
    # a hook on a session takes the API's Session, named as the package names it
    (probe,) = functions["probe_matmul"]
    first = probe.args.args[0]
    assert first.arg == "session" and "Session" in ast.unparse(first.annotation)


def test_package_is_typed():
    assert (Path(specbound_cpp.__file__).parent / "py.typed").is_file()
