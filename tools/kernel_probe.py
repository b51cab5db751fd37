"""Which decode matmul paths are batch-invariant, on this CPU, for the weights
of real models: runs one weight tensor of each type the model uses through
each path for batches n = 1..16 and compares every column bitwise with the
same column computed alone (n = 1) and with ggml's vec_dot.

    python tools/kernel_probe.py [MODEL ...] [--rows 256] [--threads 2] [--json]

Paths: "ggml" (plain mul_mat with use_ref: sgemm/tiled for n >= 2 where the
type allows), "detour" (vec_dot via a pre-quantized, non-contiguous input),
"ours" (our multi-column kernels, where we have one for the type).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from specbound_cpp import _core
from specbound_cpp.models import model_path

DEFAULT_MODELS = ["smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]


def weight_tensors(path: str) -> dict[str, str]:
    """One 2-d weight tensor name per quantized type the model's matmuls use."""
    import gguf

    names: dict[str, str] = {}
    for t in gguf.GGUFReader(path).tensors:
        if len(t.shape) != 2:
            continue
        if t.name.startswith("blk.") or t.name in ("output.weight", "token_embd.weight"):
            names.setdefault(t.tensor_type.name.lower(), t.name)
    return names


def columns(k: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, k)).astype(np.float32)
    x[2 % n] = 0.0                                   # zeros
    x[3 % n] = np.where(np.arange(k) % 2 == 0, 4.0, -4.0)  # ties at +-max
    x[4 % n] *= np.float32(2.0) ** (np.arange(k) % 40 - 20)  # wide range
    return x


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitwise equality (NaN == NaN where the bits agree: fp16 sums of extreme
    activations overflow to inf in every path)."""
    return a.shape == b.shape and bool(np.array_equal(a.view(np.uint32), b.view(np.uint32)))


def probe_tensor(sess, name: str, k: int, rows: int, threads: int, paths: list[str]) -> dict:
    x = columns(k, 16)
    alone = {p: np.stack([_core.testing.probe_matmul(sess, name, x[j : j + 1], p, threads, rows)[0] for j in range(16)]) for p in paths}
    vec_dot = alone["detour"]
    out = {}
    for p in paths:
        bad = [n for n in range(2, 17) if not same_bits(_core.testing.probe_matmul(sess, name, x[:n], p, threads, rows), alone[p][:n])]
        out[p] = {"invariant": not bad, "differs_at_n": bad, "equals_vec_dot": same_bits(alone[p], vec_dot)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=DEFAULT_MODELS)
    ap.add_argument("--rows", type=int, default=256, help="weight rows probed per tensor (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    results = []
    for m in a.models:
        path = model_path(m, progress=False)
        sess = _core.Session(path, 256, 256, a.threads, a.threads, 0, False)
        import gguf

        shapes = {t.name: int(t.shape[0]) for t in gguf.GGUFReader(path).tensors}
        for typ, name in sorted(weight_tensors(path).items()):
            ours = {t.lower(): path for t, path in sess.kernels()}.get(typ, "").startswith("sb_")
            paths = ["ggml", "detour"] + (["ours"] if ours else [])
            r = {"model": m, "type": typ, "tensor": name, "k": shapes[name], **probe_tensor(sess, name, shapes[name], a.rows, a.threads, paths)}
            results.append(r)
            if not a.json:
                cells = "  ".join(f"{p}: {'invariant' if v['invariant'] else 'NOT invariant (n=' + ','.join(map(str, v['differs_at_n'])) + ')'}"
                                  f"{', = vec_dot' if v['equals_vec_dot'] else ''}" for p, v in r.items() if isinstance(v, dict))
                print(f"{m:20s} {typ:5s} {name:28s} K={r['k']:5d}  {cells}", flush=True)
    if a.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
