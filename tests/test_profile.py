"""The profile command (`python -m specbound_cpp.profile`): its batch factors
cover k = 1 .. 64, and --compare-llamacpp prices llama.cpp's own batches at the
same widths, side by side; it prints a call's stages with decode graphs
reused and built; the bandwidth probe refuses bad sizes.

Nothing here judges a timing (the CI machines are shared): only that every
width is measured and positive, that llama.cpp's cache goes back to n_past
after each timed batch, and that the output names every width.
"""

from __future__ import annotations

import json

import pytest

from conftest import N_THREADS

WIDTHS = ["1", "2", "4", "8", "16", "32", "64"]
N_PAST = 32


@pytest.fixture(scope="module")
def measured(smollm2_path):
    from specbound_cpp.profile import profile

    return profile(smollm2_path, threads=N_THREADS, n_past=N_PAST, reps=1, compare_llamacpp=True)


def _check_factors(entry: dict) -> None:
    assert list(entry["batch_factor"]) == WIDTHS
    assert entry["batch_factor"]["1"] == 1.0
    assert all(v > 0 for v in entry["batch_factor"].values()), entry["batch_factor"]
    assert entry["token_ms"] > 0


def test_batch_factor_widths(measured):
    from specbound_cpp.profile import BATCH_SIZES

    assert [str(k) for k in BATCH_SIZES] == WIDTHS
    _check_factors(measured)
    assert measured["n_past"] == N_PAST and "ggml_vec_dot" not in measured


def test_llamacpp_factors_same_widths(measured):
    _check_factors(measured["llama_cpp"])
    assert "flash_attn off" in measured["llama_cpp"]["settings"]


def test_llamacpp_batch_leaves_cache_at_n_past(smollm2_path):
    from specbound_cpp.profile import LlamaCppBatch

    b = LlamaCppBatch(smollm2_path, N_THREADS, N_PAST, max_k=8)
    try:
        for k in (8, 1, 3):
            assert b.time_batch(k) > 0
            assert b._lc.llama_memory_seq_pos_max(b._mem, 0) == N_PAST - 1
        with pytest.raises(ValueError):
            b.time_batch(9)
    finally:
        b.close()


def test_cli_compare_llamacpp_prints_side_by_side(measured, monkeypatch, capsys):
    """main passes --compare-llamacpp through and prints a row per width with
    our factor and llama.cpp's (the measurement is the fixture's)."""
    from specbound_cpp import profile as prof

    calls = []
    monkeypatch.setattr(prof, "profile", lambda *a: calls.append(a) or measured)
    assert prof.main(["smollm2-135m", "--reps", "1", "--n-past", str(N_PAST), "--compare-llamacpp"]) == 0
    assert calls and calls[0][-1] is True  # compare_llamacpp
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "llama.cpp" in line and "ours" in line)
    assert header.split()[:2] == ["k", "ours"]
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()[:1] in ([w] for w in WIDTHS)}
    assert list(rows) == WIDTHS
    for k in WIDTHS:
        assert [float(v) for v in rows[k]] == [measured["batch_factor"][k], measured["llama_cpp"]["batch_factor"][k]]
    assert prof.main(["smollm2-135m", "--json", "--compare-llamacpp"]) == 0
    assert json.loads(capsys.readouterr().out)["llama_cpp"]["batch_factor"].keys() == set(WIDTHS)


def test_call_stages_reused_and_built(measured):
    st = measured["call_stages"]
    assert set(st) == {"reused", "built"}
    assert st["reused"]["build_ms"] == 0.0  # a kept graph is refilled, never built again
    assert st["built"]["build_ms"] > 0.0
    assert all(v["compute_ms"] > 0 for v in st.values())


def test_bandwidth_probe():
    from specbound_cpp import _core

    assert _core.testing.read_bandwidth_gbs(1 << 22, 2, 2) > 0
    with pytest.raises(ValueError):
        _core.testing.read_bandwidth_gbs(100, 2)
