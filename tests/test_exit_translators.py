"""Exit translators and the learned exit decision (issue 12, items 1-2).

- the exit head reads a mapped state: with a map that sends every state to one
  top-layer state, each position's exit logits are bitwise that state's logits
  at the candidates; a zero map changes nothing;
- the numpy features the calibration fits on are the engine's;
- the ridge fit recovers a known affine map, the logistic fit a known rule;
- SpecBound with translators and a learned decision emits exactly plain
  decoding's tokens: greedy, seeded sampling, penalties;
- a profile with translators puts them on the session; a profile whose
  translator file is gone still loads (a warning) and stays exact.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import GREEDY, N_THREADS, gen, n_gpu_layers

from specbound_cpp import _core, calibrate, exit_fit

PROMPT = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"


@pytest.fixture(scope="module")
def sess(make_session, smollm2_path):
    s = make_session(smollm2_path, n_ctx=512)
    s.set_candidates(list(range(2048)))
    return s


def _tokens(s, text=PROMPT):
    return s.tokenize(text.encode(), True, False)


def test_zero_map_changes_nothing(sess):
    toks, e = _tokens(sess), sess.n_embd
    sess.clear_exit_maps()
    sess.reset()
    plain = sess.exit_logits(toks, 0, [20, 25])
    sess.set_exit_map(25, np.zeros((1, e), np.float32), np.zeros((e, 1), np.float32), np.zeros(e, np.float32))
    assert sess.exit_maps == {25: 1}
    sess.reset()
    mapped = sess.exit_logits(toks, 0, [20, 25])
    sess.clear_exit_maps()
    assert np.array_equal(plain, mapped)


def test_exit_head_reads_the_mapped_state(sess):
    """down = -I, up = I, bias = h_L of one token: every state becomes that
    token's top-layer state, so each exit check gives its full logits."""
    toks, e, L = _tokens(sess), sess.n_embd, sess.n_layer
    sess.reset()
    top = sess.hidden_states(toks, 0, [L])[0]
    sess.reset()
    full = sess.eval_logits(toks, 0, True)
    i = len(toks) - 1
    eye = np.eye(e, dtype=np.float32)
    sess.set_exit_map(22, -eye, eye, np.ascontiguousarray(top[i]))
    sess.reset()
    z = sess.exit_logits(toks, 0, [18, 22])
    sess.clear_exit_maps()
    cand = np.array(sess.candidates)
    want = np.broadcast_to(full[i, cand], z[1].shape)
    if n_gpu_layers():
        # on a GPU the map's F32 matmuls may run there (ggml's scheduler offloads
        # ops on host weights for wide batches), where h + (-h) need not be 0
        # exactly: the head still reads the mapped state, to float tolerance
        np.testing.assert_allclose(z[1], want, rtol=1e-3, atol=1e-2)
    else:
        assert np.array_equal(z[1], want)
    assert not np.array_equal(z[0][0], z[0][1])  # layer 18 has no map: states differ per position


def test_exit_map_shape_and_layer_errors(sess):
    e = sess.n_embd
    ok = (np.zeros((4, e), np.float32), np.zeros((e, 4), np.float32), np.zeros(e, np.float32))
    with pytest.raises(ValueError):
        sess.set_exit_map(0, *ok)
    with pytest.raises(ValueError):
        sess.set_exit_map(sess.n_layer, *ok)
    with pytest.raises(ValueError):
        sess.set_exit_map(5, ok[0], np.zeros((e, 3), np.float32), ok[2])
    assert sess.exit_maps == {}


def test_features_match_the_engine():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 3, (6, 300)).astype(np.float32)
    z[5, 7] = z[5, 9] = z[5].max() + 1  # a tie at the top: margin 0
    prev = np.array([int(z[0].argmax()), 3, -1, 4, 5, 7])
    f = exit_fit.exit_features(z, 1.4, prev, 0.75)
    for i in range(len(z)):
        g, arg = _core.testing.exit_features(z[i].tolist(), 1.4, int(prev[i]), 0.75)
        assert arg == int(z[i].argmax())
        np.testing.assert_allclose(f[i], g, rtol=1e-4, atol=1e-4)
    assert f[0, 3] == 1.0 and f[5, 1] == 0.0


def test_ridge_recovers_an_affine_map():
    rng = np.random.default_rng(2)
    n, e = 4000, 24
    x = rng.normal(size=(n, e))
    a = rng.normal(scale=0.3, size=(e, e))
    y = x + x @ a + 0.5
    down, up, bias = exit_fit.fit_exit_map(x, y, rank=e, ridge=1e-6)
    np.testing.assert_allclose(x + (up @ (down @ x.T)).T + bias, y, atol=1e-3)
    down, up, bias = exit_fit.fit_exit_map(x, y, rank=4, ridge=1e-6)  # reduced rank: shapes, and closer than none
    assert down.shape == (4, e) and up.shape == (e, 4)
    assert np.abs(x + (up @ (down @ x.T)).T + bias - y).mean() < np.abs(x + 0.5 - y).mean()


def test_logistic_recovers_a_rule():
    rng = np.random.default_rng(3)
    f = rng.normal(size=(5000, exit_fit.N_FEATURES))
    y = (rng.random(5000) < 1 / (1 + np.exp(-(0.5 + 2 * f[:, 1] - f[:, 2])))).astype(float)
    w = exit_fit.fit_logistic(f, y)
    np.testing.assert_allclose(w, [0.5, 0, 2, -1, 0, 0], atol=0.2)


