"""The driver: for each model, every system in its own worker, prompt by prompt
(every system runs a prompt before the next prompt starts, so that all see the
same machine state), and one record per (system, prompt)."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Dict, List, Optional

from systems import BASELINE, DRAFT_MODEL, SPECBOUND_SYSTEMS, systems_for
from worker import make_worker
from workloads import PromptEncoder


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
    from specbound_cpp.profile_store import load_profile

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


def _token_lists(path: str, prompts: List[dict], args) -> List[List[int]]:
    encode = PromptEncoder(path)
    token_lists = [encode(p) for p in prompts]
    for p, toks in zip(prompts, token_lists):
        if len(toks) + args.tokens + 4 > args.n_ctx:
            raise ValueError(f"{p['id']}: {len(toks)} prompt tokens + {args.tokens} do not fit n_ctx={args.n_ctx}")
    return token_lists


def _worker_config(model: str, path: str, args) -> dict:
    from specbound_cpp.models import model_path

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
    return cfg


def _run_prompts(model, workers, prompts, token_lists, args, progress, failed: Dict[str, str]) -> List[dict]:
    """Every prompt through every system; a peer system that fails (a crash in
    its own library) is dropped from the rest of the model's run and named in
    `failed`; the baseline and our systems must not fail."""
    for w in workers.values():  # warm-up: page in the weights, first-call allocations
        w.run(token_lists[0], 8)
    records = []
    for p, toks in zip(prompts, token_lists):
        recs: Dict[str, dict] = {}
        for rep in range(args.repeat):  # every system once per repetition, in turn
            for s, w in list(workers.items()):
                try:
                    rec = make_record(model, s, p, len(toks), w.run(toks, args.tokens), args.tokens)
                except RuntimeError as e:
                    if s == BASELINE or s in SPECBOUND_SYSTEMS or s == "ours_plain":
                        raise
                    failed[s] = f"failed on {p['id']}: {str(e).strip().splitlines()[-1]}"
                    print(f"\nbench: {model} {s} {failed[s]}; dropped for this model", file=sys.stderr)
                    w.proc.kill()
                    del workers[s]
                    recs.pop(s, None)
                else:
                    recs[s] = _faster(recs.get(s), rec, s, p["id"])
                progress.step(f"{model} {s} {p['id']}" + (f" ({rep + 1}/{args.repeat})" if args.repeat > 1 else ""))
        compare(recs)
        records += recs.values()
    return records


def _faster(old: Optional[dict], new: dict, system: str, prompt_id: str) -> dict:
    """Of two runs of one system on one prompt, the one with the shorter decode:
    the machine's noise only ever slows a run down. Both must give the same tokens."""
    if old is None:
        return new
    if old["tokens"] != new["tokens"]:
        raise RuntimeError(f"{system} gave different tokens on two runs of {prompt_id}")
    best = min((old, new), key=lambda r: r["decode_s"])
    best["repeats"] = old.get("repeats", 1) + 1
    return best


def run_model(model: str, prompts: List[dict], args, progress: Progress) -> tuple:
    """All systems of one model, prompt by prompt; returns (records, system infos)."""
    from specbound_cpp.models import model_path

    path = model_path(model)
    systems = systems_for(model, args.systems)
    calibration = ensure_profile(model, path, args) if set(SPECBOUND_SYSTEMS) & set(systems) else None
    token_lists = _token_lists(path, prompts, args)
    cfg = _worker_config(model, path, args)
    workers = {}
    try:
        for s in systems:
            workers[s] = make_worker({**cfg, "system": s})
        failed: Dict[str, str] = {}
        records = _run_prompts(model, workers, prompts, token_lists, args, progress, failed)
        infos = {s: {"error": why} for s, why in failed.items()}
        for s, w in list(workers.items()):
            infos[s] = {**w.info, "peak_rss_mib": w.close() / 1024.0}
            del workers[s]
        if calibration and "specbound" in infos:
            infos["specbound"]["calibration"] = calibration
        return records, infos
    finally:
        for w in workers.values():
            w.proc.kill()
