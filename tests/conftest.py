"""Shared fixtures for the engine tests: real models, real sessions.

Models are resolved through specbound_cpp.models.model_path, which fetches them
into the user cache on first use. Nothing is skipped: a model that cannot be
fetched fails the tests that need it.

Every Session and every llama_cpp.Llama reference uses 2 threads (the CI
machines have 2 cores). SPECBOUND_TEST_N_GPU_LAYERS=N offloads N layers of
both (-1: all) to a GPU, for the GPU recipe (tools/gpu/run.sh); unset or 0,
everything runs on the CPU.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# the random qwen3 model's writer lives in tools/ (the GPU recipe writes it too)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from random_qwen3 import copy_tokenizer, write_random_qwen3_gguf  # noqa: E402,F401  (copy_tokenizer: for tests)

N_THREADS = 2


def n_gpu_layers() -> int:
    """Layers to offload, from SPECBOUND_TEST_N_GPU_LAYERS (default 0; -1: all)."""
    value = os.environ.get("SPECBOUND_TEST_N_GPU_LAYERS", "").strip() or "0"
    n = int(value)
    if n < -1:
        raise ValueError(f"SPECBOUND_TEST_N_GPU_LAYERS must be >= -1, got {value!r}")
    return n


# Not a registry model: a small random-weight qwen3 GGUF written by the tests
# (no qwen3 GGUF ships in a registry package). model_file() accepts the name.
QWEN3_RANDOM = "qwen3-random"

GREEDY = dict(temperature=0.0, top_k=0, top_p=1.0, min_p=0.0, seed=0)


def gen(sess, prompt: list, n: int, g: dict = GREEDY, specbound: bool = False, spec: dict | None = None,
        **penalties) -> dict:
    """sess.generate (a _core.Session) with sampling g (GREEDY, or sampling
    arguments with a seed) and, with specbound, the SpecBound parameters spec;
    the GenerateResult as a dict."""
    from specbound_cpp.params import generate_params, result_dict, sampling_params, spec_params

    params = generate_params(n, sampling_params(**g, **penalties), specbound=specbound,
                             spec=None if spec is None else spec_params(spec))
    return result_dict(sess.generate(prompt, params))


def spec_then_plain(llm, prompt, **kw):
    """The same completion with speculation on, then off, on one Llama, each
    from a cold prompt: (speculative text, its last_stats, plain text);
    speculation is left on. Each call starts with reset(): a second call that
    reuses the cached prompt evaluates the rest of it in another batch shape,
    and llama-cpp-python's own text then differs too (seen on an AVX2-only
    CPU: a Qwen2.5-Coder-0.5B infill, cold and warm)."""
    llm.specbound = True
    llm.reset()
    spec = llm(prompt, **kw)["choices"][0]["text"]
    stats = llm.last_stats
    llm.specbound = False
    llm.reset()
    plain = llm(prompt, **kw)["choices"][0]["text"]
    llm.specbound = True
    return spec, stats, plain


def run_calibrate_quick(path: str, cache, timeout: float):
    """`python -m specbound_cpp.calibrate PATH --quick` with SPECBOUND_CACHE=cache
    (a temporary cache: the user's profiles are neither read nor overwritten)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, SPECBOUND_CACHE=str(cache))
    proc = subprocess.run(
        [sys.executable, "-m", "specbound_cpp.calibrate", path, "--quick", "--threads", "2"],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.fixture(scope="session")
def model_file(tmp_path_factory):
    """model_file(name) -> local GGUF path of a registry model (fetched once per
    run), or of the random qwen3 model (QWEN3_RANDOM, written once per run)."""
    from specbound_cpp.models import model_path

    cache: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in cache:
            if name == QWEN3_RANDOM:
                path = str(tmp_path_factory.mktemp("qwen3") / "qwen3-random-f16.gguf")
                write_random_qwen3_gguf(path, get("smollm2-135m"))
                cache[name] = path
            else:
                cache[name] = model_path(name, progress=False)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def smollm2_path(model_file):
    return model_file("smollm2-135m")


@pytest.fixture(scope="session")
def qwen05_path(model_file):
    return model_file("qwen2.5-coder-0.5b")


@pytest.fixture(scope="session")
def qwen15_path(model_file):
    return model_file("qwen2.5-coder-1.5b")


@pytest.fixture(scope="session")
def gemma3_path(model_file):
    return model_file("gemma3-270m")


@pytest.fixture(scope="session")
def qwen3_random_path(model_file):
    return model_file(QWEN3_RANDOM)


def new_session(path: str, n_ctx: int = 1024, n_batch: int = 512, n_threads: int = N_THREADS, flash_attn: bool = False):
    """A _core.Session with n_threads threads for both phases, on the CPU unless
    SPECBOUND_TEST_N_GPU_LAYERS says otherwise; attention unfused (llama-cpp-python's
    default) unless flash_attn."""
    from specbound_cpp import _core

    ngl = n_gpu_layers()
    return _core.Session(path, n_ctx, n_batch, n_threads, n_threads, 0x7FFFFFFF if ngl == -1 else ngl, False,
                         flash_attn=flash_attn)


@pytest.fixture(scope="session")
def make_session():
    """make_session(path, n_ctx=1024, n_batch=512, flash_attn=False) -> _core.Session with 2 threads."""
    return new_session


def new_reference(path: str, n_ctx: int = 1024, logits_all: bool = False, **kwargs):
    """llama_cpp.Llama on the same GGUF with llama-cpp-python's defaults (weights
    repacked where llama.cpp repacks them, flash_attn=False unless given), 2 threads:
    what a user of llama-cpp-python gets, and what our plain decoding reproduces."""
    import llama_cpp

    kwargs.setdefault("n_gpu_layers", n_gpu_layers())
    return llama_cpp.Llama(
        path, n_ctx=n_ctx, n_threads=N_THREADS, n_threads_batch=N_THREADS, logits_all=logits_all, verbose=False, **kwargs
    )


@pytest.fixture(scope="session")
def make_reference():
    """make_reference(path, n_ctx=1024, logits_all=False) -> llama_cpp.Llama reference."""
    return new_reference
