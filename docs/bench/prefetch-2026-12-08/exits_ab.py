"""python exits_ab.py MODEL ROUNDS (from the repository root): plain / SpecBound / SpecBound with exit_layers=[] on the bench prompts (2 per workload), decode ms, orders alternated by round; the three outputs asserted equal"""
import sys, json
sys.path.insert(0, "tools/bench")
from workloads import load_workloads, PromptEncoder
from specbound_cpp import Llama
from specbound_cpp.models import model_path
model, reps = sys.argv[1], int(sys.argv[2])
path = model_path(model, progress=False)
wls = ["humaneval", "longform", "codeedit", "multiturn"]
prompts = load_workloads(wls, {w: 2 for w in wls})
enc = PromptEncoder(path)
kw = dict(n_threads=2, n_threads_batch=2, n_ctx=2048, verbose=False)
systems = {"plain": Llama(path, specbound=False, **kw), "spec": Llama(path, specbound=True, **kw),
           "noexit": Llama(path, specbound=True, exit_layers=[], **kw)}
for r in range(reps):
    for p in prompts:
        toks = enc(p)
        row = {}
        order = list(systems) if r % 2 == 0 else list(systems)[::-1]
        outs = {}
        for name in order:
            llm = systems[name]
            llm.reset(); llm.reset_ngram_pool()
            llm.create_completion(toks, max_tokens=256, temperature=0.0)
            st = llm.last_stats
            row[name] = round(st["decode_ms"]); outs[name] = list(llm.last_completion_tokens)
            if name == "spec": row["exit_rounds"] = st.get("exit_rounds"); row["gate_ee"] = st.get("gate_early_exit_rounds")
        assert outs["spec"] == outs["plain"] == outs["noexit"]
        print(json.dumps({"model": model, "rep": r, "id": p["id"], "n": len(outs["plain"]), **row,
                          "spec/plain": round(row["plain"] / row["spec"], 3), "noexit/plain": round(row["plain"] / row["noexit"], 3)}), flush=True)
