# per-column price of our batched kernels vs ggml's mul_mat on the same weight, same process
import sys, time, numpy as np
from specbound_cpp import _core
from specbound_cpp.models import model_path
def best(f, reps):
    b = 1e9
    for _ in range(reps):
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
    return b * 1e3
for model, names in [("qwen2.5-coder-1.5b", ["blk.0.ffn_up.weight", "blk.0.ffn_down.weight", "output.weight"]),
                     ("qwen2.5-coder-0.5b", ["blk.0.ffn_up.weight", "blk.0.ffn_down.weight", "output.weight"])]:
    s = _core.Session(model_path(model), 512, 512, 2, 2, 0, False, flash_attn=False)
    for name in names:
        for n in (1, 8):
            k = 1536 if "1.5b" in model else 896
            if "ffn_down" in name: k = 8960 if "1.5b" in model else 4864
            x = np.random.default_rng(0).standard_normal((n, k)).astype(np.float32)
            reps = 10 if name == "output.weight" else 40
            res = {}
            for _ in range(3):
                for path in ("ours", "ggml"):
                    v = best(lambda: _core.testing.probe_matmul(s, name, x, path, 2), reps)
                    res[path] = min(res.get(path, 1e9), v)
            print(f"{model} {name:24s} n={n:2d} ours {res['ours']:.3f} ms  ggml {res['ggml']:.3f} ms  ours/ggml {res['ours']/res['ggml']:.3f}", flush=True)