def test_exit_decision_length_checked(sess):
    p = _core.SpecParams()
    p.exit_layers, p.d_max, p.exit_decision = [20], 20, [0.1, 0.2]
    with pytest.raises(ValueError, match="exit_decision"):
        _core.check_spec_params(p, sess.n_layer)
    p.exit_decision = [0.0] * 5 + [float("nan")]
    with pytest.raises(ValueError, match="finite"):
        _core.check_spec_params(p, sess.n_layer)


@pytest.fixture(scope="module")
def fitted(sess):
    """Translators at two deep layers fitted on the model's own states, and a
    decision that trusts a confident, agreeing head."""
    layers = [24, 28]
    texts = [_tokens(sess, t) for t in calibrate.PROMPTS[:3]] + calibrate._fit_text(sess, 800)
    states = calibrate._layer_states(sess, texts, layers)
    maps = calibrate._fit_maps(states, range(len(states)), layers, [])
    decision = [-4.0, 2.0, 0.3, -0.5, 1.0, 2.0]  # bias, log conf, margin, entropy, agrees, depth
    return maps, {"exit_layers": layers, "d_max": 28, "alpha": 0.0, "tau": 0.5, "w_max": 4,
                  "exit_decision": decision, "ngram": 0}  # fmt: skip


def _with_maps(s, maps):
    calibrate.set_exit_maps(s, maps)
    assert s.exit_maps == {l: m[0].shape[0] for l, m in maps.items()}


@pytest.mark.parametrize("g, penalties", [
    (GREEDY, {}),
    (dict(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, seed=7), {}),
    (GREEDY, dict(penalty_last_n=64, repeat_penalty=1.3, frequency_penalty=0.2, presence_penalty=0.1)),
])  # fmt: skip
def test_specbound_with_translators_is_exact(sess, fitted, g, penalties):
    maps, spec = fitted
    prompt = _tokens(sess)
    sess.clear_exit_maps()
    sess.reset()
    plain = gen(sess, prompt, 80, g, **penalties)["tokens"]
    _with_maps(sess, maps)
    sess.reset()
    got = gen(sess, prompt, 80, g, specbound=True, spec=spec, **penalties)["tokens"]
    st = sess.spec_stats()
    sess.clear_exit_maps()
    assert got == plain
    assert st.exit_checks > 0 and st.draft_tokens > 0
    if g is GREEDY and not penalties:
        assert st.accepted_tokens > 0


def test_profile_translators_load_and_stay_exact(smollm2_path, fitted, tmp_path, monkeypatch, capfd):
    from specbound_cpp import Llama
    from specbound_cpp.models import model_sha256

    monkeypatch.setenv("SPECBOUND_CACHE", str(tmp_path))
    maps, spec = fitted
    prof = {"version": calibrate.PROFILE_VERSION, "model": "smollm2", "sha256": model_sha256(smollm2_path),
            "candidates": list(range(2048)), "enabled": True, "params": {k: v for k, v in spec.items() if k != "ngram"},
            "exit_map_arrays": maps}  # fmt: skip
    calibrate.save_profile(prof)
    saved = json.loads(calibrate.profile_path(prof["sha256"]).read_text())
    assert saved["exit_maps"]["layers"] == [24, 28] and "exit_map_arrays" not in saved

    def llama():
        return Llama(smollm2_path, n_ctx=512, n_threads=N_THREADS, n_threads_batch=N_THREADS, verbose=False,
                     spec_gate=False)  # fmt: skip

    llm = llama()
    assert llm._session.exit_maps == {24: maps[24][0].shape[0], 28: maps[28][0].shape[0]}
    assert "exit translators" in llm.specbound_source
    assert list(llm._spec.exit_decision) == pytest.approx(spec["exit_decision"])
    spec_text = llm(PROMPT, max_tokens=48, temperature=0)["choices"][0]["text"]
    assert llm.last_stats["exit_checks"] > 0

    calibrate.exit_maps_path(prof["sha256"]).unlink()
    capfd.readouterr()
    llm2 = llama()
    assert llm2._session.exit_maps == {}
    assert "translators unreadable" in capfd.readouterr().err
    llm2.specbound = False
    assert llm2(PROMPT, max_tokens=48, temperature=0)["choices"][0]["text"] == spec_text


def test_tau_step_checked(sess):
    for bad in (-0.01, 0.2, float("nan")):
        p = _core.SpecParams()
        p.tau_step = bad
        with pytest.raises(ValueError, match="tau_step"):
            _core.check_spec_params(p, sess.n_layer)


@pytest.mark.parametrize("tau_step", [0.0, 0.02])
def test_threshold_adapts_to_acceptance(sess, tau_step):
    """A decision that always exits at layer 3, where the head is nearly always
    wrong: each round is accepted below tau, so the threshold climbs by
    tau_step a round to tau + 0.1 (with tau_step 0 it stays); the output is
    plain decoding's either way."""
    spec = {"exit_layers": [3], "d_max": 3, "alpha": 0.0, "tau": 0.5, "w_max": 3, "ngram": 0,
            "exit_decision": [10.0, 0, 0, 0, 0, 0], "tau_step": tau_step}  # fmt: skip
    prompt = _tokens(sess)
    sess.clear_exit_maps()
    sess.reset()
    plain = gen(sess, prompt, 40)["tokens"]
    sess.reset()
    got = gen(sess, prompt, 40, specbound=True, spec=spec)["tokens"]
    st = sess.spec_stats()
    assert got == plain
    assert st.exit_rounds >= 10 and st.exit_accepted < st.draft_tokens / 2
    assert st.exit_tau == pytest.approx(0.5 + (0.1 if tau_step else 0.0), abs=1e-6)
