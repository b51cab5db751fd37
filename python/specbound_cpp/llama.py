"""`Llama`: a drop-in for `llama_cpp.Llama` (same names, keyword arguments,
defaults and OpenAI-shaped results) that decodes with the specbound_cpp engine.

`Llama` holds the signatures, checks the arguments (llama_checks) and
delegates: the text side of a completion (stop strings, held-back text while
streaming, incomplete UTF-8, finish reasons) is text_stream's port of
llama-cpp-python 0.3.36's `Llama._create_completion`, fed with the tokens the
engine emits round by round, so that both libraries turn the same tokens into
the same text and the same stream chunks; logprobs come from logprobs, the
SpecBound set-up from specbound_setup. Chat completions go through
llama-cpp-python's own chat handlers (the GGUF's Jinja2 template, or a
registered `chat_format`), which call back into `create_completion` here.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import random
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

import llama_cpp
import numpy as np
from llama_cpp import llama_chat_format

from . import _core
from . import embeddings as _embeddings
from . import llama_checks as checks
from . import rpc as _rpc
from .constraints import engine_constraints
from .logprobs import RowReader, completion_logprobs, token_logprobs
from .params import generate_params, sampling_params, stats_dict
from .specbound_setup import check_invariance, setup_specbound
from .text_stream import CompletionText, CriteriaInput, completion_text, final_text

__all__ = ["Llama"]

_UINT64 = (1 << 64) - 1
_RANDOM_SEEDS = (-1, llama_cpp.LLAMA_DEFAULT_SEED)  # llama.cpp: draw a random seed
_LLAMA_CPP_PYTHON_FIM_TOKEN = 0  # see Llama._infill_layout


@dataclass
class _Request:
    """One completion's arguments, checked."""

    prompt: Union[str, List[int]]
    prompt_tokens: List[int]
    max_tokens: Optional[int]
    sampling: Dict[str, Any]  # sampling_params() keyword arguments, but the seed
    seed: Optional[int]
    stop: List[str]
    stream: bool
    echo: bool
    logprobs: Optional[int]
    stopping_criteria: Any
    constraints: _core.ConstraintParams
    processor: Optional[Callable]  # lent to the engine call by call, never kept by it
    model: Optional[str]


