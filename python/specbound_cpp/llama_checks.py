"""Argument checks of `Llama` and `Llama.create_completion`: what
llama-cpp-python accepts is accepted, options that would change the model or
its outputs are refused (NotImplementedError) rather than ignored, and values
it would fail on later are refused at once, with the same exception types."""

from __future__ import annotations

import numbers
import os
from typing import Any, Dict, List, Optional, Tuple, Union

import llama_cpp
import numpy as np

from . import models as _models

# llama.cpp context options removed long ago, still passed by frameworks (LangChain's
# LlamaCpp passes n_parts and f16_kv): accepted and ignored, as llama-cpp-python does
OBSOLETE_OPTIONS = frozenset({"n_parts", "f16_kv", "low_vram", "mul_mat_q", "n_gqa", "rms_norm_eps"})


class UnsupportedOption(NotImplementedError):
    """A `Llama()` option that llama-cpp-python takes and we refuse (it would
    change the model or its outputs). `option` names it: while llama_cpp is
    patched, compat builds llama-cpp-python's class instead and says which."""

    def __init__(self, option: str, detail: str = ""):
        super().__init__(f"specbound_cpp.Llama does not support the {option} option{detail} yet")
        self.option = option


class UnknownOption(TypeError):
    """A `Llama()` keyword that neither class knows: llama-cpp-python ignores
    it, we refuse it (a misspelt option should not pass silently). `option`
    names it, for compat's fallback as with UnsupportedOption."""

    def __init__(self, option: str):
        super().__init__(f"Llama() got an unexpected keyword argument {option!r}")
        self.option = option


def refuse_model_changes(obsolete: Dict[str, Any], changed: Dict[str, bool]) -> None:
    """obsolete: Llama()'s extra keyword arguments; changed: option -> whether
    the caller set one that would change the model or its outputs.
    (Placement, memory and kernel options - mmap, mlock, offload, n_ubatch,
    numa, ... - do not change results here and are accepted; flash_attn picks
    which of llama.cpp's two attention paths our bits follow.)"""
    unknown = sorted(set(obsolete) - OBSOLETE_OPTIONS)
    if unknown:
        raise UnknownOption(unknown[0])
    for name, on in changed.items():
        if on:
            raise UnsupportedOption(name)


