"""Paired: plain vs SpecBound default vs SpecBound lookup-only (exit_layers=[]), decode tok/s, median ratio."""
import sys, time, statistics
sys.path.insert(0, "tools/bench")
from workloads import codeedit_prompts, longform_prompts
from specbound_cpp import Llama
model = sys.argv[1]; reps = int(sys.argv[2]) if len(sys.argv) > 2 else 1
mk = lambda **kw: Llama(model_path=model, n_ctx=4096, n_threads=2, n_threads_batch=2, verbose=False, **kw)
systems = {"plain": mk(specbound=False), "default": mk(), "lookup_only": mk(exit_layers=[])}
for w, ps in (("codeedit", codeedit_prompts()[:4]), ("longform", longform_prompts()[:4])):
    ratios = {k: [] for k in systems}
    for p in ps:
        best = {}
        for r in range(reps):
            for name, llm in systems.items():
                llm.reset()
                out = llm.create_chat_completion(messages=[{"role": "user", "content": p["text"]}], max_tokens=256, temperature=0)
                s = llm.last_stats
                tps = s["completion_tokens"] / (s["decode_ms"] / 1e3)
                best[name] = max(best.get(name, 0), tps)
        for k in systems: ratios[k].append(best[k] / best["plain"])
        print(w, p["id"][:22], {k: round(best[k], 1) for k in best}, flush=True)
    print(w, "median over plain:", {k: round(statistics.median(v), 3) for k, v in ratios.items()}, flush=True)
