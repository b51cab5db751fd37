"""A short speed comparison on the GPU (step `speed` of tools/gpu/run.sh).

Three ways to decode the same GGUF, every layer offloaded, greedy, the same
prompts and token budget, each run by the benchmark's own runner
(tools/bench/systems.py) in the benchmark's worker process of its own
(tools/bench/worker.py), with the runners' device setting (n_gpu_layers):

  llama.cpp   the bench's llama_cpp: llama_cpp.Llama (llama-cpp-python built
              with CUDA), flash attention
  plain       the bench's ours_plain: specbound_cpp.Llama(specbound=False)
  specbound   the bench's specbound: SpecBound with the model's profile, and
              off the CPU plain decoding where its invariance check fails

Greedy output should be the same text for all three; the table says whether it
was. SpecBound text that differs from our plain decoding is an exactness
failure (exit status 1); a difference from llama.cpp's own CUDA kernels is
only reported (the parity tests judge that). Times are the bench's end to end
per call (prompt + generation), after one warm-up call per object. Each engine
runs in a process of its own (CUDA graphs are decided per process).

    python tools/gpu/speed.py [--models NAME,...] [--tokens 128] [--n-gpu-layers -1]
                              [--json FILE] [--markdown FILE]

Models are registry names (specbound_cpp.models) found in the cache
($SPECBOUND_CACHE/models); by default Qwen2.5-Coder 0.5B and 1.5B, and if
neither is there, the first registry model that is. JSON results also go to
$OUT/speed.json when OUT is set. The prompts are specbound_cpp.prompts.SPEED.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from specbound_cpp.prompts import SPEED

PROMPTS = SPEED
BENCH = Path(__file__).resolve().parents[1] / "bench"
DEFAULT_MODELS = ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
ENGINES = ["llama.cpp", "plain", "specbound"]


def gpu_name() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)  # fmt: skip
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def pick_models(requested: list[str] | None) -> tuple[list[str], str]:
    from specbound_cpp.models import MODELS, is_cached

    wanted = requested or DEFAULT_MODELS
    unknown = [m for m in wanted if m not in MODELS]
    if unknown:
        sys.exit(f"speed.py: unknown models {unknown}; known: {', '.join(MODELS)}")
    present = [m for m in wanted if is_cached(m, verify=True)]
    note = ""
    if len(present) < len(wanted):
        note = f"not in the cache, skipped: {', '.join(m for m in wanted if m not in present)}"
    if not present and not requested:
        fallback = [m for m in MODELS if is_cached(m, verify=True)][:1]
        if fallback:
            note += f"; measured {fallback[0]} instead"
        present = fallback
    return present, note


# the bench's system for each engine of the table
BENCH_SYSTEMS = {"llama.cpp": "llama_cpp", "plain": "ours_plain", "specbound": "specbound"}


def run_engine(engine: str, path: str, token_lists: dict[str, list[int]], detokenize, args) -> dict:
    """One engine over the prompts, in the bench's worker process of its own
    (tools/bench/worker.py): ggml-cuda decides once per process whether it
    uses CUDA graphs (our engine turns them off for exactness), so llama.cpp's
    figure must not share a process with ours."""
    _use_bench()
    from worker import Worker

    cfg = {"system": BENCH_SYSTEMS[engine], "path": path, "threads": args.threads, "n_ctx": args.n_ctx,
           "flash_attn": True, "n_gpu_layers": args.n_gpu_layers}  # fmt: skip
    w = None
    try:
        w = Worker(cfg)
        w.run(next(iter(token_lists.values())), 8)  # warm-up: kernels, graphs, allocations
        recs = {label: w.run(tokens, args.tokens) for label, tokens in token_lists.items()}
        w.close()
    except RuntimeError as e:
        if w is not None:
            w.proc.kill()
        raise SystemExit(f"speed.py: {engine} on {path} failed: {e}") from None
    runs = [{"prompt": label, "tokens": len(rec["tokens"]), "seconds": rec["e2e_s"], "text": detokenize(rec["tokens"]),
             "stats": {k: v for k, v in rec.items() if isinstance(v, (int, float, str, bool))}}
            for label, rec in recs.items()]  # fmt: skip
    result = {"engine": engine, "runs": runs}
    if engine != "llama.cpp":
        result["specbound_source"] = w.info.get("specbound_source")
    return result


def summarize(model: str, results: list[dict]) -> list[dict]:
    ref = next((r for r in results if r["engine"] == "llama.cpp"), None)
    plain = next((r for r in results if r["engine"] == "plain"), None)
    rows = []
    for r in results:
        tokens = sum(x["tokens"] for x in r["runs"])
        seconds = sum(x["seconds"] for x in r["runs"])
        row = {"model": model, "engine": r["engine"], "tokens": tokens, "seconds": seconds,
               "tokens_per_second": tokens / seconds if seconds > 0 else 0.0}  # fmt: skip
        if ref is not None:
            row["same_text"] = all(a["text"] == b["text"] for a, b in zip(r["runs"], ref["runs"]))
        drafts = sum(x.get("stats", {}).get("draft_tokens", 0) for x in r["runs"])
        accepted = sum(x.get("stats", {}).get("accepted_tokens", 0) for x in r["runs"])
        if r["engine"] == "specbound" and plain is not None:
            # the exactness promise: SpecBound's text is our plain decoding's
            row["same_as_plain"] = all(a["text"] == b["text"] for a, b in zip(r["runs"], plain["runs"]))
        if r["engine"] == "specbound":
            row["acceptance"] = accepted / drafts if drafts else None
            row["specbound_source"] = r.get("specbound_source")
        rows.append(row)
    ref_rate = next((x["tokens_per_second"] for x in rows if x["engine"] == "llama.cpp"), 0.0)
    for row in rows:
        row["vs_llama_cpp"] = row["tokens_per_second"] / ref_rate if ref_rate else None
    return rows


def markdown(rows: list[dict], header: str) -> str:
    lines = [header, "",
             "| model | engine | tokens | seconds | tokens/s | vs llama.cpp | same text as llama.cpp | notes |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |"]  # fmt: skip
    for r in rows:
        notes = []
        if r.get("same_as_plain") is not None:
            notes.append("same text as plain" if r["same_as_plain"] else "TEXT DIFFERS FROM PLAIN")
        if r.get("acceptance") is not None:
            notes.append(f"acceptance {r['acceptance']:.2f}")
        if r.get("specbound_source"):
            notes.append(f"parameters: {r['specbound_source']}")
        vs = f"{r['vs_llama_cpp']:.2f}x" if r.get("vs_llama_cpp") else "-"
        same = {True: "yes", False: "NO", None: "-"}[r.get("same_text")]
        lines.append(f"| {r['model']} | {r['engine']} | {r['tokens']} | {r['seconds']:.2f} | "
                     f"{r['tokens_per_second']:.1f} | {vs} | {same} | {'; '.join(notes)} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _use_bench() -> None:
    """The bench's modules (worker, systems, workloads) importable, as they are
    to tools/bench/run.py; its spawned workers inherit the path."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))


