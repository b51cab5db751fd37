"""The run-time batch-invariance check (specbound_cpp.invariance) and its fallback.

Every test uses a temporary SPECBOUND_CACHE (model paths are resolved first),
so the user's cached verdicts are neither read nor written.

The non-invariant configuration is forced with SPECBOUND_DEBUG_NONINVARIANT=1,
which makes the decode phase use the prompt-phase kernels. On Qwen2.5-Coder-0.5B
(Q4_K/Q6_K) ggml's tiled K-quant matmul takes batches of 8 and more there, and
their logits differ from single-token decoding, while batches of 2-7 stay
bitwise equal (measured on an AVX2 CPU). On SmolLM2-135M (Q4_1/Q8_0) the
switch changes no bit up to batch 16, so it cannot show a failure.
"""

from __future__ import annotations

import json

import pytest

from conftest import N_THREADS
from specbound_cpp import Llama, _core
from specbound_cpp.invariance import batch_sizes, run_check

PROMPT = "def fibonacci(n):"


def _llama(path, **kwargs):
    kwargs.setdefault("verbose", False)
    return Llama(path, n_ctx=512, n_threads=N_THREADS, n_threads_batch=N_THREADS, **kwargs)


def _greedy(llm, n=24):
    return llm(PROMPT, max_tokens=n, temperature=0)["choices"][0]["text"]


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECBOUND_CACHE", str(tmp_path))
    return tmp_path


def _verdict_files(cache):
    return sorted((cache / "invariance").glob("*.json"))


def test_check_passes_and_is_cached_per_key(smollm2_path, tmp_cache):
    # (ngram=0: early-exit rounds alone, whose widths w_max decides)
    llm = _llama(smollm2_path, w_max=3, ngram=0)
    v = llm.invariance
    assert v["ok"] and v["batch_sizes"] == [2, 3, 4] and not v["cached"]
    assert llm._use_specbound() and llm.specbound_source == "defaults + arguments"
    [path] = _verdict_files(tmp_cache)

    # same key: the stored verdict, not a new check
    again = _llama(smollm2_path, w_max=3, ngram=0)
    assert again.invariance["cached"] and again.invariance["checked_at"] == v["checked_at"]
    # ... read from the file: a stored failure is believed (and switches speculation off)
    stored = json.loads(path.read_text())
    stored["verdict"].update(ok=False, failures=["batch of 4: planted"])
    path.write_text(json.dumps(stored))
    planted = _llama(smollm2_path, w_max=3, ngram=0)
    assert not planted.invariance["ok"] and not planted._use_specbound()
    assert "planted" in planted.specbound_source

    # another key (other batch sizes): checked again, stored beside the first
    other = _llama(smollm2_path, w_max=4, ngram=0)
    assert not other.invariance["cached"] and other.invariance["batch_sizes"] == [2, 3, 4, 5]
    assert len(_verdict_files(tmp_cache)) == 2


def test_lookup_widths_are_checked(smollm2_path, tmp_cache):
    """Lookup rounds verify up to 64 drafts in one pass: the check covers the
    widths on both sides of the kernels' column blocks up to 65 rows."""
    assert batch_sizes(3, 65) == [2, 3, 4, 16, 17, 32, 33, 64, 65]
    assert batch_sizes(3, 17) == [2, 3, 4, 16, 17]
    llm = _llama(smollm2_path, w_max=3)  # lookup drafts on (the default)
    assert llm.invariance["ok"] and llm.invariance["batch_sizes"] == [2, 3, 4, 16, 17, 32, 33, 64, 65]


def test_plain_decoding_runs_no_check(smollm2_path, tmp_cache):
    llm = _llama(smollm2_path, specbound=False)
    assert llm.invariance is None and not (tmp_cache / "invariance").exists()
    _greedy(llm, 4)
    assert llm.last_stats["invariance"] is None and llm.last_stats["specbound"] is False


def test_check_detects_forced_noninvariance(qwen05_path, make_session, monkeypatch):
    monkeypatch.setenv("SPECBOUND_DEBUG_NONINVARIANT", "1")
    s = make_session(qwen05_path)
    assert _core.testing.debug_noninvariant(s) and any("DEBUG_NONINVARIANT" in d for d in s.devices())
    v = run_check(s, batch_sizes(8))
    assert not v["ok"]
    # the prompt-phase path: llamafile's sgemm in unfused attention from 2 queries on,
    # the repacked gemm from 4 columns (measured: every size differs)
    assert [f.split(":")[0] for f in v["failures"]] == [f"batch of {k}" for k in range(2, 10)]
    assert s.history() == []  # the check leaves an empty cache behind


def test_fallback_when_check_fails(qwen05_path, tmp_cache, monkeypatch, capfd):
    plain_text = _greedy(_llama(qwen05_path, specbound=False))  # invariant kernels, no check
    monkeypatch.setenv("SPECBOUND_DEBUG_NONINVARIANT", "1")

    llm = _llama(qwen05_path, w_max=7, verbose=True)
    assert "invariance check failed" in capfd.readouterr().err
    # which batch is the first to differ depends on the CPU's ggml (batch 3 on
    # AVX-512 machines, where batch 2 happens to agree; batch 2 on an AVX2-only one)
    failures = llm.invariance["failures"]
    assert not llm.invariance["ok"] and failures and all(f.startswith("batch of ") for f in failures), failures
    assert not llm._use_specbound()
    assert llm.specbound_source.startswith("plain decoding: invariance check failed")
    llm.verbose = False
    assert _greedy(llm) == plain_text
    st = llm.last_stats
    assert st["specbound"] is False and st["specbound_source"] == llm.specbound_source
    assert st["invariance"]["ok"] is False and "draft_tokens" not in st

    with pytest.raises(RuntimeError, match="specbound=True, but SpecBound would not be exact.*batch of 3"):
        _llama(qwen05_path, w_max=7, specbound=True)
    # with unfused attention even the check of a batch of 2 alone finds the difference
    with pytest.raises(RuntimeError, match="batch of 2: logits of 1 of its 2 positions differ"):
        _llama(qwen05_path, w_max=1, ngram=0, specbound=True)
