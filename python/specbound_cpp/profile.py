"""Price the pieces of a decode step on this machine.

    python -m specbound_cpp.profile MODEL [--json] [--threads 2] [--n-past 128]

Prints ms of one transformer layer, of an exit check over the candidate
vocabulary and of the LM head (decode phase, batch-invariant kernels), the
decode batch factor (time of a batch of k tokens / one token, full depth plus
LM head) for k = 1, 2, 4, 8, 16, the kernel each weight type uses, and the
memory floor: the weights one token reads over this machine's read bandwidth.
With --compare-ggml the batch factors are also measured with our kernels
switched off (ggml's vec_dot path), interleaved in the same run.

MODEL is a registry name or a GGUF path. Calibration prices speculation with
the same batch factors (`batch_factors`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import contextmanager

BATCH_SIZES = (1, 2, 4, 8, 16)
_WARM_TEXT = "def quicksort(xs):\n    if len(xs) <= 1:\n        return xs\n" * 64


@contextmanager
def _kernels_env(value: str | None):
    """SPECBOUND_KERNELS for the sessions built inside (read when a model loads)."""
    old = os.environ.get("SPECBOUND_KERNELS")
    if value is None:
        os.environ.pop("SPECBOUND_KERNELS", None)
    else:
        os.environ["SPECBOUND_KERNELS"] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SPECBOUND_KERNELS", None)
        else:
            os.environ["SPECBOUND_KERNELS"] = old


def open_session(path: str, threads: int, n_past: int, ggml_kernels: bool = False):
    """A session with real keys/values in the first n_past + 16 cells (an unwritten
    cache holds arbitrary bits, which can make timings meaningless)."""
    from specbound_cpp import _core

    with _kernels_env("ggml" if ggml_kernels else None):
        s = _core.Session(path, max(2048, n_past + 64), 512, threads, threads, 0, False)
    s.eval_logits(s.tokenize(_WARM_TEXT.encode(), True, False)[: n_past + 16], 0, False)
    return s


def batch_factors(sessions: dict, n_past: int, reps: int, sizes=BATCH_SIZES) -> dict[str, dict[str, float]]:
    """Best-of-reps time of a decode batch of k full-depth tokens with logits,
    relative to one token, per session; sessions are timed interleaved."""
    best = {name: {k: float("inf") for k in sizes} for name in sessions}
    for _ in range(reps):
        for k in sizes:
            for name, s in sessions.items():
                t = s.time_forward(k, n_past, 0, s.n_layer, True, False, 1, True)
                best[name][k] = min(best[name][k], t)
    return {name: {str(k): round(b[k] / b[1], 3) for k in sizes} | {"ms_1": round(b[1], 3)} for name, b in best.items()}


def profile(model: str, threads: int = 2, n_past: int = 128, reps: int = 5, compare_ggml: bool = False) -> dict:
    from specbound_cpp import _core
    from specbound_cpp.calibrate import exit_vocab_size, load_profile
    from specbound_cpp.models import model_path

    path = model_path(model, progress=False) if not os.path.exists(model) else model
    s = open_session(path, threads, n_past)
    L = s.n_layer
    prof = load_profile(path)
    cand = prof["candidates"] if prof else list(range(exit_vocab_size(s)))
    s.set_candidates(cand)

    def t(enter=0, exit=L, logits=False, check=False):
        return s.time_forward(1, n_past, enter, exit, logits, check, reps, True)

    layer = (t() - t(exit=1)) / (L - 1)
    sessions = {"ours": s}
    if compare_ggml:
        sessions["ggml_vec_dot"] = open_session(path, threads, n_past, ggml_kernels=True)
    factors = batch_factors(sessions, n_past, reps)
    gbs = _core.read_bandwidth_gbs(1 << 30, threads)
    floor_ms = s.decode_weight_bytes / (gbs * 1e9) * 1e3
    res = {
        "model": model, "n_layer": L, "threads": threads, "n_past": n_past, "n_candidates": len(cand),
        "layer_ms": round(layer, 4),
        "exit_check_ms": round(t(enter=L - 2, exit=L - 1, check=True) - t(enter=L - 2, exit=L - 1), 4),
        "lm_head_ms": round(t(logits=True) - t(), 4),
        "token_ms": factors["ours"]["ms_1"],
        "batch_factor": {k: v for k, v in factors["ours"].items() if k != "ms_1"},
        "kernels": dict(s.kernels()),
        "read_bandwidth_gbs": round(gbs, 1),
        "weight_mb_per_token": round(s.decode_weight_bytes / 1e6, 1),
        "memory_floor_ms": round(floor_ms, 3),
    }
    res["token_ms_over_floor"] = round(res["token_ms"] / floor_ms, 2)
    if compare_ggml:
        g = factors["ggml_vec_dot"]
        res["ggml_vec_dot"] = {"token_ms": g["ms_1"], "batch_factor": {k: v for k, v in g.items() if k != "ms_1"}}
    return res


def format_text(r: dict) -> str:
    lines = [
        f"{r['model']}: {r['n_layer']} layers, {r['threads']} threads, {r['n_past']} cached positions",
        f"  one token (full depth + LM head): {r['token_ms']:.2f} ms; memory floor {r['memory_floor_ms']:.2f} ms "
        f"({r['weight_mb_per_token']} MB at {r['read_bandwidth_gbs']} GB/s): {r['token_ms_over_floor']}x the floor",
        f"  layer {r['layer_ms']:.3f} ms, exit check {r['exit_check_ms']:.3f} ms ({r['n_candidates']} candidates), "
        f"LM head {r['lm_head_ms']:.3f} ms",
        "  batch factor (k tokens / one): " + ", ".join(f"{k}: {v}" for k, v in r["batch_factor"].items()),
    ]
    if "ggml_vec_dot" in r:
        g = r["ggml_vec_dot"]
        lines.append(f"  ggml vec_dot path: one token {g['token_ms']:.2f} ms, batch factor "
                     + ", ".join(f"{k}: {v}" for k, v in g["batch_factor"].items()))
    lines.append("  kernels: " + ", ".join(f"{t} -> {k}" for t, k in r["kernels"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m specbound_cpp.profile", description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", metavar="MODEL")
    ap.add_argument("--json", action="store_true", help="one JSON object per model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-past", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--compare-ggml", action="store_true", help="also time ggml's vec_dot path (our kernels off)")
    a = ap.parse_args(argv)
    try:
        for m in a.models:
            r = profile(m, a.threads, a.n_past, a.reps, a.compare_ggml)
            print(json.dumps(r) if a.json else format_text(r), flush=True)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
