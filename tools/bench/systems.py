"""The systems the benchmark compares, each run inside its own worker process.

Every system is a runner: built from a config dict (model path, threads, n_ctx,
system name, ...), it has `info` (a dict for results.json) and
`run(tokens, n) -> dict` (one greedy generation from the given prompt token
ids: its token ids, whether it ended at end-of-generation, end-to-end and
decode seconds, and the round counters).

The device setting is the config's optional "n_gpu_layers" (default 0: every
layer on the CPU; -1: all offloaded), passed to every system alike; tools/gpu
runs these runners with it.
"""

from __future__ import annotations

import contextlib
import time
from typing import Dict, List

import llama_cpp
import numpy as np
from llama_cpp.llama_speculative import LlamaDraftModel, LlamaPromptLookupDecoding
from llama_server import SERVER_DESCRIPTIONS, SERVER_SYSTEMS
from llamacpp_reference import no_weight_repacking

SYSTEMS = {
    "llama_cpp": "llama-cpp-python, plain (baseline)",
    "llama_cpp_pld2": "llama-cpp-python, prompt lookup, 2 tokens",
    "llama_cpp_pld10": "llama-cpp-python, prompt lookup, 10 tokens",
    "llama_cpp_draft": "llama-cpp-python, 0.5B draft model",
    "llama_cpp_norepack": "llama-cpp-python, plain, flash attention, no weight repacking (like for like with ours)",
    "ours_plain": "specbound_cpp, plain",
    "specbound": "specbound_cpp, SpecBound (Llama's defaults: n-gram lookup drafts on, online gate on)",
    "specbound_exit_only": "specbound_cpp, SpecBound with early-exit drafts only (ngram=0)",
    "ik_llama_cpp": "ik-llama-cpp-python (ik_llama.cpp), plain greedy, in its own venv (tools/bench/ik_worker.py)",
    **SERVER_DESCRIPTIONS,
}
IK_SYSTEM = "ik_llama_cpp"
OURS = ("ours_plain", "specbound", "specbound_exit_only")
SPECBOUND_SYSTEMS = ("specbound", "specbound_exit_only")
BASELINE = "llama_cpp"
# only with --systems: keeps --quick under 10 minutes (and the llama-server peers need setup.sh --bench's build)
OPTIONAL_SYSTEMS = ["llama_cpp_norepack", "specbound_exit_only", "ik_llama_cpp", *SERVER_SYSTEMS]
DRAFT_MODEL = {"qwen2.5-coder-1.5b": "qwen2.5-coder-0.5b"}  # same tokenizer as the target

# SpecBound counters kept per prompt (llm.last_stats after a SpecBound generation)
SPEC_STATS = (
    "rounds",
    "draft_tokens",
    "accepted_tokens",
    "layer_evals",
    "layer_evals_rejected",
    "exit_checks",
    "ngram_rounds",
    "ngram_accepted",
    "exit_rounds",
    "exit_accepted",
    "draft_ms",
    "verify_ms",
)


def systems_for(model: str, wanted: List[str]) -> List[str]:
    """The wanted systems that apply to a model, in SYSTEMS order (the two-model
    system only where there is a draft model)."""
    return [s for s in SYSTEMS if s in wanted and (s != "llama_cpp_draft" or model in DRAFT_MODEL)]


def _n_layer(metadata: Dict[str, str]) -> int:
    return int(metadata[f"{metadata['general.architecture']}.block_count"])


def _plain_counters(n_layer: int, n_tokens: int, eog: bool) -> dict:
    emitted = n_tokens + eog - 1  # after the prompt pass's token
    return {"rounds": emitted, "emitted": emitted, "layer_evals": n_layer * emitted}


# --- llama-cpp-python ----------------------------------------------------------------


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


def _llama_cpp_drafter(cfg: dict, common: dict):
    """The draft model of a llama-cpp-python system, counted; None for plain decoding."""
    inner = {
        "llama_cpp": None,
        "llama_cpp_norepack": None,
        "llama_cpp_pld2": lambda: LlamaPromptLookupDecoding(num_pred_tokens=2),
        "llama_cpp_pld10": lambda: LlamaPromptLookupDecoding(num_pred_tokens=10),
        "llama_cpp_draft": lambda: TwoModelDraft(cfg["draft_path"], cfg["draft_k"], **common),
    }[cfg["system"]]
    return CountingDraft(inner()) if inner else None


