"""Plain decoding speed, ours vs llama-cpp-python defaults, same process, interleaved, best of R."""
import sys, time, llama_cpp
from specbound_cpp import Llama
paths = sys.argv[1].split(","); R = int(sys.argv[2]) if len(sys.argv) > 2 else 3; N = 128
PROMPT = "def quicksort(xs):\n    \"\"\"Sort a list of integers.\"\"\"\n"
for path in paths:
    ref = llama_cpp.Llama(model_path=path, n_ctx=1024, n_threads=2, n_threads_batch=2, verbose=False)
    ours = Llama(model_path=path, n_ctx=1024, n_threads=2, n_threads_batch=2, verbose=False, specbound=False)
    best = {"llama_cpp": 1e9, "ours": 1e9}; toks = {}
    for r in range(R):
        for name, m in (("llama_cpp", ref), ("ours", ours)):
            m.reset()
            t = time.perf_counter()
            out = m(PROMPT, max_tokens=N, temperature=0)
            dt = time.perf_counter() - t
            best[name] = min(best[name], dt); toks[name] = out["choices"][0]["text"]
    n = out["usage"]["completion_tokens"]
    print(f"{path.split('/')[-1]}: {n} tokens, llama_cpp {n/best['llama_cpp']:.1f} tok/s, ours {n/best['ours']:.1f} tok/s, "
          f"ratio {best['llama_cpp']/best['ours']:.3f}, same text {toks['ours']==toks['llama_cpp']}", flush=True)
    del ref, ours
