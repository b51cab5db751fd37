"""Time our Q6_K kernel alone on Qwen2.5-Coder-1.5B's real Q6_K tensors: the
LM head (k = 1536; its first 32768 rows with THREADS < 0) and a ffn_down
(k = 8960), for 1, 2, 4 and 8 columns. Best of 15; ns per super-block and column.

    python q6_K_columns.py LABEL THREADS      (abs(THREADS) threads)

A/B: copy each build's _core*.so over the installed one in turn and run this
after each (docs/bench/kernels-2026-12-07/README.md).
"""
import sys
import time

import gguf
import numpy as np

from specbound_cpp import _core
from specbound_cpp.models import model_path

label, nt = sys.argv[1], int(sys.argv[2])
tensors = {t.name: t for t in gguf.GGUFReader(model_path("qwen2.5-coder-1.5b", progress=False)).tensors}
down = next(n for n, t in tensors.items() if t.tensor_type.name == "Q6_K" and "ffn_down" in n)
res = []
for name in ("output.weight", down):
    t = tensors[name]
    k, rows = int(t.shape[0]), int(t.shape[1])
    w = bytes(np.asarray(t.data).tobytes())
    if rows > 50000 and nt < 0:
        w, rows = w[: len(w) * 32768 // rows], 32768
    for n in (1, 2, 4, 8):
        x = np.random.default_rng(0).standard_normal((n, k)).astype(np.float32)
        _core.testing.kernel_matmul("q6_K", w, rows, x, "ours", abs(nt))
        best = 1e9
        for _ in range(15):
            t0 = time.perf_counter()
            _core.testing.kernel_matmul("q6_K", w, rows, x, "ours", abs(nt))
            best = min(best, time.perf_counter() - t0)
        res.append(f"{name} {rows}x{k} n={n}: {best * 1e3:.2f} ms, {best * 1e9 / (rows * k / 256 * n):.2f} ns/sb-col")
print(label, " | ".join(res))
