"""The engine's parameter and result structs (`_core.GenerateParams`,
`SpecParams`, `GenerateResult`, `SpecStats`) built from and read into plain
Python values: one GenerateParams per request, passed whole to
`Session.begin` / `Session.generate`."""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

from . import _core

SPEC_FIELDS = ("alpha", "tau", "exit_layers", "d_max", "w_max", "ngram", "exit_decision", "tau_step", "batch_factors")
RESULT_FIELDS = ("tokens", "n_tokens", "finish_reason", "n_prompt", "n_prompt_reused", "prompt_ms", "decode_ms",
                 "rounds")  # fmt: skip
SPEC_STATS_FIELDS = (
    "rounds", "draft_tokens", "accepted_tokens", "emitted_tokens", "exit_checks", "layer_evals",
    "layer_evals_committed", "layer_evals_rejected", "stops_d_max", "stops_w_max", "stops_limit",
    "rounds_all_accepted", "exit_depth_hist", "ngram_rounds", "ngram_accepted", "lookup_key_drafts",
    "lookup_key_accepted", "lookup_key_rejected", "exit_vocab_added", "exit_rounds",
    "exit_accepted", "exit_tau", "draft_ms", "verify_ms",
)  # fmt: skip


def spec_params(values: Dict[str, Any], base: Optional[Any] = None) -> Any:
    """A `_core.SpecParams`: `base` (or the struct's defaults) with `values` set
    (any of SPEC_FIELDS). The engine checks it (`_core.check_spec_params`)."""
    p = _core.SpecParams()
    for name, v in (spec_dict(base) if base is not None else {}).items():
        setattr(p, name, v)
    for name, v in values.items():
        if name not in SPEC_FIELDS:
            raise TypeError(f"unknown SpecBound parameter {name!r}")
        if name == "exit_layers":
            v = [int(x) for x in v]
        elif name in ("exit_decision", "batch_factors"):
            v = [float(x) for x in v]
        setattr(p, name, v)
    return p


def spec_dict(p: Any) -> Dict[str, Any]:
    return {name: getattr(p, name) for name in SPEC_FIELDS}


def sampling_params(temperature: float = 0.0, top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05,
                    seed: int = 0, penalty_last_n: int = 64, repeat_penalty: float = 1.0,
                    frequency_penalty: float = 0.0, presence_penalty: float = 0.0) -> Any:  # fmt: skip
    """A `_core.SamplingParams` under llama-cpp-python's argument names."""
    s = _core.SamplingParams()
    s.temperature, s.top_k, s.top_p, s.min_p, s.seed = float(temperature), int(top_k), float(top_p), float(min_p), seed
    s.penalty_last_n, s.penalty_repeat = int(penalty_last_n), float(repeat_penalty)
    s.penalty_freq, s.penalty_present = float(frequency_penalty), float(presence_penalty)
    return s


def generate_params(max_tokens: int, sampling: Any = None, *, stop: Sequence[str] = (), specbound: bool = False,
                    spec: Any = None, keep_logits: bool = False, spec_gate: bool = False,
                    constraints: Any = None) -> Any:  # fmt: skip
    """A `_core.GenerateParams`. sampling: a SamplingParams (default: greedy);
    spec: the SpecParams used with specbound; constraints: a ConstraintParams."""
    g = _core.GenerateParams()
    g.max_tokens = int(max_tokens)
    g.sampling = sampling if sampling is not None else sampling_params()
    g.stop = list(stop)
    g.specbound = bool(specbound)
    if spec is not None:
        g.spec = spec
    g.keep_logits, g.spec_gate = bool(keep_logits), bool(spec_gate)
    if constraints is not None:
        g.constraints = constraints
    return g


def result_dict(r: Any) -> Dict[str, Any]:
    """A GenerateResult's fields as a dict (a snapshot of a live result)."""
    return {name: getattr(r, name) for name in RESULT_FIELDS}


def stats_dict(session: Any) -> Dict[str, Any]:
    """The last generation's SpecBound counters and its online gate's, as one dict."""
    st = session.spec_stats()
    d = {name: getattr(st, name) for name in SPEC_STATS_FIELDS}
    d.update(session.gate_stats())
    return d
