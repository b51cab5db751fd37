"""SpecBound's set-up for one `Llama`: its parameters (engine defaults, then
the calibrated profile of the model file, then the caller's keyword
arguments), its exit-head vocabulary, and whether it runs at all (the
profile's verdict, then the run-time invariance check)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set

import numpy as np

from . import _core
from .params import SPEC_FIELDS, spec_dict, spec_params

LOOKUP_ONLY_SOURCE = "profile: lookup drafts only (early exit measured no gain here)"
DEFAULT_NGRAM = 24  # longest key of the lookup drafts (Llama(ngram=0) turns them off)
MAX_LOOKUP_ROWS = 65  # a lookup round's widest pass: 64 drafts and the token before them (cpp/speculation/pricing.h: kMaxDraft)


@dataclass
class SpecBoundSetup:
    spec: Optional[_core.SpecParams]  # the checked SpecParams of every speculative generation
    candidates: Set[int]  # exit-head vocabulary (each prompt's tokens are added)
    source: str  # where the parameters came from, or why speculation is off
    active: bool  # speculate (the caller may still switch it off: Llama.specbound)
    invariance: Optional[Dict[str, Any]] = field(default=None)

    @property
    def params(self) -> Dict[str, Any]:
        return spec_dict(self.spec)


def _from_profile(setup: SpecBoundSetup, values: Dict[str, Any], profile: Optional[dict], overrides: dict) -> None:
    if not profile:
        return
    setup.candidates = set(profile["candidates"])
    if profile.get("batch_factors"):  # what a pass of w rows costs here: the price of a lookup round's width
        values["batch_factors"] = batch_factor_table(profile["batch_factors"])
    if profile.get("enabled"):
        values.update(profile["params"])
        setup.source = "profile"
    elif not overrides:
        # Calibration timed early-exit drafting (its settings, without lookup
        # drafts) and measured no gain here: drafts from the lookup alone, each
        # request still gated against plain decoding. Switching speculation off
        # altogether lost the lookup's gain: on Qwen2.5-Coder-0.5B the lookup
        # alone made code edits 1.24x and multi-turn chat 1.87x faster than
        # plain decoding (docs/bench/pairs-2026-12-07).
        values.update(exit_layers=[], d_max=0)
        setup.source = LOOKUP_ONLY_SOURCE
    else:
        # speculation asked for explicitly: the profile gives its exit vocabulary
        setup.source = "profile vocabulary"


def batch_factor_table(points: Dict[str, float]) -> List[float]:
    """The profile's batch factors {width: factor} as the engine's table
    (index w - 1) for widths 1 .. the widest measured: linear between the
    widths measured, at least 1 and never falling with the width (a dip is
    noise: a pass of more rows never costs less). Past its end the engine
    extends the line through the last two entries."""
    xs = sorted(int(w) for w in points)
    table = [float(np.interp(w, xs, [points[str(x)] for x in xs])) for w in range(1, xs[-1] + 1)]
    table[0] = 1.0
    return [float(f) for f in np.maximum.accumulate(np.maximum(table, 1.0))]


def setup_specbound(session, path: str, n_vocab: int, specbound: bool, overrides: Dict[str, Any]) -> SpecBoundSetup:
    """The parameters, checked by the engine (ValueError); no invariance check yet."""
    from .profile_store import load_profile

    profile = load_profile(path) if specbound else None
    values = spec_dict(session.default_spec)
    # n-gram lookup drafts: on unless asked otherwise (quick bench: 1.2-1.6x over
    # early exit alone on long-form text, equal within noise on HumanEval)
    values["ngram"] = DEFAULT_NGRAM
    setup = SpecBoundSetup(None, set(range(min(n_vocab, 1024))), "defaults", bool(specbound))
    _from_profile(setup, values, profile, overrides)
    if profile and profile.get("enabled"):
        _set_exit_maps(setup, session, profile)
    values.update(overrides)
    if overrides:
        setup.source += " + arguments"
    if "exit_layers" in overrides and "d_max" not in overrides:
        values["d_max"] = max(values["exit_layers"], default=0)
    setup.spec = spec_params({k: values[k] for k in SPEC_FIELDS})  # each converted to its field's type
    _core.check_spec_params(setup.spec, session.n_layer)
    return setup


def _set_exit_maps(setup: SpecBoundSetup, session, profile: dict) -> None:
    """The profile's exit translators on the session's exit head. Without them
    (file gone) drafting is plainer, never wrong: a warning, not an error."""
    from .profile_store import load_exit_maps, set_exit_maps

    try:
        maps = load_exit_maps(profile)
    except ValueError as e:
        print(f"specbound_cpp: {e}; drafting without them", file=sys.stderr)
        setup.source += " (exit translators missing)"
        maps = None
    set_exit_maps(session, maps)
    if maps:
        setup.source += " + exit translators"


def check_invariance(setup: SpecBoundSetup, session, path: str, n_threads: int, explicit: bool,
                     verbose: bool) -> None:  # fmt: skip
    """Speculate only where batched decoding is bitwise single-token decoding
    on these devices (specbound_cpp.invariance; cached per model and device).
    explicit (specbound=True): RuntimeError where it is not."""
    from .invariance import describe, invariance_verdict

    if not setup.active:
        return  # plain decoding: nothing to check, nothing to pay
    lookup_rows = MAX_LOOKUP_ROWS if setup.spec.ngram > 0 else 0
    setup.invariance = invariance_verdict(session, path, n_threads, setup.spec.w_max, lookup_rows)
    if not setup.invariance["ok"] and _may_retry_by_single_columns(session):
        # off the CPU, chunks of several columns are the cheap setting; where they
        # are not invariant, single columns may be (each as a single-token pass)
        wide = session.device_columns
        session.device_columns = 1
        retry = invariance_verdict(session, path, n_threads, setup.spec.w_max, lookup_rows)
        if retry["ok"]:
            setup.invariance = retry
        else:
            session.device_columns = wide
    if verbose:
        how = "cached verdict" if setup.invariance["cached"] else f"{setup.invariance['seconds']:.2f} s"
        print(f"specbound_cpp: {describe(setup.invariance)} [{how}]", file=sys.stderr)
    if not setup.invariance["ok"]:
        setup.active = False
        setup.source = describe(setup.invariance)
        if explicit:
            raise RuntimeError(f"specbound=True, but SpecBound would not be exact here: {setup.source}. "
                               "Leave specbound unset to fall back to plain decoding, or pass specbound=False.")


def _may_retry_by_single_columns(session) -> bool:
    """Weights off the CPU, chunks wider than one column, and no
    SPECBOUND_DEVICE_COLUMNS chosen by the user."""
    return session.decodes_off_cpu and session.device_columns > 1 and not os.environ.get("SPECBOUND_DEVICE_COLUMNS")
