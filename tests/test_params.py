"""The parameter structs across the binding, without a model: defaults,
read-write fields, and the one check of SpecBound parameters (in C++)."""

from __future__ import annotations

import math

import pytest

from specbound_cpp import _core
from specbound_cpp.params import generate_params, sampling_params, spec_dict, spec_params

GOOD = dict(alpha=0.5, tau=0.6, exit_layers=[4, 8], d_max=8, w_max=6, ngram=3)


def test_generate_params_fields():
    g = generate_params(32, sampling_params(temperature=0.7, top_k=5, seed=(1 << 64) - 1, repeat_penalty=1.2),
                        stop=["\n"], specbound=True, spec=spec_params(GOOD), keep_logits=True)  # fmt: skip
    assert (g.max_tokens, g.stop, g.specbound, g.keep_logits, g.spec_gate) == (32, ["\n"], True, True, False)
    s = g.sampling
    assert (s.top_k, s.seed, s.penalty_last_n, s.penalty_freq) == (5, (1 << 64) - 1, 64, 0.0)
    assert math.isclose(s.temperature, 0.7, rel_tol=1e-6) and math.isclose(s.penalty_repeat, 1.2, rel_tol=1e-6)
    assert spec_dict(g.spec)["exit_layers"] == [4, 8] and g.spec.ngram == 3
    g.sampling.top_k = 9  # nested structs are edited in place
    assert g.sampling.top_k == 9
    c = g.constraints
    assert (c.grammar, c.grammar_root, c.logit_bias, c.mirostat) == (None, "root", [], 0)


def test_spec_params_checked_once_in_cpp():
    _core.check_spec_params(spec_params(GOOD), 12)
    _core.check_spec_params(spec_params(dict(GOOD, exit_layers=[], d_max=0, w_max=0, ngram=0)), 12)
    bad = [
        dict(exit_layers=[8, 4]), dict(exit_layers=[4, 4]), dict(exit_layers=[0, 4]), dict(exit_layers=[4, 12]),
        dict(d_max=12), dict(d_max=-1), dict(tau=0.0), dict(tau=1.0001), dict(tau=math.nan), dict(alpha=-0.1),
        dict(w_max=-1), dict(ngram=-1),
    ]  # fmt: skip
    for change in bad:
        with pytest.raises(ValueError):
            _core.check_spec_params(spec_params(dict(GOOD, **change)), 12)
    with pytest.raises(TypeError):
        spec_params(dict(GOOD, beta=1))


def test_results_are_read_only():
    for cls, field in ((_core.GenerateResult, "tokens"), (_core.SpecStats, "rounds")):
        assert isinstance(getattr(cls, field), property) or hasattr(cls, field)
    with pytest.raises(TypeError):
        _core.GenerateResult()  # made by the engine only
