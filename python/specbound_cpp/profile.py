"""Price the pieces of a decode step on this machine.

    python -m specbound_cpp.profile MODEL [--json] [--threads 2] [--n-past 128]
                                         [--compare-ggml] [--compare-llamacpp]

Prints ms of one transformer layer, of an exit check over the candidate
vocabulary and of the LM head (decode phase, batch-invariant kernels), the
decode batch factor (time of a batch of k tokens / one token, full depth plus
LM head, after n_past cached positions) for k = 1, 2, 4, 8, 16, 32, 64, the
kernel each weight type uses, and the memory floor: the weights one token
reads over this machine's read bandwidth, and where the time of one token's
call goes (planning and inputs, graph build and allocation, compute, readback)
with decode graphs reused and with every graph built anew, and the fixed cost
of a call (a call's time less its layers).
With --compare-ggml the batch factors are also measured with our kernels
switched off (ggml's vec_dot path); with --compare-llamacpp, llama.cpp's own
price of the same batches (llama-cpp-python with its defaults: flash attention
off, weights repacked): one llama_decode of k new tokens with logits for every
row after the same n_past cached positions, over a batch of 1, the k rows
dropped from its cache after each. Every comparison is timed interleaved with
ours in the same run, best of --reps, and printed side by side.

MODEL is a registry name or a GGUF path. Calibration prices speculation with
the same batch factors (`costs.batch_factors`, where the measurements live;
this module reports them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

# BATCH_SIZES and LlamaCppBatch are also this module's names (the widths it
# reports, and llama.cpp's side of --compare-llamacpp)
from .costs import (BATCH_SIZES, CALL_STAGES, LlamaCppBatch, batch_factors, call_stages, exit_vocab_size,
                    open_session)
from .profile_store import load_profile

__all__ = ["BATCH_SIZES", "LlamaCppBatch", "profile", "format_text", "main"]


def _compared_factors(s, path: str, threads: int, n_past: int, reps: int, compare_ggml: bool,
                      compare_llamacpp: bool) -> dict[str, dict[str, float]]:
    """batch_factors of our session s and of the comparisons asked for, interleaved."""
    sessions = {"ours": s}
    if compare_ggml:
        sessions["ggml_vec_dot"] = open_session(path, threads, n_past, ggml_kernels=True)
    if compare_llamacpp:
        sessions["llama_cpp"] = LlamaCppBatch(path, threads, n_past)
    try:
        return batch_factors(sessions, n_past, reps)
    finally:
        if compare_llamacpp:
            sessions["llama_cpp"].close()


def _priced(f: dict[str, float]) -> dict:
    return {"token_ms": f["ms_1"], "batch_factor": {k: v for k, v in f.items() if k != "ms_1"}}


def profile(model: str, threads: int = 2, n_past: int = 128, reps: int = 5, compare_ggml: bool = False,
            compare_llamacpp: bool = False) -> dict:
    from specbound_cpp import _core
    from specbound_cpp.models import model_path

    path = model_path(model, progress=False) if not os.path.exists(model) else model
    s = open_session(path, threads, n_past)
    L = s.n_layer
    prof = load_profile(path)
    cand = prof["candidates"] if prof else list(range(exit_vocab_size(s)))
    s.set_candidates(cand)

    def t(enter=0, exit=L, logits=False, check=False):
        return _core.testing.time_forward(s, 1, n_past, enter, exit, logits, check, reps, True)

    layer = (t() - t(exit=1)) / (L - 1)
    stages = call_stages(s, n_past, reps)
    factors = _compared_factors(s, path, threads, n_past, reps, compare_ggml, compare_llamacpp)
    gbs = _core.testing.read_bandwidth_gbs(1 << 30, threads)
    floor_ms = _core.testing.decode_weight_bytes(s) / (gbs * 1e9) * 1e3
    res = {
        "model": model, "n_layer": L, "threads": threads, "n_past": n_past, "n_candidates": len(cand),
        "layer_ms": round(layer, 4),
        "exit_check_ms": round(t(enter=L - 2, exit=L - 1, check=True) - t(enter=L - 2, exit=L - 1), 4),
        "lm_head_ms": round(t(logits=True) - t(), 4),
        **_priced(factors["ours"]),
        "kernels": dict(s.kernels()),
        "read_bandwidth_gbs": round(gbs, 1),
        "weight_mb_per_token": round(_core.testing.decode_weight_bytes(s) / 1e6, 1),
        "memory_floor_ms": round(floor_ms, 3),
        "call_stages": stages,
    }
    res["token_ms_over_floor"] = round(res["token_ms"] / floor_ms, 2)
    for name in ("ggml_vec_dot", "llama_cpp"):
        if name in factors:
            res[name] = _priced(factors[name])
    if "llama_cpp" in res:
        res["llama_cpp"]["settings"] = "llama-cpp-python defaults: flash_attn off, weight repacking on"
    return res


_COMPARED = (("ggml_vec_dot", "ggml vec_dot"), ("llama_cpp", "llama.cpp"))


def _factor_lines(r: dict) -> list[str]:
    """The batch factors: one line, or a table with a column per comparison
    (a row per width, then the ms of one token)."""
    cols = [("ours", r)] + [(label, r[key]) for key, label in _COMPARED if key in r]
    if len(cols) == 1:
        return ["  batch factor (k tokens / one): " + ", ".join(f"{k}: {v}" for k, v in r["batch_factor"].items())]

    def row(label, values):
        return f"  {label:>5}" + "".join(f"{v:>14}" for v in values)

    lines = ["  batch factor (k tokens / one), side by side:", row("k", [c for c, _ in cols])]
    lines += [row(k, [f"{c['batch_factor'][k]:.3f}" for _, c in cols]) for k in r["batch_factor"]]
    lines.append(row("ms@1", [f"{c['token_ms']:.3f}" for _, c in cols]))
    if "llama_cpp" in r:
        lines.append(f"  llama.cpp: {r['llama_cpp']['settings']}")
    return lines


def _stage_lines(st: dict) -> list[str]:
    lines = ["  one token's call (ms): " + "  ".join(f"{k[:-3]:>8}" for k in CALL_STAGES) + "     fixed"]
    for key, label in (("reused", "graph reused"), ("built", "graph built")):
        v = st[key]
        lines.append(f"  {label:>20}: " + "  ".join(f"{v[k]:8.3f}" for k in CALL_STAGES) + f"  {v['fixed_ms']:8.3f}")
    return lines


def format_text(r: dict) -> str:
    lines = [
        f"{r['model']}: {r['n_layer']} layers, {r['threads']} threads, {r['n_past']} cached positions",
        f"  one token (full depth + LM head): {r['token_ms']:.2f} ms; memory floor {r['memory_floor_ms']:.2f} ms "
        f"({r['weight_mb_per_token']} MB at {r['read_bandwidth_gbs']} GB/s): {r['token_ms_over_floor']}x the floor",
        f"  layer {r['layer_ms']:.3f} ms, exit check {r['exit_check_ms']:.3f} ms ({r['n_candidates']} candidates), "
        f"LM head {r['lm_head_ms']:.3f} ms",
        *_factor_lines(r),
        *_stage_lines(r["call_stages"]),
        "  kernels: " + ", ".join(f"{t} -> {k}" for t, k in r["kernels"].items()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m specbound_cpp.profile", description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", metavar="MODEL")
    ap.add_argument("--json", action="store_true", help="one JSON object per model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-past", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--compare-ggml", action="store_true", help="also time ggml's vec_dot path (our kernels off)")
    ap.add_argument("--compare-llamacpp", action="store_true",
                    help="also time llama.cpp's own batches (llama-cpp-python's defaults), side by side")
    a = ap.parse_args(argv)
    try:
        for m in a.models:
            r = profile(m, a.threads, a.n_past, a.reps, a.compare_ggml, a.compare_llamacpp)
            print(json.dumps(r) if a.json else format_text(r), flush=True)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
