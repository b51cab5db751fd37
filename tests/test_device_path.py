"""The decode path for weights off the CPU (GraphBuilder::device_columns).

On a GPU ggml chooses its matmul and attention kernels, and with them the
summation order, by the number of columns and queries, so a verification batch
would not give single-token decoding's bits. With device_columns = N the
decode phase runs such matmuls in chunks of N columns and attention per query
over the cells that query alone would attend. The path only runs for weights
off the CPU; SPECBOUND_DEBUG_DEVICE_PATH=1 takes it for CPU weights as well,
which is how it is tested here: on the CPU every column of a per-column matmul
is one vec_dot (use_ref), which is what our kernels compute too, so the path
must reproduce the CPU path's logits bit for bit, for every batch size.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import N_THREADS, new_session
from test_batch_invariance import PROMPT, chunked_logits, poison

from specbound_cpp import Llama, _core

N_POS = 7


@pytest.fixture
def device_path(monkeypatch):
    monkeypatch.setenv("SPECBOUND_DEBUG_DEVICE_PATH", "1")


def _prefilled(path, prefix):
    sess = new_session(path, n_ctx=256)
    for start in range(0, len(prefix), 512):
        sess.eval_logits(prefix[start:start + 512], start, False)
    return sess


def _logits_by_chunk(sess, n_past, cont):
    out = {}
    for size in (1, 3, N_POS):
        poison(sess, n_past, cont)
        out[size] = chunked_logits(sess, n_past, cont, size, True)
    return out


@pytest.mark.parametrize("model", ["smollm2-135m", "qwen2.5-coder-0.5b"])
def test_device_path_gives_the_cpu_paths_bits(model, model_file, monkeypatch):
    path = model_file(model)
    cpu = new_session(path, n_ctx=256)
    prefix = cpu.tokenize(PROMPT, True, False)
    n_past = len(prefix)
    cont = [int(t) for t in cpu.tokenize(b"        return list(items)\n    pivot", False, False)][:N_POS]
    assert len(cont) == N_POS
    cpu = _prefilled(path, prefix)
    assert not _core.testing.debug_device_path(cpu)
    want = _logits_by_chunk(cpu, n_past, cont)

    monkeypatch.setenv("SPECBOUND_DEBUG_DEVICE_PATH", "1")
    for columns in (1, 4):
        dev = _prefilled(path, prefix)
        assert _core.testing.debug_device_path(dev) and dev.device_columns == 4
        dev.device_columns = columns
        assert any(f"matmuls by {columns} column" in d for d in dev.devices())
        got = _logits_by_chunk(dev, n_past, cont)
        for size in got:
            assert np.array_equal(got[size], want[1]), f"{model}: columns={columns}, chunks of {size}"
    # and the CPU path itself, for the record: invariant over the same chunks
    for size in want:
        assert np.array_equal(want[size], want[1])


def test_device_path_specbound_exact(smollm2_path, device_path, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECBOUND_CACHE", str(tmp_path))  # no cached verdict of the CPU path
    kw = dict(n_ctx=512, n_threads=N_THREADS, n_threads_batch=N_THREADS, verbose=False)
    spec = Llama(smollm2_path, specbound=True, **kw)
    assert spec.invariance["ok"], spec.invariance
    assert any("SPECBOUND_DEBUG_DEVICE_PATH" in d for d in spec._session.devices())
    plain = Llama(smollm2_path, specbound=False, **kw)
    prompt = "def fibonacci(n):\n    "
    a = spec(prompt, max_tokens=48, temperature=0)["choices"][0]["text"]
    b = plain(prompt, max_tokens=48, temperature=0)["choices"][0]["text"]
    assert a == b
    assert spec.last_stats["rounds"] > 0 and spec.last_stats["draft_tokens"] > 0


def test_long_inputs_go_in_chunks_the_graph_holds(smollm2_path, monkeypatch):
    """Per-column matmuls and per-query attention put objects in the graph per
    row: a teacher-forced text longer than one decode-phase graph holds runs in
    chunks (no abort inside ggml), with the CPU path's bits; a single forward
    past the limit is a ValueError."""
    cpu = new_session(smollm2_path, n_ctx=512)
    toks = cpu.tokenize(PROMPT * 8, True, False)[:300]
    layers = [20, cpu.n_layer]
    cpu.set_candidates(list(range(1024)))
    want_states = cpu.hidden_states(toks, 0, layers)
    cpu.reset()
    want_checks = cpu.exit_logits(toks, 0, [20])
    cpu.reset()
    want_logits = cpu.eval_logits(toks, 0, True)
    assert cpu.max_invariant_rows > 10**6

    monkeypatch.setenv("SPECBOUND_DEBUG_DEVICE_PATH", "1")
    dev = new_session(smollm2_path, n_ctx=512)
    dev.set_candidates(list(range(1024)))
    dev.device_columns = 1
    assert 16 <= dev.max_invariant_rows < len(toks)
    assert np.array_equal(dev.hidden_states(toks, 0, layers), want_states)
    dev.reset()
    assert np.array_equal(dev.exit_logits(toks, 0, [20]), want_checks)
    dev.reset()
    assert np.array_equal(dev.eval_logits(toks, 0, True), want_logits)
    assert list(dev.history()) == list(toks)
    dev.reset()
    with pytest.raises(ValueError, match="rows"):
        _core.testing.time_forward(dev, dev.max_invariant_rows + 1, 0, 0, dev.n_layer, True, False, 1, True)
    dev.device_columns = 4
    assert dev.max_invariant_rows > 2 * 64


def test_device_columns_checked(smollm2_path, monkeypatch):
    sess = new_session(smollm2_path, n_ctx=64)
    assert sess.device_columns == 4
    sess.device_columns = 0
    assert sess.device_columns == 0
    for bad in (-1, 65):
        with pytest.raises(ValueError):
            sess.device_columns = bad
    assert sess.device_columns == 0
    monkeypatch.setenv("SPECBOUND_DEVICE_COLUMNS", "two")
    with pytest.raises(ValueError, match="SPECBOUND_DEVICE_COLUMNS"):
        new_session(smollm2_path, n_ctx=64)
    monkeypatch.setenv("SPECBOUND_DEVICE_COLUMNS", "2")
    assert new_session(smollm2_path, n_ctx=64).device_columns == 2


def test_failed_check_off_the_cpu_retries_single_columns(qwen05_path, tmp_path, monkeypatch):
    """Off the CPU a failed check is tried again with single columns before
    SpecBound is switched off; where that fails too, the setting is restored.
    Forced here with both debug switches: the decode phase then takes the
    prompt kernels (SPECBOUND_DEBUG_NONINVARIANT), which on Qwen2.5-Coder-0.5B
    differ from single-token decoding from batches of 8 (tests/test_invariance.py)."""
    monkeypatch.setenv("SPECBOUND_CACHE", str(tmp_path))
    monkeypatch.setenv("SPECBOUND_DEBUG_DEVICE_PATH", "1")
    monkeypatch.setenv("SPECBOUND_DEBUG_NONINVARIANT", "1")
    llm = Llama(qwen05_path, n_ctx=512, n_threads=N_THREADS, n_threads_batch=N_THREADS, w_max=8, verbose=False)
    assert not llm.invariance["ok"] and not llm._use_specbound()
    assert llm._session.device_columns == 4  # restored after the retry failed
    verdicts = sorted((tmp_path / "invariance").glob("*.json"))
    assert len(verdicts) == 2  # one per setting: 4 columns, then 1
    keys = [json.loads(v.read_text())["key"]["devices"] for v in verdicts]
    assert sorted(any("matmuls by 1 column" in d for d in k) for k in keys) == [False, True]
