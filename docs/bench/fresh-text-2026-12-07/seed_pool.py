"""Where no key of this request's text matches, how often a pool of the model's own other
answers (leave one out: every other prompt's plain output of the same run) would draft the
next token right, by key length. python seed_pool.py MODEL RESULTS_JSON (repository root).
The bench's code edits are HumanEval functions, so the other answers include the same
function's completion: an upper bound for a seed pool of unrelated text."""
import json, sys
sys.path.insert(0, "tools/bench")
from workloads import load_workloads, PromptEncoder
from specbound_cpp.models import model_path
KEYS = [24, 16, 12, 8, 6, 4, 3, 2]
def tables(seqs):
    tabs = {k: {} for k in KEYS}
    for H in seqs:
        for i in range(1, len(H)):
            for k in KEYS:
                if i - k >= 0: tabs[k][tuple(H[i - k:i])] = H[i]
    return tabs
def longest(tabs, H):
    for k in KEYS:
        if len(H) >= k and tuple(H[-k:]) in tabs[k]: return k, tabs[k][tuple(H[-k:])]
    return None
def run(model, res):
    enc = PromptEncoder(model_path(model, progress=False))
    r = json.load(open(res))
    prompts = {p["id"]: p for p in load_workloads(["humaneval", "longform", "codeedit", "multiturn"], {"humaneval": 2, "longform": 2, "codeedit": 2, "multiturn": 2})}
    recs = [e for e in r["records"] if e["system"] == "ours_plain"]
    agg = {}
    for e in recs:
        seed = tables([o["tokens"] for o in recs if o is not e])
        p = enc(prompts[e["prompt_id"]]); out = e["tokens"]
        H = list(p)
        st = agg.setdefault(e["workload"], dict(n=0, own=0, own_ok=0, seed=0, seed_ok=0, bykey={}))
        for i, t in enumerate(out):
            st["n"] += 1
            hit = None
            for k in KEYS:
                if len(H) > k:
                    key = H[-k:]
                    for j in range(len(H) - k - 1, -1, -1):
                        if H[j:j + k] == key: hit = (k, H[j + k]); break
                    if hit: break
            if hit: st["own"] += 1; st["own_ok"] += hit[1] == t
            else:
                s = longest(seed, H)
                if s:
                    st["seed"] += 1; st["seed_ok"] += s[1] == t
                    b = st["bykey"].setdefault(s[0], [0, 0]); b[0] += 1; b[1] += s[1] == t
            H.append(t)
    for w, s in agg.items():
        print(model, w, "n", s["n"], "own", s["own"], "seed-only matches", s["seed"], "acc %.2f" % (s["seed_ok"] / max(1, s["seed"])), "by key", s["bykey"])
run(sys.argv[1], sys.argv[2])