class Llama:
    """High-level model object, like `llama_cpp.Llama`, driving `_core.Session`.

    Extra keyword arguments: `specbound` (decode with exact self-speculation;
    the output is the same either way. None: where the run-time invariance
    check holds, else plain decoding; True: raise RuntimeError where it fails)
    and the SpecBound options `alpha`,
    `tau`, `exit_layers`, `d_max`, `w_max` (None: the engine's default),
    `ngram` (draft from the n-gram pool, before early exit: the continuation
    of the longest key of up to `ngram` tokens, 2 to 24, that ends the text,
    chained up to 64 drafts, as many as pay at this machine's price per width;
    default 24, 0: off), `ngram_pool_mb` (the pool's memory bound, default 16
    MiB: the n-grams of every request's prompt and output on this object, so
    that a later request drafts from earlier ones; `reset_ngram_pool()`
    empties it, `reset()` keeps it),
    `exit_decision` (the weights of a learned exit
    decision, as calibration fits them: tau then bounds its predicted
    probability that a shallow draft is right; []: the annealed confidence),
    `tau_step` (the threshold moves by this much after each early-exit round
    whose acceptance was below / at least tau, within tau +- 0.1; default 0:
    fixed) and `spec_gate` (the online gate: plain rounds while speculation is
    behind; default True).
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
        exit_decision: Optional[Sequence[float]] = None,
        tau_step: Optional[float] = None,
        spec_gate: bool = True,
        ngram_pool_mb: float = 16,
        # ggml's RPC backend: workers (python -m specbound_cpp.rpc_server) the
        # offloaded layers are split over, and how long an answer may take
        rpc_servers: Union[None, str, Sequence[str]] = None,
        rpc_timeout: float = 300.0,
        # llama.cpp options that no longer exist, which frameworks still pass
        # (LangChain's LlamaCpp: n_parts, f16_kv); llama-cpp-python ignores them
        **obsolete: Any,
    ):
        checks.refuse_model_changes(obsolete, {
            "lora_base": lora_base is not None, "draft_model": draft_model is not None,
            "tokenizer": tokenizer is not None,
        })  # fmt: skip
        checks.check_load_args(n_ctx, n_batch, n_gpu_layers, n_threads, n_threads_batch, seed)
        self._check_cache_options(type_k, type_v, kv_overrides, vocab_only, n_gpu_layers)
        # rope and YaRN options as llama.cpp applies them (the model's own by default)
        self._rope = checks.rope_overrides(rope_scaling_type, rope_freq_base, rope_freq_scale, yarn_ext_factor,
                                           yarn_attn_factor, yarn_beta_fast, yarn_beta_slow, yarn_orig_ctx)
        self._check_placement(rpc_servers, rpc_timeout, tensor_split, n_gpu_layers)
        path = checks.resolve_model_path(model_path, verbose)
        self.model_path = path
        # a GGUF LoRA adapter, applied in the engine's graph as llama.cpp applies it
        self.lora_base, self.lora_path, self.lora_scale = lora_base, lora_path, lora_scale
        self._lora = checks.lora_args(lora_path, lora_scale, n_gpu_layers)
        self.verbose = verbose
        self.n_threads = n_threads or max(multiprocessing.cpu_count() // 2, 1)
        self.n_threads_batch = n_threads_batch or multiprocessing.cpu_count()
        self.n_gpu_layers = n_gpu_layers
        # attention with llama.cpp's flash-attention op or without (its default)
        self.flash_attn = bool(flash_attn)
        self._seed = seed or llama_cpp.LLAMA_DEFAULT_SEED
        self._logits_all = logits_all
        self.last_n_tokens_size = last_n_tokens_size
        self.spm_infill = spm_infill  # infill layout: suffix before prefix (as llama-cpp-python)
        self.specbound = specbound is None or bool(specbound)
        self._specbound_explicit = specbound is not None and bool(specbound)
        # the online gate: plain rounds while speculation is behind on the text at hand
        self.spec_gate = bool(spec_gate)
        self.last_stats: Dict[str, Any] = {}
        # The session is used by one call at a time. A streaming generation holds
        # it from its first chunk until it is exhausted or closed, and may be
        # resumed from any thread, so this is not a thread-owned lock: _owner is
        # the thread that last drove the holder (which must not wait for itself).
        self._cond = threading.Condition(threading.Lock())
        self._owner: Optional[int] = None
        self._pieces: Dict[bool, Dict[int, bytes]] = {False: {}, True: {}}
        self._reload_pending = False  # an RPC worker failed: load again before the next call (_reload)
        self._load_args = (path, n_ctx, n_batch, 0x7FFFFFFF if n_gpu_layers == -1 else n_gpu_layers, verbose)
        if self.vocab_only:
            self._open_vocab(path, n_ctx, n_batch, verbose)
        else:
            self._open(*self._load_args)
        self.context_params = self._context_params(n_ctx, n_ubatch)
        self._setup_chat(chat_format, chat_handler)
        # embedding=True: embed / create_embedding, pooled as llama.cpp's context would (embeddings.py)
        self.embedding = bool(embedding)
        self._pooling = _embeddings.resolve_pooling(pooling_type, self.metadata)
        overrides = dict(alpha=alpha, tau=tau, exit_layers=exit_layers, d_max=d_max, w_max=w_max, ngram=ngram,
                         exit_decision=exit_decision, tau_step=tau_step)  # fmt: skip
        if self.vocab_only:  # no engine to speculate with
            self._spec = self.specbound_params = self._candidates = self.specbound_source = self.invariance = None
            self._spec_active = False
            return
        self._spec_overrides = {k: v for k, v in overrides.items() if v is not None}
        if not ngram_pool_mb > 0:
            raise ValueError(f"ngram_pool_mb must be > 0, got {ngram_pool_mb!r}")
        self._ngram_pool_bytes = int(ngram_pool_mb * 2**20)
        self._start_speculation()

    def _start_speculation(self) -> None:
        """SpecBound on a freshly loaded session (at construction, and again
        after an RPC reload): its parameters and verdict, the n-gram pool's bound."""
        self._setup_specbound(self.model_path, self._spec_overrides)
        self._session.set_ngram_pool_bytes(self._ngram_pool_bytes)

    def _check_cache_options(self, type_k, type_v, kv_overrides, vocab_only, n_gpu_layers: int) -> None:
        # the KV cache's types (the engine refuses what llama.cpp refuses, ValueError)
        self._type_k, self._type_v = checks.kv_cache_types(type_k, type_v, n_gpu_layers)
        # metadata overrides, seen by our GGUF reader and libllama's vocabulary alike
        self.kv_overrides = kv_overrides
        self._kv_overrides = checks.kv_override_list(kv_overrides)
        self.vocab_only = bool(vocab_only)

    def _check_placement(self, rpc_servers, rpc_timeout, tensor_split, n_gpu_layers: int) -> None:
        # where offloaded layers go: RPC workers (rpc.py), split by tensor_split or free memory
        self._rpc = _rpc.parse_servers(rpc_servers)
        self._rpc_timeout = _rpc.rpc_timeout_checked(rpc_timeout)
        self._tensor_split = checks.tensor_split_checked(tensor_split)
        if self._rpc and n_gpu_layers == 0:
            raise ValueError("rpc_servers places offloaded layers on the workers: set n_gpu_layers (-1: all layers)")

    def _open_session(self, path: str, n_ctx: int, n_batch: int, ngl: int, verbose: bool):
        # a worker that does not answer: our error, before ggml's client sees it
        _rpc.check_reachable(self._rpc, min(self._rpc_timeout, 10.0))
        try:
            return _core.Session(path, n_ctx, n_batch, self.n_threads, self.n_threads_batch, ngl, bool(verbose),
                                 flash_attn=self.flash_attn, rope=self._rope, type_k=self._type_k,
                                 type_v=self._type_v, kv_overrides=self._kv_overrides, lora_path=self._lora[0],
                                 lora_scale=self._lora[1], rpc_servers=self._rpc, tensor_split=self._tensor_split,
                                 rpc_timeout=self._rpc_timeout)
        except ValueError as e:
            checks.raise_lora_error(e)
            raise
        except (RuntimeError, MemoryError, ConnectionError):
            raise
        except Exception as e:  # e.g. IndexError/OverflowError from C++
            raise RuntimeError(f"failed to load {path}: {e}") from e

    def _open(self, path: str, n_ctx: int, n_batch: int, ngl: int, verbose: bool) -> None:
        """Loads the model (n_ctx=0: its training context) and reads what the
        completions need from it."""
        if n_ctx == 0:  # the model's training context
            probe = self._open_session(path, 256, 256, ngl, verbose)
            n_ctx = self._n_ctx_train(path, dict(probe.metadata()))
            del probe
        # llama.cpp rounds the context up to a multiple of 256 (llama_context)
        self.n_batch = min(n_ctx, n_batch)
        self._session = s = self._open_session(path, -(-n_ctx // 256) * 256, self.n_batch, ngl, verbose)
        self._n_ctx, self._n_vocab = s.n_ctx, s.n_vocab
        self._bos, self._eos, self._add_bos = s.token_bos, s.token_eos, bool(s.add_bos)
        self.metadata: Dict[str, str] = dict(s.metadata())
        # decode matmul path per weight type, decided at load by a bitwise
        # self-check of our kernels against ggml's vec_dot (see README)
        self.kernels: Dict[str, str] = dict(s.kernels())
        if verbose:
            print("specbound_cpp: decode kernels: " + ", ".join(f"{t} -> {k}" for t, k in self.kernels.items()),
                  file=sys.stderr)
            print(f"specbound_cpp: KV cache K {self._type_name(self._type_k)}, V {self._type_name(self._type_v)}: "
                  f"{s.kv_bytes_per_token} bytes per token", file=sys.stderr)
        self._read_special_flags()

    def _read_special_flags(self) -> None:
        """Not in the binding: what libllama would report, from the metadata
        (the file's, as `metadata` shows it) under kv_overrides, as libllama reads it."""
        md = {**self.metadata, **{k: str(v).lower() if isinstance(v, bool) else str(v)
                                  for k, v in (self.kv_overrides or {}).items()}}  # fmt: skip
        self._add_eos = md.get("tokenizer.ggml.add_eos_token", "false") == "true"
        self._sep = int(md.get("tokenizer.ggml.seperator_token_id", -1))

    def _n_ctx_train(self, path: str, md: Dict[str, str]) -> int:
        """n_ctx=0: the training context, overridden by kv_overrides as llama.cpp reads it."""
        key = f"{md.get('general.architecture', '')}.context_length"
        v = (self.kv_overrides or {}).get(key)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        try:
            return int(md[key])
        except (KeyError, ValueError):
            raise ValueError(f"{path}: n_ctx=0 but the GGUF has no context_length") from None

    def _open_vocab(self, path: str, n_ctx: int, n_batch: int, verbose: bool) -> None:
        """vocab_only=True: libllama's vocabulary alone (vocab_only.py); n_ctx
        as llama-cpp-python's context reports it."""
        from . import _core
        from .vocab_only import VocabOnlySession

        vocab = _core.Vocab(path, bool(verbose), kv_overrides=self._kv_overrides)
        self.metadata = dict(vocab.metadata())
        if n_ctx == 0:
            n_ctx = self._n_ctx_train(path, self.metadata)
        self.n_batch = min(n_ctx, n_batch)
        self._session = s = VocabOnlySession(vocab, -(-n_ctx // 256) * 256)
        self._n_ctx, self._n_vocab = s.n_ctx, s.n_vocab
        self._bos, self._eos, self._add_bos = s.token_bos, s.token_eos, bool(s.add_bos)
        self.kernels = {}
        self._read_special_flags()

    @staticmethod
    def _type_name(t: int) -> str:
        names = {v: k[len("GGML_TYPE_"):].lower() for k, v in vars(llama_cpp).items() if k.startswith("GGML_TYPE_")}
        names[30] = "bf16"  # not among llama_cpp 0.3.36's constants
        return names.get(t, str(t))

    @property
    def kv_bytes_per_token(self) -> int:
        """Bytes of KV cache one position takes, all layers, keys and values, in
        the type_k / type_v asked for: n_layer * (row size of type_k + row size
        of type_v), a row being head_dim * n_head_kv values."""
        return int(self._session.kv_bytes_per_token)

    def _context_params(self, n_ctx: int, n_ubatch: int):
        """llama-cpp-python's `context_params` as its Llama fills them for the
        same arguments (n_ctx as asked; 0: the training context): frameworks
        read them (LlamaIndex's LlamaCPP takes its context window from n_ctx)."""
        p = llama_cpp.llama_context_default_params()
        md = self.metadata
        p.n_ctx = n_ctx if n_ctx != 0 else self._n_ctx_train(self.model_path, md)
        p.n_batch = self.n_batch
        p.n_ubatch = min(self.n_batch, n_ubatch)
        p.n_threads, p.n_threads_batch = self.n_threads, self.n_threads_batch
        p.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if self.flash_attn
                             else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)  # fmt: skip
        p.type_k, p.type_v = self._type_k, self._type_v
        return p

    def _setup_chat(self, chat_format: Optional[str], chat_handler: Any) -> None:
        """Chat formats, chosen exactly as llama_cpp.Llama chooses them."""
        md = self.metadata
        self.chat_handler = chat_handler
        self._templates = {k[10:]: v for k, v in md.items() if k.startswith("tokenizer.chat_template.")}
        default_template = md.get("tokenizer.chat_template") or self._session.chat_template
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

    def _setup_specbound(self, path: str, overrides: Dict[str, Any]) -> None:
        """SpecBound parameters (specbound_setup): engine defaults, then the
        calibrated profile of this model file (if any), then the caller's
        keyword arguments; then the invariance check, where it will run."""
        setup = setup_specbound(self._session, path, self._n_vocab, self.specbound, overrides)
        self._spec = setup.spec
        self.specbound_params = setup.params
        check_invariance(setup, self._session, path, self.n_threads, self._specbound_explicit, self.verbose)
        self._candidates = setup.candidates
        self.specbound_source = setup.source
        self._spec_active = setup.active
        self.invariance: Optional[Dict[str, Any]] = setup.invariance

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

    def pooling_type(self) -> int:
        """The pooling of embeddings (llama_pooling_type), as llama_cpp.Llama.pooling_type()."""
        return self._pooling

    def embed(self, input: Union[str, List[str]], normalize: bool = False, truncate: bool = True,
              return_count: bool = False):
        """llama_cpp.Llama.embed (needs embedding=True): embeddings.py."""
        return _embeddings.embed(self, input, normalize, truncate, return_count)

    def create_embedding(self, input: Union[str, List[str]], model: Optional[str] = None) -> Dict[str, Any]:
        """llama_cpp.Llama.create_embedding (needs embedding=True)."""
        return _embeddings.create_embedding(self, input, model)

    def _embeddings(self, tokens: List[int], pooling: int):
        with self._hold():
            return self._session.embeddings(tokens, pooling, self.n_batch)

    def reset(self):
        """Forget the cached prompt prefix. The n-gram pool of lookup drafts
        stays (`reset_ngram_pool()` empties it): drafts never change the text,
        so a reset model writes what a freshly loaded one writes."""
        with self._hold():
            self._session.reset()

    def reset_ngram_pool(self):
        """Empty the n-gram pool: later requests draft only from their own text
        until the pool fills again (the text is the same either way)."""
        with self._hold():
            self._session.reset_ngram_pool()

    @property
    def ngram_pool(self) -> Dict[str, Any]:
        """The n-gram pool of lookup drafts: its memory bound (`bytes`, `slots`
        of 8 bytes), the slots holding a key (`used`), the text positions fed
        since it was last emptied (`fed`; a prompt fed again counts again) and
        whether its memory is taken yet
        (`allocated`: on the first speculative request)."""
        return dict(self._session.ngram_pool)

    @property
    def last_completion_tokens(self) -> List[int]:
        """The token ids of the last completion (as many as
        `last_stats["completion_tokens"]`; [] before the first), for tools
        that compare outputs token by token. Not in llama-cpp-python."""
        with self._hold():
            return list(self._session.result().tokens[: self.last_stats.get("completion_tokens", 0)])

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
            if self._reload_pending or self._session.broken:
                self._reload()
            yield
        finally:
            with self._cond:
                self._owner = None
                self._cond.notify_all()

    def _reload(self) -> None:
        """RPC: a worker failed during an earlier call, which raised RpcError;
        the model is loaded again, over the same workers (they must answer)."""
        if self.verbose:
            print("specbound_cpp: an RPC worker failed earlier; loading the model again", file=sys.stderr)
        # until a load succeeds, every call tries again (and raises while a worker is down)
        self._reload_pending = True
        # The broken session lets go of the workers first (a worker serves one
        # client at a time) and stays until a load succeeds: its vocabulary
        # serves tokenize() meanwhile.
        self._session.release_devices()
        self._open(*self._load_args)
        self._start_speculation()
        self._reload_pending = False

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
        stop = checks.stop_list(stop)
        checks.check_sampling_args(temperature, top_p, min_p, top_k, max_tokens, seed)
        checks.check_logprobs(logprobs, self._logits_all)
        if suffix is not None and not isinstance(suffix, str):
            raise TypeError(f"suffix must be a str or None, got {type(suffix).__name__}")
        checks.check_penalties(repeat_penalty, frequency_penalty, presence_penalty)
        if isinstance(prompt, list):
            prompt = checks.prompt_token_ids(prompt, self._n_vocab)
        # grammar / JSON mode, logit bias, logits processors, typical, mirostat:
        # checked here, applied by the engine at each position it emits
        prompt_tokens = self._prompt_tokens(prompt, suffix)
        constraints, processor = engine_constraints(grammar, logit_bias, logits_processor, typical_p, mirostat_mode,
                                                    mirostat_tau, mirostat_eta, temperature, prompt_tokens,
                                                    self._n_vocab)  # fmt: skip
        sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, repeat_penalty=repeat_penalty,
                        frequency_penalty=frequency_penalty, presence_penalty=presence_penalty)  # fmt: skip
        chunks = self._completion(_Request(prompt, prompt_tokens, max_tokens, sampling, seed, stop, stream, echo,
                                           logprobs, stopping_criteria, constraints, processor, model))  # fmt: skip
        if stream:
            return chunks
        return next(chunks)

    __call__ = create_completion  # same signature and behaviour, as in llama-cpp-python

    def _prompt_tokens(self, prompt: Union[str, List[int]], suffix: Optional[str]) -> List[int]:
        # as llama_cpp.Llama._create_completion: BOS (llama.cpp's token_cls is
        # the BOS) if the model adds one, then the prompt (parsed with special
        # tokens unless infilling), then EOS/SEP if the model adds one. A token
        # list without suffix is taken as it is.
        if isinstance(prompt, list) and suffix is None:
            return list(prompt)
        bos = [self._bos] if self._add_bos and self._bos != -1 else []
        eos = [self._sep if self._sep != -1 else self._eos] if (self._add_eos or self._sep != -1) else []
        if isinstance(prompt, list):
            body = list(prompt)
        else:
            special = suffix is None
            body = self.tokenize(prompt.encode("utf-8"), add_bos=False, special=special) if prompt != "" else []
        if suffix is not None:
            body = self._infill_layout(body, suffix)
        return bos + body + eos

    def _infill_layout(self, prefix: List[int], suffix: str) -> List[int]:
        """llama-cpp-python 0.3.36's fill-in-the-middle layout, which we follow
        token for token so that infill writes the same text: prefix, suffix and
        middle marks around the two parts (suffix first with spm_infill). Its
        marks are token id 0 whatever the model (its token_prefix() calls are
        commented out, "TODO: Fix"), not the GGUF's FIM tokens."""
        mark = _LLAMA_CPP_PYTHON_FIM_TOKEN
        suffix_body: List[int] = []
        if suffix:
            if self.metadata.get("tokenizer.ggml.add_space_prefix", "true") == "true":
                # its "tokenizer hack to remove leading space": tokenize "☺" +
                # suffix, then drop the first two tokens, whatever they are
                tokens = self.tokenize(("\u263a" + suffix).encode("utf-8"), add_bos=False, special=False)
                suffix_body = tokens[2:]
            else:
                suffix_body = self.tokenize(suffix.encode("utf-8"), add_bos=False, special=False)
        prefix_part, suffix_part = [mark] + prefix, [mark] + suffix_body
        return (suffix_part + prefix_part if self.spm_infill else prefix_part + suffix_part) + [mark]

    def _next_seed(self, seed: Optional[int]) -> int:
        if seed is not None:
            self.set_seed(seed)
        else:
            self.set_seed(random.Random(self._seed).randint(0, 2**32))
        if self._seed in _RANDOM_SEEDS:
            return random.SystemRandom().getrandbits(64)
        return self._seed & _UINT64

    def _generate_params(self, req: _Request, max_tokens: int):
        """The engine's GenerateParams for this request (draws its seed). The
        penalties are exact under speculation too (verification applies them)."""
        sampling = sampling_params(seed=self._next_seed(req.seed), penalty_last_n=int(self.last_n_tokens_size),
                                   **req.sampling)  # fmt: skip
        return generate_params(max_tokens, sampling, stop=req.stop, specbound=self._use_specbound(), spec=self._spec,
                               keep_logits=req.logprobs is not None, spec_gate=self.spec_gate,
                               constraints=req.constraints)  # fmt: skip

    def _rounds(self, prompt_tokens: List[int], params, processor: Optional[Callable],
                state: dict) -> Iterator[List[int]]:  # fmt: skip
        """The engine's emitted tokens, a round at a time (so that generation
        ends exactly where llama-cpp-python's would); state["begun"] once the
        engine holds a result. With params.keep_logits the engine keeps each
        emitted token's logits row (Session.result_logits)."""
        s = self._session
        if params.specbound:  # the exit head also knows this prompt's tokens
            s.set_candidates(sorted(self._candidates.union(prompt_tokens)))
        s.begin(prompt_tokens, params, processor)
        state["begun"] = True
        n = 0
        while True:
            new = s.new_tokens(n)
            if new:
                yield new
                n += len(new)
            if not s.step(processor):
                return

    def _start(self, req: _Request) -> tuple:
        """(completion tokens so far, max_tokens) of a request, checked against the context."""
        prompt_tokens = req.prompt_tokens
        # llama-cpp-python: an empty prompt starts the completion with a BOS
        completion_tokens: List[int] = [] if len(req.prompt) > 0 else [self._bos]
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
        max_tokens = req.max_tokens
        if max_tokens is None or max_tokens <= 0:
            max_tokens = n_ctx - len(prompt_tokens)
        return completion_tokens, min(max_tokens, n_ctx - len(prompt_tokens))

    def _completion(self, req: _Request) -> Iterator[dict]:
        """Generator: the stream chunks, or (stream=False) the one completion dict."""
        completion_id = f"cmpl-{uuid.uuid4()}"
        created = int(time.time())
        model_name = req.model if req.model is not None else self.model_path

        def chunk(text, finish_reason=None, logprobs_or_none=None):
            return {
                "id": completion_id, "object": "text_completion", "created": created, "model": model_name,
                "choices": [{"text": text, "index": 0, "logprobs": logprobs_or_none, "finish_reason": finish_reason}],
            }  # fmt: skip

        completion_tokens, max_tokens = self._start(req)
        with self._hold():
            text, scores = yield from self._run(req, completion_tokens, max_tokens, chunk)
        if req.stream:
            return
        text_str = final_text(text.text, req.prompt, req.echo, self.detokenize)
        logprobs_or_none = None
        if req.logprobs is not None:
            logprobs_or_none = completion_logprobs(self.detokenize, self._bos, req.prompt, req.prompt_tokens,
                                                   completion_tokens, scores, req.logprobs, req.echo)  # fmt: skip
        n_prompt, n_completion = len(req.prompt_tokens), len(completion_tokens)
        result = chunk(text_str, text.finish_reason, logprobs_or_none)
        result["usage"] = {"prompt_tokens": n_prompt, "completion_tokens": n_completion,
                           "total_tokens": n_prompt + n_completion}  # fmt: skip
        yield result

    def _run(self, req: _Request, completion_tokens: List[int], max_tokens: int, chunk: Callable):
        """With the session held: generates, yields the stream's chunks, records
        last_stats; returns (the CompletionText, the logprobs' score rows)."""
        state: Dict[str, Any] = {}
        n_prompt = len(req.prompt_tokens)
        try:
            # llama-cpp-python lets a character split over tokens complete past
            # max_tokens (up to 3 more tokens): leave the engine room for that
            params = self._generate_params(req, min(max_tokens + 3, self._n_ctx - n_prompt))
            text = self._completion_text(req, completion_tokens, max_tokens)
            prompt_rows = None
            if req.logprobs is not None and req.echo:
                # the prompt's own rows (row j predicts token j + 1); the
                # generation then reuses this prefix from the cache
                prompt_rows = self._session.eval_logits(req.prompt_tokens[:-1], 0, False)
            batches = self._rounds(req.prompt_tokens, params, req.processor, state)
            for piece in completion_text(text, batches, lambda: self._session.result().finish_reason):
                yield chunk(*piece)
                self._owner = threading.get_ident()
            self._set_stats(self._session.result(), n_prompt, len(completion_tokens), text.finish_reason)
            state["stats"] = True
            scores = None
            if req.logprobs is not None and not req.stream:  # llama-cpp-python's self._scores, from the first row it reads
                rows = self._session.result_logits()
                scores = rows if prompt_rows is None else np.concatenate([prompt_rows, rows])
            if req.stream:
                for piece in text.flush():
                    yield chunk(*piece)
                    self._owner = threading.get_ident()
            return text, scores
        finally:
            # a logits processor's closure may reach this object: the engine
            # must not keep it (an uncollectable cycle through C++)
            self._session.release_constraints()
            if "stats" not in state and state.get("begun"):
                # interrupted or closed early: still record what was done
                self._set_stats(self._session.result(), n_prompt, len(completion_tokens))

    def _completion_text(self, req: _Request, completion_tokens: List[int], max_tokens: int) -> CompletionText:
        criteria = None
        if req.stopping_criteria is not None:  # llama-cpp-python's input_ids buffer
            criteria = CriteriaInput(req.stopping_criteria, req.prompt_tokens, max_tokens)
        lp = None
        if req.logprobs is not None:
            # streamed logprobs: the rows as they come (empty prompt: the BOS has none)
            rows = RowReader(self._session, 1 if len(req.prompt) == 0 else 0)

            def lp(returned: int, token: int, offset_in_bytes: bool) -> dict:
                return token_logprobs(self.detokenize, req.prompt, completion_tokens, returned, token,
                                      rows.row(returned), req.logprobs, offset_in_bytes=offset_in_bytes)  # fmt: skip

        return CompletionText(self.detokenize, lambda t: self._piece(t, False), self._session.is_eog, self._bos,
                              completion_tokens, req.stop, max_tokens, req.stream, criteria, lp)  # fmt: skip

    def _set_stats(self, result, n_prompt: int, n_completion: int, finish_reason=None) -> None:
        """last_stats from the engine's GenerateResult (and its SpecBound counters)."""
        decode_ms = float(result.decode_ms)
        n_decoded = max(result.n_tokens - 1, 0)  # first token: prompt pass
        stats = {
            "prompt_tokens": n_prompt,
            "prompt_tokens_reused": result.n_prompt_reused,
            "completion_tokens": n_completion,
            "prompt_ms": float(result.prompt_ms),
            "decode_ms": decode_ms,
            "tokens_per_second": n_decoded / (decode_ms / 1000.0) if decode_ms > 0 else 0.0,
            "rounds": result.rounds,
            "specbound": self._use_specbound(),
            "specbound_source": self.specbound_source,
            "invariance": self.invariance,
            "kernels": self.kernels,
            "finish_reason": finish_reason,  # None: interrupted
        }
        if stats["specbound"]:  # counters of the generation that just ran
            stats.update(stats_dict(self._session))
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
