"""Plain decoding tok/s of one GGUF (ours, specbound=False), best of 3: python plain_speed.py PATH [TOKENS]"""
import sys, time
from specbound_cpp import Llama
path = sys.argv[1]; N = int(sys.argv[2]) if len(sys.argv) > 2 else 96
m = Llama(model_path=path, n_ctx=1024, n_threads=2, n_threads_batch=2, verbose=False, specbound=False)
P = "def quicksort(xs):\n    \"\"\"Sort a list of integers.\"\"\"\n"
best = 1e9
for r in range(3):
    m.reset(); t = time.perf_counter(); out = m(P, max_tokens=N, temperature=0); dt = time.perf_counter() - t
    best = min(best, dt)
n = out["usage"]["completion_tokens"]
print(f"{path.split('/')[-1]} {n/best:.2f} tok/s {hash(out['choices'][0]['text'])}")
