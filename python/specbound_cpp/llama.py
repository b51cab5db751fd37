"""`Llama`: a drop-in for `llama_cpp.Llama` (same names, keyword arguments,
defaults and OpenAI-shaped results) that decodes with the specbound_cpp engine.

The text side of a completion (stop strings, held-back text while streaming,
incomplete UTF-8, finish reasons) is a port of llama-cpp-python 0.3.36's
`Llama._create_completion`, fed with the tokens the engine emits, so that both
libraries turn the same tokens into the same text and the same stream chunks.
Chat completions go through llama-cpp-python's own chat handlers (the GGUF's
Jinja2 template, or a registered `chat_format`), which call back into
`create_completion` here.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import sys
import threading
import time
import uuid
import warnings
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import llama_cpp
import numpy as np
from llama_cpp import llama_chat_format

from . import models as _models
from .constraints import engine_constraints
from .stream_logprobs import RowReader, token_logprobs

__all__ = ["Llama"]

_UINT64 = (1 << 64) - 1
_RANDOM_SEEDS = (-1, llama_cpp.LLAMA_DEFAULT_SEED)  # llama.cpp: draw a random seed
# llama.cpp context options removed long ago, still passed by frameworks (LangChain's
# LlamaCpp passes n_parts and f16_kv): accepted and ignored, as llama-cpp-python does
_OBSOLETE_OPTIONS = frozenset({"n_parts", "f16_kv", "low_vram", "mul_mat_q", "n_gqa", "rms_norm_eps"})
_RESULT_KEYS = ("tokens", "n_tokens", "finish_reason", "n_prompt", "n_prompt_reused", "prompt_ms", "decode_ms", "rounds")


def _unsupported(what: str) -> NotImplementedError:
    return NotImplementedError(f"specbound_cpp.Llama does not support {what} yet")


def _check_rope_options(md: Dict[str, str], freq_base: float, freq_scale: float) -> None:
    """rope_freq_base / rope_freq_scale: 0 means the model's own, and so does the
    model's own value given explicitly (LangChain's LlamaCpp always passes both);
    another value would change the model, which the engine cannot do yet."""
    arch = md.get("general.architecture", "")
    own_base = float(md.get(f"{arch}.rope.freq_base", 10000.0))
    factor = float(md.get(f"{arch}.rope.scaling.factor", 0.0))
    own_scale = 1.0 / factor if factor > 0 else 1.0
    for name, given, own in (("rope_freq_base", freq_base, own_base), ("rope_freq_scale", freq_scale, own_scale)):
        if given != 0.0 and given != own:
            raise _unsupported(f"the {name} option with a value other than the model's own ({own:g})")


DEFAULT_NGRAM = 3  # longest n-gram of the lookup drafts (Llama(ngram=0) turns them off)


class Llama:
    """High-level model object, like `llama_cpp.Llama`, driving `_core.Session`.

    Extra keyword arguments: `specbound` (decode with exact self-speculation;
    the output is the same either way. None: where the run-time invariance
    check holds, else plain decoding; True: raise RuntimeError where it fails)
    and the SpecBound options `alpha`,
    `tau`, `exit_layers`, `d_max`, `w_max` (None: the engine's default),
    `ngram` (draft the continuation of the newest n-gram's last occurrence in
    the text so far, trying n-grams of `ngram` down to 2 tokens, before early
    exit; default 3, 0: off) and `spec_gate` (the online gate: plain rounds while
    speculation is behind; default True).
    """

    def __init__(
        self,
        model_path: str,
        *,
        # Model Params
        n_gpu_layers: int = 0,
        split_mode: int = llama_cpp.LLAMA_SPLIT_MODE_LAYER,
        main_gpu: int = 0,
        tensor_split: Optional[List[float]] = None,
        vocab_only: bool = False,
        use_mmap: bool = True,
        use_mlock: bool = False,
        kv_overrides: Optional[Dict[str, Union[bool, int, float, str]]] = None,
        # Context Params
        seed: int = llama_cpp.LLAMA_DEFAULT_SEED,
        n_ctx: int = 512,
        n_batch: int = 512,
        n_ubatch: int = 512,
        n_threads: Optional[int] = None,
        n_threads_batch: Optional[int] = None,
        rope_scaling_type: Optional[int] = llama_cpp.LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED,
        pooling_type: int = llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED,
        attention_type: int = llama_cpp.LLAMA_ATTENTION_TYPE_UNSPECIFIED,
        rope_freq_base: float = 0.0,
        rope_freq_scale: float = 0.0,
        yarn_ext_factor: float = -1.0,
        yarn_attn_factor: float = 1.0,
        yarn_beta_fast: float = 32.0,
        yarn_beta_slow: float = 1.0,
        yarn_orig_ctx: int = 0,
        logits_all: bool = False,
        embedding: bool = False,
        offload_kqv: bool = True,
        flash_attn: bool = False,
        op_offload: Optional[bool] = None,
        swa_full: Optional[bool] = None,
        # Sampling Params
        no_perf: bool = False,
        last_n_tokens_size: int = 64,
        # LoRA Params
        lora_base: Optional[str] = None,
        lora_scale: float = 1.0,
        lora_path: Optional[str] = None,
        # Backend Params
        numa: Union[bool, int] = False,
        # Chat Format Params
        chat_format: Optional[str] = None,
        chat_handler: Optional[llama_chat_format.LlamaChatCompletionHandler] = None,
        # Speculative Decoding
        draft_model: Any = None,
        # Tokenizer Override
        tokenizer: Any = None,
        # KV cache quantization
        type_k: Optional[int] = None,
        type_v: Optional[int] = None,
        # Misc
        spm_infill: bool = False,
        verbose: bool = True,
        # SpecBound
        specbound: Optional[bool] = None,
        alpha: Optional[float] = None,
        tau: Optional[float] = None,
        exit_layers: Optional[Sequence[int]] = None,
        d_max: Optional[int] = None,
        w_max: Optional[int] = None,
        ngram: Optional[int] = None,
        spec_gate: bool = True,
        # llama.cpp options that no longer exist, which frameworks still pass
        # (LangChain's LlamaCpp: n_parts, f16_kv); llama-cpp-python ignores them
        **obsolete: Any,
    ):
        unknown = sorted(set(obsolete) - _OBSOLETE_OPTIONS)
        if unknown:  # llama-cpp-python ignores any keyword; a misspelt option should not pass silently
            raise TypeError(f"Llama() got an unexpected keyword argument {unknown[0]!r}")
        # Options that would change the model or its outputs: refuse rather than ignore.
        # (Placement, memory and kernel options - mmap, mlock, flash_attn, offload,
        # n_ubatch, numa, ... - do not change results here and are accepted.)
        changed = {
            "vocab_only": vocab_only, "kv_overrides": kv_overrides is not None,
            "embedding": embedding, "lora_path": lora_path is not None,
            "lora_base": lora_base is not None, "draft_model": draft_model is not None,
            "tokenizer": tokenizer is not None, "type_k": type_k is not None,
            "type_v": type_v is not None,
            "rope_scaling_type": rope_scaling_type not in (None, llama_cpp.LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED),
            "yarn_ext_factor": yarn_ext_factor != -1.0, "yarn_attn_factor": yarn_attn_factor != 1.0,
            "yarn_beta_fast": yarn_beta_fast != 32.0, "yarn_beta_slow": yarn_beta_slow != 1.0,
            "yarn_orig_ctx": yarn_orig_ctx != 0,
        }  # fmt: skip
        for name, on in changed.items():
            if on:
                raise _unsupported(f"the {name} option")

        def _int(name, v, lo):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
            return v

        _int("n_ctx", n_ctx, 0)
        _int("n_batch", n_batch, 1)
        _int("n_gpu_layers", n_gpu_layers, -1)
        if n_threads is not None:
            _int("n_threads", n_threads, 1)
        if n_threads_batch is not None:
            _int("n_threads_batch", n_threads_batch, 1)
        if seed is None or isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")

        path = os.fspath(model_path)
        if os.path.isdir(path):
            raise IsADirectoryError(21, "Model path is a directory, not a GGUF file", path)
        if not os.path.isfile(path):
            if path in _models.MODELS:
                path = _models.model_path(path, progress=verbose)
            else:
                known = ", ".join(_models.MODELS)
                raise FileNotFoundError(2, f"Model path does not exist (nor is it a known model: {known})", path)

        self.model_path = path
        self.verbose = verbose
        self.n_threads = n_threads or max(multiprocessing.cpu_count() // 2, 1)
        self.n_threads_batch = n_threads_batch or multiprocessing.cpu_count()
        self.n_gpu_layers = n_gpu_layers
        self._seed = seed or llama_cpp.LLAMA_DEFAULT_SEED
        self._logits_all = logits_all
        self.last_n_tokens_size = last_n_tokens_size
        self.specbound = specbound is None or bool(specbound)
        self._specbound_explicit = specbound is not None and bool(specbound)
        # the online gate: plain rounds while speculation is behind on the text at hand
        self.spec_gate = bool(spec_gate)
        specbound_overrides = {
            k: v
            for k, v in dict(alpha=alpha, tau=tau, exit_layers=exit_layers, d_max=d_max, w_max=w_max,
                             ngram=ngram).items()
            if v is not None
        }
        self.last_stats: Dict[str, Any] = {}
        # The session is used by one call at a time. A streaming generation holds
        # it from its first chunk until it is exhausted or closed, and may be
        # resumed from any thread, so this is not a thread-owned lock: _owner is
        # the thread that last drove the holder (which must not wait for itself).
        self._cond = threading.Condition(threading.Lock())
        self._owner: Optional[int] = None
        self._pieces: Dict[bool, Dict[int, bytes]] = {False: {}, True: {}}

        from . import _core

        ngl = 0x7FFFFFFF if n_gpu_layers == -1 else n_gpu_layers

        def open_session(ctx: int, batch: int):
            try:
                return _core.Session(path, ctx, batch, self.n_threads, self.n_threads_batch, ngl, bool(verbose))
            except (ValueError, RuntimeError, MemoryError):
                raise
            except Exception as e:  # e.g. IndexError/OverflowError from C++
                raise RuntimeError(f"failed to load {path}: {e}") from e

        if n_ctx == 0:  # the model's training context
            probe = open_session(256, 256)
            md = dict(probe.metadata())
            del probe
            try:
                n_ctx = int(md[f"{md.get('general.architecture', '')}.context_length"])
            except (KeyError, ValueError):
                raise ValueError(f"{path}: n_ctx=0 but the GGUF has no context_length") from None
        # llama.cpp rounds the context up to a multiple of 256 (llama_context)
        self.n_batch = min(n_ctx, n_batch)
        self._session = open_session(-(-n_ctx // 256) * 256, self.n_batch)
        s = self._session
        self._n_ctx, self._n_vocab = s.n_ctx, s.n_vocab
        self._bos, self._eos, self._add_bos = s.token_bos, s.token_eos, bool(s.add_bos)
        self.metadata: Dict[str, str] = dict(s.metadata())
        md = self.metadata
        # decode matmul path per weight type, decided at load by a bitwise
        # self-check of our kernels against ggml's vec_dot (see README)
        self.kernels: Dict[str, str] = dict(s.kernels())
        if verbose:
            print("specbound_cpp: decode kernels: " + ", ".join(f"{t} -> {k}" for t, k in self.kernels.items()),
                  file=sys.stderr)
        # not in the binding: read what libllama would report from the metadata
        self._add_eos = md.get("tokenizer.ggml.add_eos_token", "false") == "true"
        self._sep = int(md.get("tokenizer.ggml.seperator_token_id", -1))

        # chat formats, chosen exactly as llama_cpp.Llama chooses them
        self.chat_handler = chat_handler
        self._templates = {k[10:]: v for k, v in md.items() if k.startswith("tokenizer.chat_template.")}
        default_template = md.get("tokenizer.chat_template") or s.chat_template
        if default_template:
            self._templates["chat_template.default"] = default_template
        # one handler per GGUF template, as llama_cpp.Llama keeps them (its
        # create_chat_completion, which llama_cpp.server calls, looks here)
        eos = self._piece(self._eos, True).decode("utf-8", errors="ignore") if self._eos != -1 else ""
        bos = self._piece(self._bos, True).decode("utf-8", errors="ignore") if self._bos != -1 else ""
        self._chat_handlers: Dict[str, Any] = {
            name: llama_chat_format.Jinja2ChatFormatter(
                template=template, eos_token=eos, bos_token=bos, stop_token_ids=[self._eos]
            ).to_chat_handler()
            for name, template in self._templates.items()
        }
        if chat_format is None and chat_handler is None and "chat_template.default" in self._templates:
            chat_format = llama_chat_format.guess_chat_format_from_gguf_metadata(
                {"tokenizer.chat_template": default_template}
            ) or "chat_template.default"
        if chat_format is None and chat_handler is None:
            chat_format = "llama-2"
        if chat_format is not None and chat_format not in self._templates:
            try:
                llama_chat_format.get_chat_completion_handler(chat_format)
            except llama_chat_format.LlamaChatCompletionHandlerNotFoundException as e:
                raise ValueError(str(e)) from None
        self.chat_format = chat_format
        _check_rope_options(md, rope_freq_base, rope_freq_scale)
        self._setup_specbound(path, specbound_overrides)

    def _setup_specbound(self, path: str, overrides: Dict[str, Any]) -> None:
        """SpecBound parameters: engine defaults, then the calibrated profile of this
        model file (if any), then the caller's keyword arguments."""
        from .calibrate import load_profile

        s = self._session
        params = dict(s.get_spec())
        # n-gram lookup drafts: on unless asked otherwise (quick bench: 1.2-1.6x over
        # early exit alone on long-form text, equal within noise on HumanEval)
        params["ngram"] = DEFAULT_NGRAM
        self._candidates = set(range(min(self._n_vocab, 1024)))
        self.specbound_source = "defaults"
        self._spec_active = bool(self.specbound)
        profile = load_profile(path) if self.specbound else None
        if profile:
            self._candidates = set(profile["candidates"])
            if profile.get("enabled"):
                params.update(profile["params"])
                self.specbound_source = "profile"
            elif not overrides:
                # calibration measured no gain from speculation here
                self._spec_active = False
                self.specbound_source = "profile: plain decoding is faster for this model"
            else:
                # speculation asked for explicitly: the profile gives its exit vocabulary
                self.specbound_source = "profile vocabulary"
        params.update(overrides)
        if overrides:
            self.specbound_source += " + arguments"
        if "exit_layers" in overrides and "d_max" not in overrides:
            params["d_max"] = max(params["exit_layers"], default=0)
        L, ex = s.n_layer, list(params["exit_layers"])
        if not (params["alpha"] >= 0 and 0 < params["tau"] <= 1 and params["w_max"] >= 0 and params["ngram"] >= 0):
            raise ValueError("SpecBound needs alpha >= 0, 0 < tau <= 1, w_max >= 0 and ngram >= 0")
        if any(not 0 < l < L for l in ex) or ex != sorted(set(ex)) or not 0 <= params["d_max"] < L:
            raise ValueError(f"exit_layers must be ascending layers in (0, {L}) and d_max in [0, {L})")
        s.set_spec(float(params["alpha"]), float(params["tau"]), [int(x) for x in params["exit_layers"]],
                   int(params["d_max"]), int(params["w_max"]), int(params["ngram"]))  # fmt: skip
        self.specbound_params = dict(s.get_spec())
        self._check_invariance(path)

    def _check_invariance(self, path: str) -> None:
        """Speculate only where batched decoding is bitwise single-token decoding
        on these devices (specbound_cpp.invariance; cached per model and device)."""
        from .invariance import describe, invariance_verdict

        self.invariance: Optional[Dict[str, Any]] = None
        if not self._spec_active:
            return  # plain decoding: nothing to check, nothing to pay
        self.invariance = invariance_verdict(self._session, path, self.n_threads, self.specbound_params["w_max"])
        if self.verbose:
            how = "cached verdict" if self.invariance["cached"] else f"{self.invariance['seconds']:.2f} s"
            print(f"specbound_cpp: {describe(self.invariance)} [{how}]", file=sys.stderr)
        if not self.invariance["ok"]:
            self._spec_active = False
            self.specbound_source = describe(self.invariance)
            if self._specbound_explicit:
                raise RuntimeError(f"specbound=True, but SpecBound would not be exact here: {self.specbound_source}. "
                                   "Leave specbound unset to fall back to plain decoding, or pass specbound=False.")

    # --- model info ---------------------------------------------------------------

    def n_ctx(self) -> int:
        return self._n_ctx

    def n_vocab(self) -> int:
        return self._n_vocab

    def n_embd(self) -> int:
        return self._session.n_embd

    def token_bos(self) -> int:
        return self._bos

    def token_eos(self) -> int:
        return self._eos

    def set_seed(self, seed: int):
        self._seed = seed

    def reset(self):
        """Forget the cached prompt prefix."""
        with self._hold():
            self._session.reset()

    def close(self) -> None:
        with self._hold():
            self.__dict__.pop("_session", None)

    # --- tokens (the vocabulary is immutable: no lock, so that these work while a
    # stream is suspended or running in another thread) ---------------------------

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> List[int]:
        """Like llama_cpp.Llama.tokenize: `add_bos` adds the model's special tokens
        (BOS only if the model asks for one)."""
        if not isinstance(text, (bytes, bytearray, memoryview)):
            raise TypeError(f"tokenize() takes bytes (use text.encode('utf-8')), not {type(text).__name__}")
        return list(self._session.tokenize(bytes(text), bool(add_bos), bool(special)))

    def _piece(self, token: int, special: bool) -> bytes:
        cache = self._pieces[special]
        p = cache.get(token)
        if p is None:
            if not 0 <= token < self._n_vocab:
                raise ValueError(f"token id {token} is not in [0, {self._n_vocab})")
            p = cache[token] = bytes(self._session.token_piece(int(token), special))
        return p

    def detokenize(self, tokens: List[int], prev_tokens: Optional[List[int]] = None, special: bool = False) -> bytes:
        """Like llama_cpp.Llama.detokenize (prev_tokens is ignored there too)."""
        special = bool(special)
        out = b"".join(self._piece(t, special) for t in tokens)
        if len(tokens) > 0 and tokens[0] == self._bos and out[:1] == b" ":
            return out[1:]
        return out

    # --- completion -----------------------------------------------------------------

    def _use_specbound(self) -> bool:
        # `llm.specbound = False` after construction switches speculation off
        return self._spec_active and bool(self.specbound)

    def _generation_args(self, max_tokens, temperature, top_k, top_p, min_p, seed, stop,
                         repeat_penalty, frequency_penalty, presence_penalty) -> tuple:  # fmt: skip
        """Positional arguments of `_core.Session.generate` / `begin` after the prompt.
        The penalties are exact under speculation too (verification applies them)."""
        return (int(max_tokens), float(temperature), int(top_k), float(top_p), float(min_p), seed, list(stop),
                self._use_specbound(), int(self.last_n_tokens_size), float(repeat_penalty),
                float(frequency_penalty), float(presence_penalty))  # fmt: skip

    @contextlib.contextmanager
    def _hold(self):
        """Exclusive use of the session: waits for other threads' calls; raises
        if this thread's own unfinished stream holds it (waiting would hang)."""
        me = threading.get_ident()
        with self._cond:
            while self._owner is not None:
                if self._owner == me:
                    raise RuntimeError(
                        "a generation is in progress on this Llama object (an unfinished stream?); "
                        "exhaust or close it first"
                    )
                self._cond.wait()
            self._owner = me
        try:
            yield
        finally:
            with self._cond:
                self._owner = None
                self._cond.notify_all()

    def create_completion(
        self,
        prompt: Union[str, List[int]],
        suffix: Optional[str] = None,
        max_tokens: Optional[int] = 16,
        temperature: float = 0.8,
        top_p: float = 0.95,
        min_p: float = 0.05,
        typical_p: float = 1.0,
        logprobs: Optional[int] = None,
        echo: bool = False,
        stop: Optional[Union[str, List[str]]] = [],
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        repeat_penalty: float = 1.0,
        top_k: int = 40,
        stream: bool = False,
        seed: Optional[int] = None,
        tfs_z: float = 1.0,
        mirostat_mode: int = 0,
        mirostat_tau: float = 5.0,
        mirostat_eta: float = 0.1,
        model: Optional[str] = None,
        stopping_criteria: Optional[Any] = None,
        logits_processor: Optional[Any] = None,
        grammar: Optional[Any] = None,
        logit_bias: Optional[Dict[int, float]] = None,
    ):
        """Generate text from a prompt, like llama_cpp.Llama.create_completion.

        `stopping_criteria` are called as in llama-cpp-python, with the token ids
        evaluated so far, but with `None` for the logits (not exposed per token).
        `tfs_z` is ignored, as llama-cpp-python ignores it.
        """
        if not isinstance(prompt, (str, list)):
            raise TypeError(f"prompt must be a str or a list of token ids, got {type(prompt).__name__}")
        if stop is None:
            stop = []
        elif isinstance(stop, str):
            stop = [stop]
        elif not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise ValueError(f"stop must be a string or a list of strings, got {stop!r}")
        for name, v in (("temperature", temperature), ("top_p", top_p), ("min_p", min_p)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
                raise ValueError(f"{name} must be a number, got {v!r}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if not 0 <= min_p <= 1:
            raise ValueError(f"min_p must be in [0, 1], got {min_p}")
        if isinstance(top_k, bool) or not isinstance(top_k, int):
            raise ValueError(f"top_k must be an integer, got {top_k!r}")
        if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
            raise ValueError(f"max_tokens must be an integer or None, got {max_tokens!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed must be an integer or None, got {seed!r}")
        if logprobs is not None:
            if not self._logits_all:
                raise ValueError("logprobs is not supported for models created with logits_all=False")
            if isinstance(logprobs, bool) or not isinstance(logprobs, int) or logprobs < 0:
                raise ValueError(f"logprobs must be a non-negative integer, got {logprobs!r}")
        if suffix is not None:
            raise _unsupported("suffix (infill)")
        for name, v in (("repeat_penalty", repeat_penalty), ("frequency_penalty", frequency_penalty),
                        ("presence_penalty", presence_penalty)):  # fmt: skip
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
                raise ValueError(f"{name} must be a number, got {v!r}")
        if isinstance(prompt, list):
            n_vocab = self._n_vocab
            for t in prompt:
                if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < n_vocab:
                    raise ValueError(f"prompt token {t!r} is not a token id in [0, {n_vocab})")
            prompt = [int(t) for t in prompt]

        penalties = (repeat_penalty, frequency_penalty, presence_penalty)
        # grammar / JSON mode, logit bias, logits processors, typical, mirostat:
        # checked here, applied by the engine at each position it emits
        prompt_tokens = self._prompt_tokens(prompt)
        constraints = engine_constraints(grammar, logit_bias, logits_processor, typical_p, mirostat_mode,
                                         mirostat_tau, mirostat_eta, temperature, prompt_tokens, self._n_vocab)
        chunks = self._completion(
            prompt, max_tokens, temperature, top_p, min_p, top_k, stop, stream, seed, model, echo, stopping_criteria,
            penalties, logprobs, prompt_tokens, constraints,
        )
        if stream:
            return chunks
        return next(chunks)

    __call__ = create_completion  # same signature and behaviour, as in llama-cpp-python

    def _prompt_tokens(self, prompt: Union[str, List[int]]) -> List[int]:
        # as llama_cpp.Llama._create_completion (no suffix): BOS (llama.cpp's
        # token_cls is the BOS) if the model adds one, then the prompt parsed
        # with special tokens, then EOS/SEP if the model adds one.
        if isinstance(prompt, list):
            return list(prompt)
        bos = [self._bos] if self._add_bos and self._bos != -1 else []
        eos = [self._sep if self._sep != -1 else self._eos] if (self._add_eos or self._sep != -1) else []
        body = self.tokenize(prompt.encode("utf-8"), add_bos=False, special=True) if prompt != "" else []
        return bos + body + eos

    def _next_seed(self, seed: Optional[int]) -> int:
        if seed is not None:
            self.set_seed(seed)
        else:
            self.set_seed(random.Random(self._seed).randint(0, 2**32))
        if self._seed in _RANDOM_SEEDS:
            return random.SystemRandom().getrandbits(64)
        return self._seed & _UINT64

    def _rounds(self, prompt_tokens: List[int], args: tuple, stream: bool, state: dict,
                keep_logits: bool = False, constraints: Optional[dict] = None) -> Iterator[List[int]]:  # fmt: skip
        """The engine's emitted tokens, a round at a time; state["result"] is its
        latest result dict. Round by round (not `generate`) in both modes, so that
        generation ends exactly where llama-cpp-python's would. keep_logits: the
        engine keeps each emitted token's logits row (Session.result_logits)."""
        s = self._session
        if args[7]:  # specbound: the exit head also knows this prompt's tokens
            s.set_candidates(sorted(self._candidates.union(prompt_tokens)))
        s.begin(prompt_tokens, *args, keep_logits=keep_logits, spec_gate=self.spec_gate, **(constraints or {}))
        # a logits processor is lent to the engine call by call, never kept by it
        processor = (constraints or {}).get("processor")
        n = 0
        while True:
            state["result"] = r = s.result(n)
            if r["tokens"]:
                yield r["tokens"]
                n = r["n_tokens"]
            if not s.step(processor):
                state["result"] = s.result(n)
                return

    def _completion(self, prompt, max_tokens, temperature, top_p, min_p, top_k, stop, stream, seed, model, echo,
                    stopping_criteria, penalties, logprobs=None, prompt_tokens=None, constraints=None):  # fmt: skip
        """Generator: the stream chunks, or (stream=False) the one completion dict.
        A port of llama_cpp.Llama._create_completion's text handling."""
        completion_id = f"cmpl-{uuid.uuid4()}"
        created = int(time.time())
        model_name = model if model is not None else self.model_path
        detok = self.detokenize

        def chunk(text, finish_reason=None, logprobs_or_none=None):
            return {
                "id": completion_id, "object": "text_completion", "created": created, "model": model_name,
                "choices": [{"text": text, "index": 0, "logprobs": logprobs_or_none, "finish_reason": finish_reason}],
            }  # fmt: skip

        if prompt_tokens is None:
            prompt_tokens = self._prompt_tokens(prompt)
        # llama-cpp-python: an empty prompt starts the completion with a BOS
        completion_tokens: List[int] = [] if len(prompt) > 0 else [self._bos]
        if prompt_tokens[:2] == [self._bos] * 2:
            warnings.warn(
                f'Detected duplicate leading "{self._piece(self._bos, True).decode("utf-8", "replace")}" in prompt, '
                "this will likely reduce response quality, consider removing it...",
                RuntimeWarning,
            )
        if len(prompt_tokens) == 0:
            raise ValueError("empty prompt: nothing to condition the generation on")
        n_ctx = self._n_ctx
        if len(prompt_tokens) >= n_ctx:
            raise ValueError(f"Requested tokens ({len(prompt_tokens)}) exceed context window of {n_ctx}")
        if max_tokens is None or max_tokens <= 0:
            max_tokens = n_ctx - len(prompt_tokens)
        max_tokens = min(max_tokens, n_ctx - len(prompt_tokens))
        stop_sequences = [s.encode("utf-8") for s in stop]

        with self._hold():
            state: Dict[str, Any] = {}
            try:
                # llama-cpp-python lets a character split over tokens complete past
                # max_tokens (up to 3 more tokens): leave the engine room for that
                n_engine = min(max_tokens + 3, n_ctx - len(prompt_tokens))
                args = self._generation_args(n_engine, temperature, top_k, top_p, min_p, self._next_seed(seed), stop,
                                             *penalties)
                text = b""
                finish_reason = "length"
                multibyte_fix = 0
                returned_tokens = 0
                generated: List[int] = []  # every token sampled, EOG included
                n_eval = None  # how many of `generated` the model evaluated, where llama-cpp-python stops
                # detokenize(completion_tokens) without the leading-space fix
                raw = b"".join(self._piece(t, False) for t in completion_tokens)
                n_prompt = len(prompt_tokens)
                if stopping_criteria is not None:  # llama-cpp-python's input_ids buffer
                    input_ids = np.empty(n_prompt + max_tokens + 1, dtype=np.intc)
                    input_ids[:n_prompt] = prompt_tokens
                prompt_rows = None
                # streamed logprobs: the rows as they come (empty prompt: the BOS has none)
                row_reader = RowReader(self._session, 1 if len(prompt) == 0 else 0)
                if logprobs is not None and echo:
                    # the prompt's own rows (row j predicts token j + 1); the
                    # generation then reuses this prefix from the cache
                    prompt_rows = self._session.eval_logits(prompt_tokens[:-1], 0, False)
                rounds = self._rounds(prompt_tokens, args, stream, state, keep_logits=logprobs is not None,
                                      constraints=constraints or {})
                for batch in rounds:
                    for token in batch:
                        generated.append(token)
                        if stopping_criteria is not None:
                            if n_prompt + len(generated) > len(input_ids):
                                input_ids = np.resize(input_ids, 2 * len(input_ids))
                            input_ids[n_prompt + len(generated) - 1] = token
                        if stopping_criteria is not None and stopping_criteria(
                            input_ids[: n_prompt + len(generated) - 1], None
                        ):
                            n_eval = len(generated) - 1
                            break
                        if self._session.is_eog(token):
                            text = detok(completion_tokens)
                            finish_reason = "stop"
                            n_eval = len(generated) - 1
                            break
                        completion_tokens.append(token)
                        raw += self._piece(token, False)
                        all_text = raw[1:] if completion_tokens[0] == self._bos and raw[:1] == b" " else raw
                        # contains multi-byte UTF-8
                        for k, char in enumerate(all_text[-3:]):
                            k = 3 - k
                            for num, pattern in [(2, 192), (3, 224), (4, 240)]:
                                if num > k and pattern & char == pattern:
                                    multibyte_fix = num - k
                        # stop incomplete bytes from passing
                        if multibyte_fix > 0:
                            multibyte_fix -= 1
                            continue
                        any_stop = [s for s in stop_sequences if s in all_text]
                        if len(any_stop) > 0:
                            text = all_text[: all_text.index(any_stop[0])]
                            finish_reason = "stop"
                            n_eval = len(generated) - 1
                            break
                        if stream:
                            remaining_tokens = completion_tokens[returned_tokens:]
                            remaining_text = detok(remaining_tokens)
                            remaining_length = len(remaining_text)
                            # hold back text that may be the beginning of a stop sequence
                            first_stop_position = 0
                            for s in stop_sequences:
                                for i in range(min(len(s), remaining_length), 0, -1):
                                    if remaining_text.endswith(s[:i]):
                                        if i > first_stop_position:
                                            first_stop_position = i
                                        break
                            token_end_position = 0
                            if logprobs is not None:  # one chunk per token, with its logprobs
                                for token in remaining_tokens:
                                    if token == self._bos:
                                        continue
                                    token_end_position += len(detok([token]))
                                    if token_end_position > (remaining_length - first_stop_position):
                                        break
                                    lp = token_logprobs(detok, prompt, completion_tokens, returned_tokens, token,
                                                        row_reader.row(returned_tokens), logprobs)
                                    returned_tokens += 1
                                    yield chunk(detok([token]).decode("utf-8", errors="ignore"), None, lp)
                                    self._owner = threading.get_ident()
                                remaining_tokens = []
                            while len(remaining_tokens) > 0:
                                decode_success = False
                                for i in range(1, len(remaining_tokens) + 1):
                                    try:
                                        bs = detok(remaining_tokens[:i])
                                        ts = bs.decode("utf-8")
                                        decode_success = True
                                        break
                                    except UnicodeError:
                                        pass
                                if not decode_success:
                                    break
                                token_end_position += len(bs)
                                if token_end_position > (remaining_length - first_stop_position):
                                    break
                                remaining_tokens = remaining_tokens[i:]
                                returned_tokens += i
                                yield chunk(ts)
                                self._owner = threading.get_ident()
                        if len(completion_tokens) >= max_tokens:
                            text = detok(completion_tokens)
                            finish_reason = "length"
                            n_eval = len(generated) - 1
                            break
                    if n_eval is not None:
                        break
                else:
                    # the engine stopped first: end of generation token (which it
                    # drops), stop string, length, or context full
                    text = detok(completion_tokens)
                    finish_reason = state["result"]["finish_reason"] or "length"
                    any_stop = [s for s in stop_sequences if s in text]
                    if any_stop:
                        text = text[: text.index(any_stop[0])]
                        finish_reason = "stop"
                    n_eval = len(generated) - (0 if finish_reason == "stop" and not any_stop else 1)

                if stopping_criteria is not None and stopping_criteria(input_ids[: n_prompt + n_eval], None):
                    text = detok(completion_tokens)
                    finish_reason = "stop"
                self._set_stats(state.get("result"), len(prompt_tokens), len(completion_tokens), finish_reason)
                state["stats"] = True
                if logprobs is not None and not stream:  # llama-cpp-python's self._scores, from the first row it reads
                    rows = self._session.result_logits()
                    scores = rows if prompt_rows is None else np.concatenate([prompt_rows, rows])

                if stream:
                    remaining_tokens = completion_tokens[returned_tokens:]
                    remaining_text = detok(remaining_tokens)
                    any_stop = [s for s in stop_sequences if s in remaining_text]
                    end = min(remaining_text.index(s) for s in any_stop) if any_stop else len(remaining_text)
                    token_end_position = 0
                    for token in remaining_tokens:
                        token_end_position += len(detok([token]))
                        lp = None
                        if logprobs is not None:
                            if token == self._bos:
                                continue
                            lp = token_logprobs(detok, prompt, completion_tokens, returned_tokens, token,
                                                row_reader.row(returned_tokens), logprobs, offset_in_bytes=True)
                        if token_end_position >= end:
                            last_text = detok([token])
                            if token_end_position == end - 1:
                                break
                            returned_tokens += 1
                            last_text = last_text[: len(last_text) - (token_end_position - end)]
                            yield chunk(last_text.decode("utf-8", errors="ignore"), None, lp)
                            self._owner = threading.get_ident()
                            break
                        returned_tokens += 1
                        yield chunk(detok([token]).decode("utf-8", errors="ignore"), None, lp)
                        self._owner = threading.get_ident()
                    yield chunk("", finish_reason)
                    return
            finally:
                # a logits processor's closure may reach this object: the engine
                # must not keep it (an uncollectable cycle through C++)
                self._session.release_constraints()
                if "stats" not in state and state.get("result") is not None:
                    # interrupted or closed early: still record what was done
                    self._set_stats(state["result"], len(prompt_tokens), len(completion_tokens))

        text_str = text.decode("utf-8", errors="ignore")
        if echo:
            echoed = prompt if isinstance(prompt, str) else detok(prompt).decode("utf-8", errors="ignore")
            text_str = echoed + text_str
        logprobs_or_none = None
        if logprobs is not None:
            logprobs_or_none = self._logprobs(prompt, prompt_tokens, completion_tokens, scores, logprobs, echo)
        yield {
            "id": completion_id,
            "object": "text_completion",
            "created": created,
            "model": model_name,
            "choices": [{"text": text_str, "index": 0, "logprobs": logprobs_or_none, "finish_reason": finish_reason}],
            "usage": {
                "prompt_tokens": len(prompt_tokens),
                "completion_tokens": len(completion_tokens),
                "total_tokens": len(prompt_tokens) + len(completion_tokens),
            },
        }

    def _logprobs(self, prompt, prompt_tokens, completion_tokens, scores, n_top: int, echo: bool) -> dict:
        """The completion's `logprobs`, a port of llama_cpp.Llama._create_completion's
        (same offsets, same quirks: the echoed first token gets None, ties in the
        top list go to the higher token id). scores: its self._scores rows from the
        first one it reads (echo: the prompt's; otherwise the completion's)."""
        detok = self.detokenize
        bos = self._bos
        text_offset = 0 if echo else len(prompt)
        if echo:
            all_tokens = prompt_tokens[1 if prompt_tokens[0] == bos else 0:] + completion_tokens
        else:
            all_tokens = completion_tokens
        all_token_strs = [detok([t]).decode("utf-8", errors="ignore") for t in all_tokens]
        all_logprobs = llama_cpp.Llama.logits_to_logprobs(scores)
        text_offsets, token_logprobs, tokens, top_logprobs = [], [], [], []
        for idx, (token, token_str, lp) in enumerate(zip(all_tokens, all_token_strs, all_logprobs)):
            if token == bos:
                continue
            text_offsets.append(text_offset + len(detok(all_tokens[:idx]).decode("utf-8", errors="ignore")))
            tokens.append(token_str)
            token_logprobs.append(lp[int(token)])
            # llama-cpp-python sorts (logprob, id) pairs, descending: the same order here
            k = min(n_top, len(lp))
            top = []
            if k > 0:
                cut = np.partition(lp, len(lp) - k)[len(lp) - k]
                ids = np.nonzero(lp >= cut)[0]
                top = sorted(zip(lp[ids], ids), reverse=True)[:k]
            top_logprob = {detok([int(i)]).decode("utf-8", errors="ignore"): v for v, i in top}
            top_logprob.update({token_str: lp[int(token)]})
            top_logprobs.append(top_logprob)
        if echo and len(all_tokens) > 0:
            token_logprobs[0] = None
            top_logprobs[0] = None
        return {"tokens": tokens, "text_offset": text_offsets, "token_logprobs": token_logprobs,
                "top_logprobs": top_logprobs}  # fmt: skip

    def _set_stats(self, result: Optional[dict], n_prompt: int, n_completion: int, finish_reason=None) -> None:
        if result is None:
            return
        decode_ms = float(result["decode_ms"])
        n_decoded = max(result.get("n_tokens", len(result["tokens"])) - 1, 0)  # first token: prompt pass
        stats = {
            "prompt_tokens": n_prompt,
            "prompt_tokens_reused": result["n_prompt_reused"],
            "completion_tokens": n_completion,
            "prompt_ms": float(result["prompt_ms"]),
            "decode_ms": decode_ms,
            "tokens_per_second": n_decoded / (decode_ms / 1000.0) if decode_ms > 0 else 0.0,
            "rounds": result["rounds"],
            "specbound": self._use_specbound(),
            "specbound_source": self.specbound_source,
            "invariance": self.invariance,
            "kernels": self.kernels,
            "finish_reason": finish_reason,  # None: interrupted
        }
        stats.update({k: v for k, v in result.items() if k not in _RESULT_KEYS})
        if stats["specbound"]:  # counters of the generation that just ran
            stats.update(self._session.spec_stats())
        self.last_stats = stats
        if self.verbose:
            print(
                f"specbound_cpp: prompt {n_prompt} tokens ({stats['prompt_tokens_reused']} reused) in "
                f"{stats['prompt_ms']:.1f} ms; {n_decoded} tokens in {decode_ms:.1f} ms "
                f"({stats['tokens_per_second']:.1f} tokens/s, {stats['rounds']} rounds)",
                file=sys.stderr,
            )

    # --- chat -----------------------------------------------------------------------

    def _chat_handler(self):
        if self.chat_handler is not None:
            return self.chat_handler
        handler = self._chat_handlers.get(self.chat_format)
        return handler or llama_chat_format.get_chat_completion_handler(self.chat_format)

    def create_chat_completion(
        self,
        messages: List[Dict[str, Any]],
        functions: Optional[List[Dict[str, Any]]] = None,
        function_call: Optional[Any] = None,
        tools: Optional[List[Dict[str, Any]]] = None,
        tool_choice: Optional[Any] = None,
        temperature: float = 0.2,
        top_p: float = 0.95,
        top_k: int = 40,
        min_p: float = 0.05,
        typical_p: float = 1.0,
        stream: bool = False,
        stop: Optional[Union[str, List[str]]] = [],
        seed: Optional[int] = None,
        response_format: Optional[Dict[str, Any]] = None,
        max_tokens: Optional[int] = None,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        repeat_penalty: float = 1.0,
        tfs_z: float = 1.0,
        mirostat_mode: int = 0,
        mirostat_tau: float = 5.0,
        mirostat_eta: float = 0.1,
        model: Optional[str] = None,
        logits_processor: Optional[Any] = None,
        grammar: Optional[Any] = None,
        logit_bias: Optional[Dict[int, float]] = None,
        logprobs: Optional[bool] = None,
        top_logprobs: Optional[int] = None,
    ):
        """Chat completion, like llama_cpp.Llama.create_chat_completion: the messages
        are formatted by llama-cpp-python's handler for `self.chat_format` (by
        default the GGUF's own template) and completed by `create_completion`."""
        return self._chat_handler()(
            llama=self, messages=messages, functions=functions, function_call=function_call, tools=tools,
            tool_choice=tool_choice, temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p,
            typical_p=typical_p, logprobs=logprobs, top_logprobs=top_logprobs, stream=stream, stop=stop,
            seed=seed, response_format=response_format, max_tokens=max_tokens,
            presence_penalty=presence_penalty, frequency_penalty=frequency_penalty,
            repeat_penalty=repeat_penalty, tfs_z=tfs_z, mirostat_mode=mirostat_mode,
            mirostat_tau=mirostat_tau, mirostat_eta=mirostat_eta, model=model,
            logits_processor=logits_processor, grammar=grammar, logit_bias=logit_bias,
        )  # fmt: skip
