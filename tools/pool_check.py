"""Exactness and lookup drafting with the n-gram pool on the bench's prompts.

    python tools/pool_check.py [--model qwen2.5-coder-0.5b] [--workloads codeedit,multiturn]
        [--prompts 2] [--tokens 256] [--threads 2] [--seeded] [--json OUT]

For each prompt (tools/bench/workloads.py, tokenized as the bench does) it
generates with our plain decoding, then with SpecBound three ways:
`cold` (an empty pool, `reset_ngram_pool()`), `warm` (a `Llama` whose pool
holds every earlier prompt of the run and its outputs, not yet this prompt's)
and `again` (the same prompt a second time on it: the pool holds this very
answer). Every run starts after `reset()`, as plain decoding's does: a cached
prompt prefix changes how the prompt's last token is computed (alone rather
than in the prompt's batch), and so the text, in both modes alike. Each must
give plain decoding's tokens; any difference is printed and the exit status
is 1. `--seeded` does the same with seeded sampling (temperature 0.8).

Per run it prints tokens per round, lookup drafts per lookup round and their
acceptance by the length of the key that proposed them (`last_stats`), and the
decode speed over plain decoding's (indicative only on a busy machine).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "bench"))

GREEDY = dict(temperature=0.0)
SEEDED = dict(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, seed=1234)


def _run(llm, tokens, n, sampling):
    llm.reset()  # the whole prompt evaluated, as in every other run
    out = llm.create_completion(tokens, max_tokens=n, **sampling)
    st = llm.last_stats
    return llm.last_completion_tokens, st, out["choices"][0]["finish_reason"]


def _summary(st: dict, plain_ms: float) -> dict:
    """What a speculative run did: tokens per round, lookup drafts, acceptance by key length."""
    rounds = max(1, st["rounds"] - 1)  # the first token comes from the prompt pass
    # per key length: drafts, accepted, and accepted of those tried (a draft is
    # tried when all before it in its round were accepted)
    keys = {k: (d, a, r) for k, (d, a, r) in
            enumerate(zip(st["lookup_key_drafts"], st["lookup_key_accepted"], st["lookup_key_rejected"])) if d}
    drafts = st["exit_depth_hist"][0] if st["exit_depth_hist"] else 0
    return {
        "tokens_per_round": round((st["completion_tokens"] - 1) / rounds, 2),
        "lookup_rounds": st["ngram_rounds"],
        "lookup_drafts_per_round": round(drafts / max(1, st["ngram_rounds"]), 1),
        "lookup_acceptance": round(st["ngram_accepted"] / max(1, drafts), 3),
        "by_key": {k: f"{a}/{a + r} of {d}" for k, (d, a, r) in keys.items()},
        "gate": f"{st['gate_lookup_rounds']} lookup, {st['gate_early_exit_rounds']} exit, {st['gate_plain_rounds']} plain",
        "speed_over_plain": round(plain_ms / st["decode_ms"], 2) if st["decode_ms"] > 0 else None,
    }


def check(args) -> int:
    from specbound_cpp import Llama
    from specbound_cpp.models import model_path
    from workloads import PromptEncoder, load_workloads

    path = model_path(args.model)
    prompts = load_workloads(args.workloads.split(","), {w: args.prompts for w in args.workloads.split(",")})
    encode = PromptEncoder(path)
    kw = dict(n_ctx=args.n_ctx, n_threads=args.threads, n_threads_batch=args.threads, verbose=False)
    plain = Llama(path, specbound=False, **kw)
    cold = Llama(path, specbound=True, **kw)  # its pool emptied before each prompt
    bad, records = 0, []
    for sampling_name, sampling in [("greedy", GREEDY)] + ([("seeded", SEEDED)] if args.seeded else []):
        warm = Llama(path, specbound=True, **kw)  # its pool keeps every earlier run
        for p in prompts:
            toks = encode(p)
            ref, pst, _ = _run(plain, toks, args.tokens, sampling)
            cold.reset_ngram_pool()
            fed_before = warm.ngram_pool["fed"]
            runs = {"cold": _run(cold, toks, args.tokens, sampling), "warm": _run(warm, toks, args.tokens, sampling),
                    "again": _run(warm, toks, args.tokens, sampling)}
            for mode, (out, st, _) in runs.items():
                rec = {"prompt": p["id"], "sampling": sampling_name, "mode": mode, "same_as_plain": out == ref,
                       "tokens": len(out), **_summary(st, pst["decode_ms"])}
                if mode == "warm":
                    rec["pool_fed_before"] = fed_before
                records.append(rec)
                bad += out != ref
                print(json.dumps(rec), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))
    print(f"{len(records) - bad}/{len(records)} speculative runs gave plain decoding's tokens", file=sys.stderr)
    return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--workloads", default="codeedit,multiturn")
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--seeded", action="store_true")
    ap.add_argument("--json")
    return check(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
