"""Held-out precision/recall of exit decisions per layer (annealed confidence vs
the learned decision), with and without exit translators, built as calibration
builds them:  python tools/exit_decision_quality.py MODEL  (a few minutes)"""

import sys

import numpy as np

from specbound_cpp import _core, exit_checks
from specbound_cpp.calibrate import PROMPTS
from specbound_cpp.models import model_path


def precision_at_recall(score, ok, recall=0.5):
    """Precision of the exits when the top `recall` of the right tokens exit."""
    exits = score >= np.quantile(score[ok], 1 - recall)
    return ok[exits].mean()


def recall_at_precision(score, ok, precision=0.9):
    """The largest share of the right tokens that can exit at this precision."""
    best = 0.0
    for threshold in np.unique(np.quantile(score, np.linspace(0, 1, 200))):
        exits = score >= threshold
        if exits.any() and ok[exits].mean() >= precision:
            best = max(best, exits[ok].mean() if ok.any() else 0)
    return best


def main(name: str) -> None:
    s = _core.Session(str(model_path(name)), 2048, 512, 2, 2, 0, False)
    L = s.n_layer
    seqs, _ = exit_checks.own_text(s, PROMPTS, 112, lambda m: None)
    cand = exit_checks.exit_vocabulary(s, seqs)
    s.set_candidates(cand)
    layers = list(range(max(1, L // 2), L))
    checks, _ = exit_checks.checks_of_both_heads(s, seqs, cand, layers, exit_checks.FIT_TEXT_TOKENS, lambda m: None)
    for translated in (False, True):
        c = checks[translated]
        for frac in (0.6, 0.75, 0.9):
            l = int(round(frac * L))
            li = layers.index(l)
            ok, learned, annealed = c.ok[li], c.learned([l])[0][li], c.conf[0.5][li]
            print(f"{name} translators={translated} layer {l}/{L} agree {ok.mean():.2f} | annealed "
                  f"P@R.5 {precision_at_recall(annealed, ok):.2f} R@P.9 {recall_at_precision(annealed, ok):.2f} | "
                  f"learned P@R.5 {precision_at_recall(learned, ok):.2f} R@P.9 {recall_at_precision(learned, ok):.2f}",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1])