def measure(model: str, engines: list[str], args) -> list[dict]:
    """Every engine's runs over PROMPTS on one model (token ids from the
    bench's PromptEncoder, the same for every engine)."""
    _use_bench()
    from workloads import PromptEncoder

    from specbound_cpp.models import model_path

    path = model_path(model, download=False)
    encode = PromptEncoder(path)
    token_lists = {label: encode({"text": text, "chat": False}) for label, text in PROMPTS.items()}

    def detokenize(tokens: list[int]) -> str:
        return encode.ll.detokenize(tokens).decode("utf-8", errors="replace")

    results = []
    for engine in engines:
        print(f"speed.py: {model} / {engine} ...", file=sys.stderr, flush=True)
        results.append(run_engine(engine, path, token_lists, detokenize, args))
    return results


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", help="comma-separated registry names (default: Qwen2.5-Coder 0.5B and 1.5B)")
    p.add_argument("--tokens", type=int, default=128, help="new tokens per prompt (default: %(default)s)")
    p.add_argument("--n-ctx", type=int, default=1024)
    p.add_argument("--threads", type=int, default=min(8, os.cpu_count() or 1), help="CPU threads (default: %(default)s)")
    p.add_argument("--n-gpu-layers", type=int, default=-1, help="layers offloaded (default: all, -1; 0: the CPU)")
    p.add_argument("--engines", default=",".join(ENGINES), help="subset of " + ",".join(ENGINES))
    p.add_argument("--json", help="write the results here")
    p.add_argument("--markdown", help="write the table here")
    return p


def _write(report: dict, table: str, args) -> None:
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    targets = [args.json] if args.json else []
    if os.environ.get("OUT") and os.path.isdir(os.environ["OUT"]):
        targets.append(os.path.join(os.environ["OUT"], "speed.json"))
    for target in targets:
        with open(target, "w") as f:
            json.dump(report, f, indent=1)


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    if any(e not in ENGINES for e in engines):
        p.error(f"--engines: choose from {', '.join(ENGINES)}")
    models, note = pick_models(args.models.split(",") if args.models else None)
    if note:
        print(f"speed.py: {note}", file=sys.stderr)
    if not models:
        print("speed.py: no model to measure (see tools/gpu/README.md, 'Models')", file=sys.stderr)
        return 1
    device = gpu_name()
    report = {"device": device, "host": platform.node(), "tokens": args.tokens, "prompts": PROMPTS,
              "threads": args.threads, "n_gpu_layers": args.n_gpu_layers, "note": note, "models": {}}  # fmt: skip
    rows = []
    for model in models:
        report["models"][model] = measure(model, engines, args)
        rows += summarize(model, report["models"][model])
    report["summary"] = rows
    layers = "all layers" if args.n_gpu_layers == -1 else f"{args.n_gpu_layers} layers"
    header = (f"Greedy, {args.tokens} new tokens x {len(PROMPTS)} prompts, {layers} on {device}; "
              f"wall time per call, prompt included")  # fmt: skip
    table = markdown(rows, header)
    print(table)
    _write(report, table, args)
    # SpecBound text that differs from plain decoding breaks exactness; a
    # difference from llama.cpp's CUDA kernels is reported, not failed on
    # (the parity tests judge that)
    return 1 if any(r.get("same_as_plain") is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
