"""Batch invariance, exactness and cost of the decode path off the CPU, per
`device_columns` setting (GraphBuilder::device_columns), on a GPU.

For each model and setting, in a process of its own (a crash stays there):
the run-time invariance check over batches of 2-17 (specbound_cpp.invariance),
the time of one decode batch of 1, 2, 4 and 8 tokens, and, where the check
holds, SpecBound against our plain decoding (greedy, same text?).

    python tools/gpu/modes.py MODEL.gguf [MODEL.gguf ...] [--columns 1,4,0] [--nofusion 1]

--nofusion C also runs setting C with GGML_CUDA_DISABLE_FUSION=1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from specbound_cpp.prompts import DEVICE_MODES as PROMPTS


def one(path: str, columns: int) -> dict:
    """In the child: everything for one model and setting."""
    import numpy as np

    from specbound_cpp import Llama, _core
    from specbound_cpp.invariance import run_check

    s = _core.Session(path, 1024, 512, 4, 4, 0x7FFFFFFF, False)
    s.device_columns = columns
    res = {"model": os.path.basename(path), "columns": columns, "devices": list(s.devices())}
    res.update(run_check(s, list(range(2, 18))))
    toks = list(s.tokenize(b"def quicksort(items):\n    if len(items) <= 1:\n        return items\n", True, False))
    s.eval_logits(toks, 0, False)
    cost = {}
    for k in (1, 2, 4, 8):
        batch = toks[:k]
        s.eval_logits(batch, len(toks), True)  # warm-up: graphs, allocations
        t0 = time.perf_counter()
        for _ in range(10):
            s.eval_logits(batch, len(toks), True)
        cost[k] = (time.perf_counter() - t0) / 10 * 1000
    res["ms_per_batch"] = cost
    del s
    if res["ok"]:
        kw = dict(n_ctx=1024, n_gpu_layers=-1, verbose=False)
        # both load with this setting: main() runs this child with
        # SPECBOUND_DEVICE_COLUMNS=columns, which the engine reads at load
        spec, plain = Llama(path, specbound=True, **kw), Llama(path, specbound=False, **kw)
        same, t_spec, t_plain, n = True, 0.0, 0.0, 0
        for p in PROMPTS:
            t0 = time.perf_counter()
            a = spec(p, max_tokens=64, temperature=0)
            t1 = time.perf_counter()
            b = plain(p, max_tokens=64, temperature=0)
            t_spec, t_plain = t_spec + t1 - t0, t_plain + time.perf_counter() - t1
            same &= a["choices"][0]["text"] == b["choices"][0]["text"]
            n += a["usage"]["completion_tokens"]
        res.update(same_as_plain=same, tokens=n, spec_s=t_spec, plain_s=t_plain,
                   drafts=spec.last_stats.get("draft_tokens"), accepted=spec.last_stats.get("accepted_tokens"))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*")
    ap.add_argument("--columns", default="1,4,0")
    ap.add_argument("--nofusion", type=int, default=None)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(one(a.child[0], int(a.child[1]))))
        return 0
    if not a.models:
        ap.error("no model given")
    runs = [(m, int(c), False) for c in a.columns.split(",") for m in a.models]
    if a.nofusion is not None:
        runs += [(m, a.nofusion, True) for m in a.models]
    for model, columns, nofusion in runs:
        env = dict(os.environ, SPECBOUND_CACHE=os.environ.get("SPECBOUND_CACHE", "/tmp/sb-modes"),
                   SPECBOUND_DEVICE_COLUMNS=str(columns))  # also for Llama's own check at load
        if nofusion:
            env["GGML_CUDA_DISABLE_FUSION"] = "1"
        p = subprocess.run([sys.executable, __file__, "--child", model, str(columns)], env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
        line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
        if p.returncode != 0 or not line.startswith("{"):
            print(f"{os.path.basename(model)} columns={columns} nofusion={nofusion}: FAILED rc={p.returncode}\n"
                  f"{p.stderr[-1500:]}")  # fmt: skip
            continue
        r = json.loads(line)
        cost = " ".join(f"{k}:{v:.2f}" for k, v in r["ms_per_batch"].items())
        extra = ""
        if "same_as_plain" in r:
            extra = (f" | specbound same as plain: {r['same_as_plain']}, {r['tokens']} tokens, "
                     f"spec {r['spec_s']:.2f} s vs plain {r['plain_s']:.2f} s, drafts {r['drafts']} accepted {r['accepted']}")
        print(f"{r['model']} columns={columns} nofusion={nofusion}: invariant={r['ok']} "
              f"{'; '.join(r['failures'][:3])} | ms per batch of k {cost}{extra}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
