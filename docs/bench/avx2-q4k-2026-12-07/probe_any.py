"""One weight of a GGUF through our decode op and through ggml's own mul_mat, widths 1, 2, 4:
python probe_any.py GGUF TENSOR K (2 threads, ms per call, 3 rounds of 20)."""
import time, sys, numpy as np
from specbound_cpp import _core
from specbound_cpp.profile import open_session
s = open_session(sys.argv[1], 2, 128)
rng = np.random.default_rng(0)
name, k = sys.argv[2], int(sys.argv[3])
for n in (1, 2, 4):
    x = rng.standard_normal((n, k)).astype(np.float32)
    res = {}
    for rnd in range(3):
        for path in ("ours", "ggml"):
            if path == "ggml" and n > 1: continue
            _core.testing.probe_matmul(s, name, x, path, 2)
            t = time.perf_counter()
            for _ in range(20): _core.testing.probe_matmul(s, name, x, path, 2)
            res.setdefault(path, []).append((time.perf_counter() - t) / 20 * 1e3)
    print(n, name, {p: " ".join(f"{v:.3f}" for v in vals) for p, vals in res.items()})
print(dict(s.kernels()))
