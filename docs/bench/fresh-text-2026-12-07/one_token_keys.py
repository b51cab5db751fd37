"""How often a 1-token key (the token that last followed the newest one) would guess the next
token where no key of 2-24 tokens matches, over a bench run's plain outputs (the pool's rule:
the longest matching key, its most recent continuation; prompt and output so far).
python one_token_keys.py MODEL RESULTS_JSON  (run from the repository root)."""
import json, sys
sys.path.insert(0, "tools/bench")
from workloads import load_workloads, PromptEncoder
from specbound_cpp.models import model_path
KEYS = [24, 16, 12, 8, 6, 4, 3, 2]
def run(model, res):
    enc = PromptEncoder(model_path(model, progress=False))
    r = json.load(open(res))
    prompts = {p["id"]: p for p in load_workloads(["humaneval", "longform", "codeedit", "multiturn"], {"humaneval": 2, "longform": 2, "codeedit": 2, "multiturn": 2})}
    agg = {}
    for e in r["records"]:
        if e["system"] != "ours_plain": continue
        p = enc(prompts[e["prompt_id"]]); out = e["tokens"]
        H = list(p)
        # tables: key tuple -> most recent follower
        tabs = {k: {} for k in KEYS + [1]}
        def feed(i):  # position i of H gets learned as follower of keys ending at i-1
            for k in KEYS + [1]:
                if i - k >= 0: tabs[k][tuple(H[i - k:i])] = H[i]
        for i in range(1, len(H)): feed(i)
        st = agg.setdefault(e["workload"], dict(n=0, long=0, long_ok=0, one=0, one_ok=0, none=0))
        for t in out:
            st["n"] += 1
            hit = None
            for k in KEYS:
                if len(H) >= k and tuple(H[-k:]) in tabs[k]: hit = (k, tabs[k][tuple(H[-k:])]); break
            if hit: st["long"] += 1; st["long_ok"] += hit[1] == t
            elif (H[-1],) in tabs[1]: st["one"] += 1; st["one_ok"] += tabs[1][(H[-1],)] == t
            else: st["none"] += 1
            H.append(t); feed(len(H) - 1)
    for w, s in agg.items():
        print(model, w, s, "no-long-match share %.2f, 1-key acc %.2f" % ((s["one"] + s["none"]) / s["n"], s["one_ok"] / max(1, s["one"])))
run(sys.argv[1], sys.argv[2])