def check_int(name: str, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return v


def check_load_args(n_ctx, n_batch, n_gpu_layers, n_threads, n_threads_batch, seed) -> None:
    check_int("n_ctx", n_ctx, 0)
    check_int("n_batch", n_batch, 1)
    check_int("n_gpu_layers", n_gpu_layers, -1)
    if n_threads is not None:
        check_int("n_threads", n_threads, 1)
    if n_threads_batch is not None:
        check_int("n_threads_batch", n_threads_batch, 1)
    if seed is None or isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")


# what the engine's message starts with for an adapter llama.cpp loads and we do
# not run (model/lora.h, kLoraUnsupported); every other adapter error names it
# as "LoRA adapter <path>: ..." (model/lora.cpp)
_LORA_UNSUPPORTED = "unsupported LoRA adapter: "
_LORA_ERROR = "LoRA adapter "


class LoraAdapterError(ValueError, RuntimeError):
    """A LoRA adapter that cannot be loaded: missing, not a GGUF adapter, of
    another architecture or model, truncated. llama-cpp-python 0.3.36 means to
    raise RuntimeError here (its NULL check never fires: it builds the Llama
    and crashes at the first evaluation); a bad model file is a ValueError:
    this is both."""


def lora_args(lora_path: Any, lora_scale: Any, n_gpu_layers: int) -> Tuple[str, float]:
    """(adapter path, scale) as the engine takes them; ("", 1.0): no adapter.
    llama-cpp-python applies an adapter only for a non-empty path, and raises
    ValueError for one it cannot load: so do we, naming the reason."""
    if not lora_path:
        return "", 1.0
    path = os.fspath(lora_path)
    if n_gpu_layers != 0:
        # llama.cpp would keep the adapter beside each offloaded weight, on the
        # GPU; ours stays on the CPU, whose bits we have not compared with those
        raise UnsupportedOption("lora_path", " with layers offloaded to a GPU (n_gpu_layers != 0)")
    if not os.path.isfile(path):
        raise LoraAdapterError(f"LoRA adapter {path!r} does not exist or is not a file")
    if isinstance(lora_scale, bool) or not isinstance(lora_scale, numbers.Real):
        raise TypeError(f"lora_scale must be a number, got {lora_scale!r}")
    return path, float(lora_scale)


def raise_lora_error(error: ValueError) -> None:
    """The engine's refusal of an adapter llama.cpp loads but we do not run (an
    adapter of the token embeddings, a quantized type other than q8_0) as
    UnsupportedOption: a patched app then builds llama-cpp-python's class.
    A bad adapter as LoraAdapterError. Other errors: returns."""
    msg = str(error)
    i = msg.find(_LORA_UNSUPPORTED)
    if i >= 0:
        raise UnsupportedOption("lora_path", f" with this adapter ({msg[i + len(_LORA_UNSUPPORTED):]})") from None
    if _LORA_ERROR in msg:
        raise LoraAdapterError(msg) from None


def tensor_split_checked(tensor_split) -> List[float]:
    """llama.cpp's tensor_split: each device's proportion of the offloaded
    layers, in device order (with rpc_servers: the workers' devices in the
    order given); None or [] splits by the devices' free memory."""
    if tensor_split is None:
        return []
    try:
        out = [float(x) for x in tensor_split]
    except (TypeError, ValueError):
        raise ValueError(f"tensor_split must be a list of numbers >= 0, got {tensor_split!r}") from None
    if any(not (x >= 0) or x == float("inf") for x in out):
        raise ValueError(f"tensor_split must be a list of finite numbers >= 0, got {tensor_split!r}")
    return out


def resolve_model_path(model_path: Any, verbose: bool) -> str:
    """A GGUF file's path, or the cached file of a known model's name (downloaded if need be)."""
    path = os.fspath(model_path)
    if os.path.isdir(path):
        raise IsADirectoryError(21, "Model path is a directory, not a GGUF file", path)
    if not os.path.isfile(path):
        if path in _models.MODELS:
            path = _models.model_path(path, progress=verbose)
        else:
            known = ", ".join(_models.MODELS)
            raise FileNotFoundError(2, f"Model path does not exist (nor is it a known model: {known})", path)
    return path


def rope_overrides(scaling_type, freq_base, freq_scale, ext_factor, attn_factor, beta_fast, beta_slow, orig_ctx):
    """llama-cpp-python's rope / YaRN arguments as the engine takes them
    (resolved against the model's own values at load, as llama.cpp does)."""
    from . import _core

    r = _core.RopeOverrides()
    r.scaling_type = -1 if scaling_type is None else check_int("rope_scaling_type", scaling_type, -1)
    if r.scaling_type > 3:
        raise ValueError(f"rope_scaling_type must be -1..3, got {scaling_type!r}")
    for name, v in (("rope_freq_base", freq_base), ("rope_freq_scale", freq_scale), ("yarn_ext_factor", ext_factor),
                    ("yarn_attn_factor", attn_factor), ("yarn_beta_fast", beta_fast), ("yarn_beta_slow", beta_slow)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    if freq_base < 0 or freq_scale < 0:
        raise ValueError("rope_freq_base and rope_freq_scale must be >= 0 (0: the model's own)")
    r.freq_base, r.freq_scale, r.ext_factor = float(freq_base), float(freq_scale), float(ext_factor)
    r.attn_factor, r.beta_fast, r.beta_slow = float(attn_factor), float(beta_fast), float(beta_slow)
    r.orig_ctx = check_int("yarn_orig_ctx", orig_ctx, 0)
    return r


def _check_number(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
        raise ValueError(f"{name} must be a number, got {v!r}")


def stop_list(stop: Optional[Union[str, List[str]]]) -> List[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise ValueError(f"stop must be a string or a list of strings, got {stop!r}")
    return stop


def check_sampling_args(temperature, top_p, min_p, top_k, max_tokens, seed) -> None:
    for name, v in (("temperature", temperature), ("top_p", top_p), ("min_p", min_p)):
        _check_number(name, v)
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


def check_logprobs(logprobs: Any, logits_all: bool) -> None:
    if logprobs is not None:
        if not logits_all:
            raise ValueError("logprobs is not supported for models created with logits_all=False")
        if isinstance(logprobs, bool) or not isinstance(logprobs, int) or logprobs < 0:
            raise ValueError(f"logprobs must be a non-negative integer, got {logprobs!r}")


def check_penalties(repeat_penalty, frequency_penalty, presence_penalty) -> None:
    for name, v in (("repeat_penalty", repeat_penalty), ("frequency_penalty", frequency_penalty),
                    ("presence_penalty", presence_penalty)):  # fmt: skip
        _check_number(name, v)


def prompt_token_ids(prompt: List[Any], n_vocab: int) -> List[int]:
    for t in prompt:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < n_vocab:
            raise ValueError(f"prompt token {t!r} is not a token id in [0, {n_vocab})")
    return [int(t) for t in prompt]



# cache types that are plain ggml ops on any backend; the quantized ones take
# llama.cpp's Hadamard rotation, which the engine computes with a CPU op of its own
# (BF16, 30, is not among llama_cpp 0.3.36's Python constants)
_FLOAT_KV_TYPES = (llama_cpp.GGML_TYPE_F32, llama_cpp.GGML_TYPE_F16, 30)


def kv_cache_types(type_k: Any, type_v: Any, n_gpu_layers: int) -> tuple:
    """type_k / type_v (GGML_TYPE_* ints; None: F16, llama.cpp's default) as the
    engine takes them. Which types the cache holds, and the flash_attn they
    need, the engine checks against the model (ValueError naming the type).
    A quantized type with layers on a GPU is unsupported (UnsupportedOption)."""
    out = []
    for name, v in (("type_k", type_k), ("type_v", type_v)):
        if v is None:
            v = llama_cpp.GGML_TYPE_F16
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"{name} must be a GGML_TYPE_* integer, got {v!r}")
        if n_gpu_layers != 0 and int(v) not in _FLOAT_KV_TYPES:
            raise UnsupportedOption(name, " with n_gpu_layers != 0 (a quantized KV cache runs on the CPU only)")
        out.append(int(v))
    return tuple(out)


def kv_override_list(kv_overrides: Optional[Dict[str, Any]]) -> list:
    """llama-cpp-python's kv_overrides as the engine takes them, refused as it
    refuses them: a string over 128 UTF-8 bytes, a value of another type
    (ValueError). bool is checked before int, as there (True is an int)."""
    from . import _core

    out = []
    for key, v in (kv_overrides or {}).items():
        o = _core.KvOverride()
        o.key = key
        if isinstance(v, bool):
            o.tag, o.b = 2, v
        elif isinstance(v, int):
            o.tag, o.i = 0, v
        elif isinstance(v, float):
            o.tag, o.f = 1, v
        elif isinstance(v, str):
            if len(v.encode("utf-8")) > 128:
                raise ValueError(f"Value for {key} is too long: {v}")
            o.tag, o.s = 3, v
        else:
            raise ValueError(f"Unknown value type for {key}: {v}")
        out.append(o)
    return out
