"""Shared fixtures for the engine tests: real models, real sessions.

Models are resolved through specbound_cpp.models.model_path, which fetches them
into the user cache on first use. Nothing is skipped: a model that cannot be
fetched fails the tests that need it.

Every Session and every llama_cpp.Llama reference uses 2 threads (the CI
machines have 2 cores).
"""

from __future__ import annotations

import pytest

N_THREADS = 2


@pytest.fixture(scope="session")
def model_file():
    """model_file(name) -> local GGUF path of a registry model, fetched once per run."""
    from specbound_cpp.models import model_path

    cache: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in cache:
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


def new_session(path: str, n_ctx: int = 1024, n_batch: int = 512, n_threads: int = N_THREADS):
    """A CPU-only _core.Session with n_threads threads for both phases."""
    from specbound_cpp import _core

    return _core.Session(path, n_ctx, n_batch, n_threads, n_threads, 0, False)


@pytest.fixture(scope="session")
def make_session():
    """make_session(path, n_ctx=1024, n_batch=512) -> _core.Session with 2 threads."""
    return new_session


def new_reference(path: str, n_ctx: int = 1024, logits_all: bool = False, **kwargs):
    """llama_cpp.Llama on the same GGUF, configured like our engine: flash attention,
    2 threads, no weight repacking (see specbound_cpp.reference.no_weight_repacking)."""
    import llama_cpp

    from specbound_cpp.reference import no_weight_repacking

    with no_weight_repacking():
        return llama_cpp.Llama(
            path,
            n_ctx=n_ctx,
            n_threads=N_THREADS,
            n_threads_batch=N_THREADS,
            flash_attn=True,
            logits_all=logits_all,
            verbose=False,
            **kwargs,
        )


@pytest.fixture(scope="session")
def make_reference():
    """make_reference(path, n_ctx=1024, logits_all=False) -> llama_cpp.Llama reference."""
    return new_reference
