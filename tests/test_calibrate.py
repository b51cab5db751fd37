"""Calibration end to end on SmolLM2-135M: `python -m specbound_cpp.calibrate`
writes a profile keyed by the model file's sha256 into the cache, `Llama`
picks it up on its own, and whatever the profile says, the output stays the
full model's.

The cache is a temporary SPECBOUND_CACHE, so the user's profiles are neither
read nor overwritten; the model is passed by path (it lives in the real cache).
"""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import run_calibrate_quick


@pytest.fixture(scope="module")
def calibrated(smollm2_path, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return cache, run_calibrate_quick(smollm2_path, cache, timeout=600)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def test_profile_written_under_sha256(calibrated, smollm2_path):
    cache, proc = calibrated
    digest = _sha256(smollm2_path)
    path = cache / "profiles" / f"{digest}.json"
    assert path.is_file(), f"no profile at {path}; stdout: {proc.stdout[-500:]}"
    prof = json.loads(path.read_text())
    assert prof["sha256"] == digest and prof["n_layer"] == 30
    # a candidate vocabulary of valid, sorted, distinct ids
    cand = prof["candidates"]
    assert 256 <= len(cand) < 49152 and cand == sorted(set(cand)) and 0 <= cand[0] and cand[-1] < 49152
    p = prof["params"]
    assert p["exit_layers"] and all(0 < l < 30 for l in p["exit_layers"]) and p["d_max"] == max(p["exit_layers"])
    assert isinstance(prof["enabled"], bool)
    # the rule that switches speculation on
    from specbound_cpp.calibrate import ENABLE_MEASURED, ENABLE_PREDICTED

    expected = prof["measured_speedup"] >= ENABLE_MEASURED and prof["predicted_speedup"] >= ENABLE_PREDICTED
    assert prof["enabled"] == expected
    # the price of every width a round may verify, lookup rounds' 65 rows included
    assert sorted(map(int, prof["batch_factors"])) == [1, 2, 4, 8, 16, 32, 64]


def test_llama_uses_profile_and_stays_exact(calibrated, smollm2_path, monkeypatch):
    cache, _ = calibrated
    monkeypatch.setenv("SPECBOUND_CACHE", str(cache))
    from specbound_cpp import Llama
    from specbound_cpp.calibrate import load_profile

    prof = load_profile(smollm2_path)
    assert prof is not None
    kw = dict(n_ctx=512, n_threads=2, n_threads_batch=2, verbose=False)
    auto = Llama(smollm2_path, **kw)
    if prof["enabled"]:
        with_maps = bool(prof.get("exit_maps"))
        assert auto.specbound_source == ("profile + exit translators" if with_maps else "profile")
        assert sorted(auto._session.exit_maps) == (prof["exit_maps"]["layers"] if with_maps else [])
        assert {k: auto.specbound_params[k] for k in ("exit_layers", "d_max", "w_max")} == {
            k: prof["params"][k] for k in ("exit_layers", "d_max", "w_max")
        }
    else:  # early exit measured no gain: lookup drafts alone
        from specbound_cpp.specbound_setup import LOOKUP_ONLY_SOURCE

        assert auto.specbound_source == LOOKUP_ONLY_SOURCE and auto.specbound
        assert auto.specbound_params["exit_layers"] == [] and auto.specbound_params["ngram"] > 0
    # lookup rounds are priced by the profile's batch factors, one per width up to 64
    table = auto.specbound_params["batch_factors"]
    assert len(table) == 64 and table[0] == 1.0 and table[63] == pytest.approx(max(prof["batch_factors"].values()))
    # the profile's settings forced on, against plain decoding: same tokens
    forced = Llama(smollm2_path, **kw, **prof["params"])
    assert forced.specbound_source.startswith("profile") and forced.specbound_source.endswith("+ arguments")
    plain = Llama(smollm2_path, specbound=False, **kw)
    prompt = "def fibonacci(n):\n"
    a = forced(prompt, max_tokens=64, temperature=0.0)
    assert forced.last_stats["rounds"] > 0 and forced.last_stats["draft_tokens"] > 0
    b = plain(prompt, max_tokens=64, temperature=0.0)
    assert a["choices"][0]["text"] == b["choices"][0]["text"]
    c = auto(prompt, max_tokens=64, temperature=0.0)
    assert c["choices"][0]["text"] == b["choices"][0]["text"]


def test_profile_without_exit_gain_drafts_from_the_lookup(smollm2_path, tmp_path, monkeypatch):
    """A profile whose calibration timed no gain from early exit keeps the
    lookup drafts (it used to switch SpecBound off, lookup included); options
    passed explicitly still win, and the text is plain decoding's."""
    from specbound_cpp import Llama, calibrate
    from specbound_cpp.models import model_sha256
    from specbound_cpp.specbound_setup import LOOKUP_ONLY_SOURCE

    monkeypatch.setenv("SPECBOUND_CACHE", str(tmp_path))
    params = {"exit_layers": [27], "alpha": 0.5, "tau": 0.9, "w_max": 6, "d_max": 27}
    calibrate.save_profile({"version": calibrate.PROFILE_VERSION, "model": "smollm2", "sha256": model_sha256(smollm2_path),
                            "candidates": list(range(2048)), "enabled": False, "params": params,
                            "batch_factors": {"1": 1.0, "2": 1.2, "4": 1.6, "8": 2.6, "16": 5.0, "32": 9.5, "64": 17.0}})
    kw = dict(n_ctx=512, n_threads=2, n_threads_batch=2, verbose=False, spec_gate=False)
    llm = Llama(smollm2_path, **kw)
    assert llm.specbound_source == LOOKUP_ONLY_SOURCE
    assert llm.specbound_params["exit_layers"] == [] and llm.specbound_params["ngram"] > 0
    prompt = "a = [1, 2, 3, 4]\nb = [1, 2, 3, 4]\nc = [1, 2, 3, 4]\nd ="
    text = llm(prompt, max_tokens=32, temperature=0.0)["choices"][0]["text"]
    assert llm.last_stats["draft_tokens"] > 0 and llm.last_stats["exit_checks"] == 0
    plain = Llama(smollm2_path, specbound=False, **kw)
    assert text == plain(prompt, max_tokens=32, temperature=0.0)["choices"][0]["text"]
    explicit = Llama(smollm2_path, **kw, exit_layers=[27])
    assert explicit.specbound_params["exit_layers"] == [27] and explicit.specbound_source.endswith("+ arguments")
