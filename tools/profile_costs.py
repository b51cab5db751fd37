"""Price the pieces of a decode step on this machine, in milliseconds and in
units of one transformer layer at batch 1 (decode-phase, batch-invariant
kernels): a layer, the per-call overhead, an exit check over the candidate
vocabulary, the full LM head, and how a batch of b tokens scales.

    python tools/profile_costs.py [MODEL ...] [--threads 2] [--n-past 128]

The exit-check vocabulary is the model's calibrated one when a profile exists,
otherwise the one calibration would size (a tenth of a layer's multiply-adds).
"""

import argparse
import json

from specbound_cpp import _core
from specbound_cpp.calibrate import exit_vocab_size, load_profile
from specbound_cpp.models import model_path


def profile(name, threads, n_past, reps):
    path = model_path(name, progress=False)
    s = _core.Session(path, 2048, 512, threads, threads, 0, False)
    L = s.n_layer
    prof = load_profile(path)
    cand = prof["candidates"] if prof else list(range(exit_vocab_size(s)))
    s.set_candidates(cand)
    # real keys/values in the cells the probes attend to (an unwritten cache
    # holds arbitrary bits, which can make the timings meaningless)
    text = "def quicksort(xs):\n    if len(xs) <= 1:\n        return xs\n" * 64
    s.eval_logits(s.tokenize(text.encode(), True, False)[: n_past + 16], 0, False)

    def t(b=1, enter=0, exit=L, logits=False, check=False, invariant=True):
        return s.time_forward(b, n_past, enter, exit, logits, check, reps, invariant)

    full = t()
    one = t(exit=1)
    layer = (full - one) / (L - 1)
    res = {
        "model": name, "n_layer": L, "n_past": n_past, "threads": threads,
        "n_candidates": len(cand), "candidates_from": "profile" if prof else "default size",
        "layer_ms": layer,
        "call_overhead_ms": one - layer,
        "exit_check_ms": t(enter=L - 2, exit=L - 1, check=True) - t(enter=L - 2, exit=L - 1),
        "lm_head_ms": t(logits=True) - full,
        "full_step_ms": t(logits=True),
    }
    res["exit_check_layers"] = res["exit_check_ms"] / layer
    res["lm_head_layers"] = res["lm_head_ms"] / layer
    # batch scaling: L layers + head, invariant kernels vs the prompt kernels
    for inv in (True, False):
        base = t(logits=True, invariant=inv)
        key = "batch_factor_invariant" if inv else "batch_factor_prompt_kernels"
        res[key] = {b: round(t(b=b, logits=True, invariant=inv) / base, 2) for b in (2, 4, 8)}
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-past", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    for m in a.models:
        r = profile(m, a.threads, a.n_past, a.reps)
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}), flush=True)


if __name__ == "__main__":
    main()
