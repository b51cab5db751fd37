"""Held-out precision/recall of exit decisions per layer (annealed confidence vs
the learned decision), with and without exit translators, built as calibration
builds them:  python tools/exit_decision_quality.py MODEL  (a few minutes)"""
import sys, numpy as np
from specbound_cpp import _core, calibrate as C
from specbound_cpp.models import model_path
name = sys.argv[1]
s = _core.Session(str(model_path(name)), 2048, 512, 2, 2, 0, False)
L = s.n_layer
seqs, _ = C._own_text(s, C.PROMPTS, 112, lambda m: None)
cand = C._exit_vocabulary(s, seqs); s.set_candidates(cand)
layers = list(range(max(1, L // 2), L))
checks, _ = C._exit_checks(s, seqs, cand, layers, C.FIT_TEXT_TOKENS, lambda m: None)
def prec_at_recall(score, ok, r=0.5):
    thr = np.quantile(score[ok], 1 - r)  # exits the top r of right ones
    ex = score >= thr
    return ok[ex].mean()
def recall_at_prec(score, ok, p=0.9):
    best = 0.0
    for thr in np.unique(np.quantile(score, np.linspace(0, 1, 200))):
        ex = score >= thr
        if ex.any() and ok[ex].mean() >= p:
            best = max(best, ex[ok].mean() if ok.any() else 0)
    return best
for tr in (False, True):
    c = checks[tr]
    for frac in (0.6, 0.75, 0.9):
        l = int(round(frac * L)); li = layers.index(l)
        ok = c.ok[li]
        learned = c.learned([l])[0][li]
        ann = c.conf[0.5][li]
        print(f"{name} translators={tr} layer {l}/{L} agree {ok.mean():.2f} | annealed P@R.5 {prec_at_recall(ann, ok):.2f} R@P.9 {recall_at_prec(ann, ok):.2f} | learned P@R.5 {prec_at_recall(learned, ok):.2f} R@P.9 {recall_at_prec(learned, ok):.2f}", flush=True)
