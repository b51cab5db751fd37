"""The fit: predicted speedup of SpecBound settings on the model's own text.

Calibration's step 4 (see `calibrate`): SpecBound rounds replayed over the
exit-check data (`exit_checks.ExitChecks`) with a cost model in layer units
(the batch factors measured by `costs`), over a grid of exit layers,
annealing, tau and w_max, for each exit head, then with a learned exit
decision on the best exit sets.
"""

from __future__ import annotations

import itertools

import numpy as np

from . import exit_fit
from .costs import layer_macs
from .exit_checks import ALPHAS, ExitChecks

TAUS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
W_MAXES = (2, 3, 4, 6, 8)
CALL_COST = 0.3  # graph build + dispatch per forward call, in layers (measured ~0.1-0.3 ms)


def beta_at(factors: dict[int, float], b: int) -> float:
    xs = sorted(factors)
    return float(np.interp(b, xs, [factors[x] for x in xs]))


def simulate(draft_ok, exit_conf, layers, L, cfg, costs):
    """Cost per emitted token (layer units) of SpecBound with cfg, replayed on
    the model's own text.

    draft_ok[li, j]: the exit head at layers[li] predicts token j correctly;
    exit_conf[li, j]: what cfg's exit decision compares with tau there. A
    round drafts from position t while tokens exit; its deep pass takes every
    token from its depth to the top; the leading correct drafts plus one token
    are emitted.
    """
    exit_layers = cfg["exit_layers"]
    exit_idx = [layers.index(l) for l in exit_layers]
    passes = exit_conf[exit_idx] >= cfg["tau"]  # [exit layer, position]
    first = np.where(passes.any(0), passes.argmax(0), -1)  # where each token exits (-1: never)
    ok = draft_ok[exit_idx][np.maximum(first, 0), np.arange(len(first))].tolist()
    first = first.tolist()
    head, check, beta, call = costs["head"], costs["check"], costs["beta"], costs["call"]
    n, w_max = len(first), cfg["w_max"]
    t, cost, emitted = 0, 0.0, 0
    while t < n:
        depths, drafted_ok, work = [], [], 0.0
        j = t
        while len(drafted_ok) < w_max and j < n:
            f = first[j]
            work += (len(exit_idx) if f < 0 else f + 1) * (check + call)
            if f < 0:  # difficult token: drafting stops at d_max
                depths.append(cfg["d_max"])
                break
            depths.append(exit_layers[f])
            drafted_ok.append(ok[j])
            j += 1
        if len(depths) == len(drafted_ok):  # stopped at w_max: the last draft enters at layer 0
            depths.append(0)
        accepted = next((i for i, a in enumerate(drafted_ok) if not a), len(drafted_ok))
        # layers [ds[c-1], ds[c]) run c tokens
        ds = sorted(depths) + [L]
        work += sum(depths) + sum(beta[c] * (ds[c] - ds[c - 1]) for c in range(1, len(ds)))
        work += beta[len(depths)] * head + call
        cost += work
        emitted += accepted + 1
        t += accepted + 1
    return cost / max(1, emitted)


def exit_layer_sets(layers: list[int], draft_ok: np.ndarray) -> list[list[int]]:
    """One to three exit layers, each agreeing on >= 30% of tokens, at most 6 apart."""
    deep = [l for l in layers if draft_ok[layers.index(l)].mean() >= 0.3]
    return [list(c) for k in (1, 2, 3) for c in itertools.combinations(deep, k) if c[-1] - c[0] <= 6]


N_LEARNED_SETS = 4  # exit-layer sets (best first by the annealed grid) given a learned decision


def layer_unit_costs(s, n_cand: int, factors: dict, maps: bool) -> dict:
    """The simulation's costs in layer units; an exit translator adds its two
    rank-r products to every check."""
    rank = min(exit_fit.MAP_RANK, s.n_embd) if maps else 0
    return {
        "head": s.n_vocab * s.n_embd / layer_macs(s),
        "check": (n_cand * s.n_embd + 2 * rank * s.n_embd) / layer_macs(s),
        "beta": [beta_at(factors, max(1, b)) for b in range(max(W_MAXES) + 2)],  # by batch width
        "call": CALL_COST,
    }


def simulate_grid(s, checks: ExitChecks, n_cand: int, factors: dict, maps: bool) -> list[tuple[float, dict]]:
    """Step 4: predicted speedup of every setting of the grid for one exit
    head (with or without translators), best first: exit sets x annealing x
    tau x w_max, then a learned exit decision on the best few exit sets."""
    costs, layers = layer_unit_costs(s, n_cand, factors, maps), checks.layers
    plain_cost = s.n_layer + costs["head"] + costs["call"]
    results = []
    for ex, a, tau, w in itertools.product(exit_layer_sets(layers, checks.ok), ALPHAS, TAUS, W_MAXES):
        cfg = {"exit_layers": ex, "alpha": a, "tau": tau, "w_max": w, "d_max": ex[-1], "exit_maps": maps}
        results.append((plain_cost / simulate(checks.ok, checks.conf[a], layers, s.n_layer, cfg, costs), cfg))
    results.sort(key=lambda r: -r[0])
    sets = list(dict.fromkeys(tuple(cfg["exit_layers"]) for _, cfg in results))[:N_LEARNED_SETS]
    for ex in map(list, sets):
        prob, weights = checks.learned(ex)
        for tau, w in itertools.product(TAUS, W_MAXES):
            cfg = {"exit_layers": ex, "alpha": 0.0, "tau": tau, "w_max": w, "d_max": ex[-1], "exit_maps": maps,
                   "exit_decision": [round(float(x), 6) for x in weights]}  # fmt: skip
            results.append((plain_cost / simulate(checks.ok, prob, layers, s.n_layer, cfg, costs), cfg))
    results.sort(key=lambda r: -r[0])
    return results