class LlamaCppRunner:
    """llama_cpp.Llama, with llama-cpp-python's defaults apart from the context
    size and threads (llama_cpp_norepack: flash attention, no weight repacking)."""

    def __init__(self, cfg: dict):
        common = dict(
            n_ctx=cfg["n_ctx"],
            n_threads=cfg["threads"],
            n_threads_batch=cfg["threads"],
            flash_attn=cfg["flash_attn"],
            n_gpu_layers=cfg.get("n_gpu_layers", 0),
            verbose=False,
        )
        if cfg["system"] == "llama_cpp_norepack":
            common["flash_attn"] = True
        self.drafter = _llama_cpp_drafter(cfg, common)
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
        rec.update(self._counters(len(out), eog))
        return rec

    def _counters(self, n_tokens: int, eog: bool) -> dict:
        if self.drafter is None:
            return _plain_counters(self.n_layer, n_tokens, eog)
        d = self.drafter  # target-model layers only: every round evaluates 1 + its drafts
        return dict(
            rounds=d.calls,
            emitted=n_tokens + eog - 1,
            draft_tokens=d.settled,
            accepted_tokens=d.accepted,
            layer_evals=self.n_layer * (d.calls + d.proposed),
            draft_s=d.draft_s,
            draft_first_call_s=d.first_call_s,
        )


# --- ours --------------------------------------------------------------------------------


class OursRunner:
    """specbound_cpp.Llama (the decoding loop runs in C++): plain, or SpecBound."""

    def __init__(self, cfg: dict):
        from specbound_cpp import Llama
        from specbound_cpp.profile_store import load_profile

        spec = cfg["system"] in SPECBOUND_SYSTEMS
        extra = {"ngram": 0} if cfg["system"] == "specbound_exit_only" else {}
        # Llama()'s own choice from the profile: where calibration measured no
        # gain from early exit, lookup drafts alone (specbound_setup)
        profile = load_profile(cfg["path"]) if spec else None
        # On the CPU, SpecBound's exactness is verified: insist on it. Off the
        # CPU it is not, and Llama falls back to plain decoding where its
        # run-time invariance check fails (info's specbound_source says so).
        on_cpu = cfg.get("n_gpu_layers", 0) == 0
        self.llm = Llama(
            cfg["path"],
            specbound=(True if on_cpu else None) if spec else False,
            n_threads=cfg["threads"],
            n_threads_batch=cfg["threads"],
            n_ctx=cfg["n_ctx"],
            n_gpu_layers=cfg.get("n_gpu_layers", 0),
            verbose=False,
            **extra,
        )
        self.n_layer = _n_layer(self.llm.metadata)
        self.info = {"n_layer": self.n_layer}
        if spec:
            self.info.update(specbound_source=self.llm.specbound_source, specbound_params=self.llm.specbound_params,
                             profile_enabled=bool(profile and profile.get("enabled")))

    def run(self, tokens: List[int], n: int) -> dict:
        self.llm.reset()
        # a cold prompt: lookup drafts from this prompt alone, never from the
        # earlier prompts' text or this prompt's own earlier run (--repeat)
        self.llm.reset_ngram_pool()
        t0 = time.perf_counter()
        r = self.llm.create_completion(tokens, max_tokens=n, temperature=0.0)
        e2e = time.perf_counter() - t0
        st = self.llm.last_stats
        out = self.llm.last_completion_tokens
        eog = r["choices"][0]["finish_reason"] == "stop"  # no stop strings here: end of generation
        rec = {"tokens": out, "eog": eog, "e2e_s": e2e, "decode_s": st["decode_ms"] / 1000.0}
        if "emitted_tokens" in st:  # SpecBound rounds ran
            rec.update({k: st[k] for k in SPEC_STATS})
            rec["ngram_drafts"] = st["exit_depth_hist"][0] if st["exit_depth_hist"] else 0
            rec["emitted"] = st["emitted_tokens"]
        else:
            rec.update(_plain_counters(self.n_layer, len(out), eog))
        return rec


def make_runner(cfg: dict):
    return (OursRunner if cfg["system"] in OURS else LlamaCppRunner)(cfg)
