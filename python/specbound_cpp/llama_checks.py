"""Argument checks of `Llama` and `Llama.create_completion`: what
llama-cpp-python accepts is accepted, options that would change the model or
its outputs are refused (NotImplementedError) rather than ignored, and values
it would fail on later are refused at once, with the same exception types."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Union

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

