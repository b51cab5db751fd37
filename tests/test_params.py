"""The parameter structs across the binding, without a model: defaults,
read-write fields, and the one check of SpecBound parameters (in C++)."""

from __future__ import annotations

import math

import pytest

from specbound_cpp import _core
from specbound_cpp.params import (RESULT_FIELDS, SPEC_FIELDS, SPEC_STATS_FIELDS, generate_params, sampling_params,
                                  spec_dict, spec_params)  # fmt: skip

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


def test_field_names_come_from_the_cpp_field_lists():
    # declared once in C++ (SB_SPEC_PARAMS, SB_SPEC_STATS, SB_GENERATE_RESULT): each name is bound, in the list's order
    assert SPEC_FIELDS == _core.SpecParams.fields and set(_core.SpecParams.field_types) == set(SPEC_FIELDS)
    assert SPEC_FIELDS[:3] == ("alpha", "tau", "exit_layers") and "batch_factors" in SPEC_FIELDS
    defaults = _core.SpecParams()
    assert spec_dict(defaults) == {name: getattr(defaults, name) for name in SPEC_FIELDS}
    assert (defaults.alpha, defaults.w_max, defaults.exit_layers, defaults.tau_step) == (0.5, 6, [], 0.0)
    assert RESULT_FIELDS[:2] == ("tokens", "finish_reason") and RESULT_FIELDS[-1] == "n_tokens"
    assert "logits" not in RESULT_FIELDS  # read through Session.result_logits
    assert SPEC_STATS_FIELDS == _core.SpecStats.fields and SPEC_STATS_FIELDS[-2:] == ("draft_ms", "verify_ms")
    for cls, names in ((_core.GenerateResult, RESULT_FIELDS), (_core.SpecStats, SPEC_STATS_FIELDS)):
        assert all(isinstance(getattr(cls, n), property) or hasattr(cls, n) for n in names)


def test_spec_params_convert_each_value_to_its_field_type():
    p = spec_params(dict(alpha=1, d_max=8.0, w_max=True, exit_layers=(4.0, 8), batch_factors=[1, 2], tau_step=0))
    assert (type(p.alpha), type(p.d_max), type(p.tau_step)) == (float, int, float)
    assert (p.d_max, p.w_max, p.exit_layers, p.batch_factors) == (8, 1, [4, 8], [1.0, 2.0])


def test_each_field_rule_names_its_field():
    n_exit_weights = 1 + len(_core.testing.exit_features([1.0, 2.0], 1.0, 0, 0.5)[0])
    longest_key = max(_core.testing.NgramPool.key_lengths)
    _core.check_spec_params(spec_params(dict(GOOD, ngram=longest_key, exit_decision=[0.5] * n_exit_weights)), 12)
    bad = [("alpha", -1.0), ("tau", math.nan), ("w_max", -1), ("ngram", longest_key + 1), ("tau_step", 0.2),
           ("exit_decision", [0.5] * (n_exit_weights - 1)), ("exit_decision", [math.inf] * n_exit_weights),
           ("batch_factors", [1.0, 0.0]), ("batch_factors", [math.nan])]  # fmt: skip
    for name, value in bad:
        with pytest.raises(ValueError, match=name):
            _core.check_spec_params(spec_params(dict(GOOD, **{name: value})), 12)
    with pytest.raises(ValueError, match="exit_layers"):  # against the model: in check_spec_params itself
        _core.check_spec_params(spec_params(dict(GOOD, exit_layers=[4, 12])), 12)
