import time, sys, numpy as np
from specbound_cpp import _core
from specbound_cpp.models import model_path
from specbound_cpp.profile import open_session
s = open_session(model_path("qwen2.5-coder-1.5b", progress=False), 2, 128)
name = sys.argv[1] if len(sys.argv) > 1 else "blk.3.ffn_gate.weight"
k = 1536 if "gate" in name or "up" in name or "attn_q" in name else 8960
rng = np.random.default_rng(0)
for nt in (1, 2):
    for n in (1, 2, 4, 8, 16, 64):
        x = rng.standard_normal((n, k)).astype(np.float32)
        row = []
        for path in ("ours", "ggml"):
            if path == "ggml" and n > 1:
                row.append(float("nan")); continue
            _core.testing.probe_matmul(s, name, x, path, nt)
            best = 1e9
            for r in range(5):
                t = time.perf_counter()
                for _ in range(5): _core.testing.probe_matmul(s, name, x, path, nt)
                best = min(best, (time.perf_counter() - t) / 5)
            row.append(best * 1e3)
        print(f"threads {nt} n {n:3d}: ours {row[0]:7.2f} ms ({row[0]/n:6.2f}/col)  ggml(n=1) {row[1]:7.2f}")
