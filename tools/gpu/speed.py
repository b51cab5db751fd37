"""A short speed comparison on the GPU (step `speed` of tools/gpu/run.sh).

Three ways to decode the same GGUF, every layer offloaded, greedy, the same
prompts and token budget:

  llama.cpp   llama_cpp.Llama (llama-cpp-python built with CUDA), flash attention
  plain       specbound_cpp.Llama(specbound=False): our engine, no speculation
  specbound   specbound_cpp.Llama(): exact self-speculative decoding

Greedy output should be the same text for all three; the table says whether it
was. SpecBound text that differs from our plain decoding is an exactness
failure (exit status 1); a difference from llama.cpp's own CUDA kernels is
only reported (the parity tests judge that). Times are wall
clock per call (prompt + generation), after one warm-up call per object.
Each engine runs in a process of its own (CUDA graphs are decided per process).

    python tools/gpu/speed.py [--models NAME,...] [--tokens 128] [--json FILE] [--markdown FILE]

Models are registry names (specbound_cpp.models) found in the cache
($SPECBOUND_CACHE/models); by default Qwen2.5-Coder 0.5B and 1.5B, and if
neither is there, the first registry model that is. JSON results also go to
$OUT/speed.json when OUT is set.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time

from specbound_cpp.prompts import SPEED

PROMPTS = SPEED
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


def make(engine: str, path: str, n_ctx: int, n_threads: int):
    """The decoding object for one engine, all layers on the GPU."""
    common = dict(n_ctx=n_ctx, n_gpu_layers=-1, n_threads=n_threads, n_threads_batch=n_threads, verbose=False)
    if engine == "llama.cpp":
        import llama_cpp

        return llama_cpp.Llama(path, flash_attn=True, **common)
    from specbound_cpp import Llama

    # specbound: SpecBound where the run-time invariance check holds on this GPU,
    # else plain decoding (the result's specbound_source says which and why)
    return Llama(path, specbound=None if engine == "specbound" else False, **common)


def run_engine(engine: str, path: str, args) -> dict:
    llm = make(engine, path, args.n_ctx, args.threads)
    try:
        llm("Hello", max_tokens=8, temperature=0.0)  # warm-up: kernels, graphs, allocations
        runs = []
        for label, prompt in PROMPTS.items():
            if hasattr(llm, "reset"):
                llm.reset()  # no prompt prefix carried over from another prompt
            t0 = time.perf_counter()
            out = llm(prompt, max_tokens=args.tokens, temperature=0.0)
            seconds = time.perf_counter() - t0
            run = {
                "prompt": label,
                "tokens": out["usage"]["completion_tokens"],
                "seconds": seconds,
                "text": out["choices"][0]["text"],
            }
            stats = getattr(llm, "last_stats", None)
            if stats:
                run["stats"] = {k: v for k, v in stats.items() if isinstance(v, (int, float, str, bool))}
            runs.append(run)
        result = {"engine": engine, "runs": runs}
        if engine != "llama.cpp":
            result["specbound_source"] = getattr(llm, "specbound_source", None)
        return result
    finally:
        del llm
        gc.collect()


def run_engine_apart(engine: str, path: str, argv: list[str] | None) -> dict:
    """run_engine in a process of its own: ggml-cuda decides once per process
    whether it uses CUDA graphs (our engine turns them off for exactness), so
    llama.cpp's figure must not share a process with ours."""
    own = list(sys.argv[1:] if argv is None else argv)
    p = subprocess.run([sys.executable, __file__, *own, "--child", engine, path], capture_output=True, text=True)
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        sys.stderr.write(p.stderr[-3000:])
        raise SystemExit(f"speed.py: {engine} on {path} failed (exit {p.returncode})")
    return json.loads(lines[-1])


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", help="comma-separated registry names (default: Qwen2.5-Coder 0.5B and 1.5B)")
    p.add_argument("--tokens", type=int, default=128, help="new tokens per prompt (default: %(default)s)")
    p.add_argument("--n-ctx", type=int, default=1024)
    p.add_argument("--threads", type=int, default=min(8, os.cpu_count() or 1), help="CPU threads (default: %(default)s)")
    p.add_argument("--engines", default=",".join(ENGINES), help="subset of " + ",".join(ENGINES))
    p.add_argument("--json", help="write the results here")
    p.add_argument("--markdown", help="write the table here")
    p.add_argument("--child", nargs=2, metavar=("ENGINE", "PATH"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(run_engine(args.child[0], args.child[1], args)))
        return 0
    engines = [e for e in args.engines.split(",") if e]
    if any(e not in ENGINES for e in engines):
        p.error(f"--engines: choose from {', '.join(ENGINES)}")

    from specbound_cpp.models import model_path

    models, note = pick_models(args.models.split(",") if args.models else None)
    if note:
        print(f"speed.py: {note}", file=sys.stderr)
    if not models:
        print("speed.py: no model to measure (see tools/gpu/README.md, 'Models')", file=sys.stderr)
        return 1
    device = gpu_name()
    report = {"device": device, "host": platform.node(), "tokens": args.tokens, "prompts": PROMPTS,
              "threads": args.threads, "note": note, "models": {}}  # fmt: skip
    rows = []
    for model in models:
        path = model_path(model, download=False)
        results = []
        for engine in engines:
            print(f"speed.py: {model} / {engine} ...", file=sys.stderr, flush=True)
            results.append(run_engine_apart(engine, path, argv))
        report["models"][model] = results
        rows += summarize(model, results)
    report["summary"] = rows
    header = (f"Greedy, {args.tokens} new tokens x {len(PROMPTS)} prompts, all layers on {device}; "
              f"wall time per call, prompt included")  # fmt: skip
    table = markdown(rows, header)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    targets = [args.json] if args.json else []
    if os.environ.get("OUT") and os.path.isdir(os.environ["OUT"]):
        targets.append(os.path.join(os.environ["OUT"], "speed.json"))
    for target in targets:
        with open(target, "w") as f:
            json.dump(report, f, indent=1)
    # SpecBound text that differs from plain decoding breaks exactness; a
    # difference from llama.cpp's CUDA kernels is reported, not failed on
    # (the parity tests judge that)
    return 1 if any(r.get("same_as_plain") is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
