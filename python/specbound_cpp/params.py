"""The engine's parameter and result structs (`_core.GenerateParams`,
`SpecParams`, `GenerateResult`, `SpecStats`) built from and read into plain
Python values: one GenerateParams per request, passed whole to
`Session.begin` / `Session.generate`.

The field names come from the C++ structs' field lists (SB_SPEC_PARAMS,
SB_SPEC_STATS in cpp/speculation/params.h, SB_GENERATE_RESULT in
cpp/decode/params.h), through the binding's `fields` tuples: a field is
declared once, there."""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Sequence

from . import _core

SPEC_FIELDS: tuple[str, ...] = tuple(_core.SpecParams.fields)
RESULT_FIELDS: tuple[str, ...] = tuple(_core.GenerateResult.fields)
SPEC_STATS_FIELDS: tuple[str, ...] = tuple(_core.SpecStats.fields)

# a SpecParams value from a plain Python one, by the field's C++ type as the
# list writes it (SpecParams.field_types): numbers from JSON profiles or user
# arguments may come as the other kind (8.0 for 8)
CONVERT_BY_CPP_TYPE: Dict[str, Callable[[Any], Any]] = {
    "float": float,
    "int": int,
    "std::vector<int>": lambda v: [int(x) for x in v],
    "std::vector<float>": lambda v: [float(x) for x in v],
}
SPEC_CONVERT: Dict[str, Callable[[Any], Any]] = {
    name: CONVERT_BY_CPP_TYPE[_core.SpecParams.field_types[name]] for name in SPEC_FIELDS
}


def spec_params(values: Mapping[str, Any], base: Optional[_core.SpecParams] = None) -> _core.SpecParams:
    """A `_core.SpecParams`: `base` (or the struct's defaults) with `values` set
    (any of SPEC_FIELDS, converted to the field's type). The engine checks it
    (`_core.check_spec_params`)."""
    p = _core.SpecParams()
    for name, v in (spec_dict(base) if base is not None else {}).items():
        setattr(p, name, v)
    for name, v in values.items():
        if name not in SPEC_FIELDS:
            raise TypeError(f"unknown SpecBound parameter {name!r}")
        setattr(p, name, SPEC_CONVERT[name](v))
    return p


def spec_dict(p: _core.SpecParams) -> Dict[str, Any]:
    return {name: getattr(p, name) for name in SPEC_FIELDS}


def sampling_params(temperature: float = 0.0, top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05,
                    seed: int = 0, penalty_last_n: int = 64, repeat_penalty: float = 1.0,
                    frequency_penalty: float = 0.0, presence_penalty: float = 0.0) -> _core.SamplingParams:  # fmt: skip
    """A `_core.SamplingParams` under llama-cpp-python's argument names."""
    s = _core.SamplingParams()
    s.temperature, s.top_k, s.top_p, s.min_p, s.seed = float(temperature), int(top_k), float(top_p), float(min_p), seed
    s.penalty_last_n, s.penalty_repeat = int(penalty_last_n), float(repeat_penalty)
    s.penalty_freq, s.penalty_present = float(frequency_penalty), float(presence_penalty)
    return s


def generate_params(max_tokens: int, sampling: Optional[_core.SamplingParams] = None, *, stop: Sequence[str] = (),
                    specbound: bool = False, spec: Optional[_core.SpecParams] = None, keep_logits: bool = False,
                    spec_gate: bool = False,
                    constraints: Optional[_core.ConstraintParams] = None) -> _core.GenerateParams:  # fmt: skip
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


def result_dict(r: _core.GenerateResult) -> Dict[str, Any]:
    """A GenerateResult's fields as a dict (a snapshot of a live result)."""
    return {name: getattr(r, name) for name in RESULT_FIELDS}


def stats_dict(session: _core.Session) -> Dict[str, Any]:
    """The last generation's SpecBound counters and its online gate's, as one dict."""
    st = session.spec_stats()
    d = {name: getattr(st, name) for name in SPEC_STATS_FIELDS}
    d.update(session.gate_stats())
    return d
