"""Run-time batch-invariance self-check of a loaded model on its devices.

SpecBound is exact only if a token's logits are bitwise the same whether the
token is decoded alone or inside a verification batch. On x86 CPUs the engine's
decode kernels are built for that and checked at load against ggml's vec_dot
(`Llama.kernels`); on other backends (CUDA, Metal, ...) nothing guarantees it.
This check measures it, whatever the backend: after a short prefill, a few
positions are decoded one token at a time and again in one batch of each size k
a speculative round may use (2 .. w_max + 1: the drafts and the token before
them), and the logits are compared bit for bit.

The verdict is cached as JSON under the cache directory, keyed by everything
that could change it: the model file's sha256, the devices and the decode
kernel chosen per weight type (`Session.devices()`, `Session.kernels()`), the
thread count, the batch sizes checked, and the versions of llama-cpp-python,
of this package and of the check itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np

from .models import cache_dir, model_sha256

CHECK_VERSION = 2  # 2: repacked weights and unfused attention as llama-cpp-python
# Real text, so that the activations are a model's usual ones. The first
# PREFILL_TOKENS tokens go through the prompt phase as a real prompt would.
CHECK_TEXT = b"def moving_average(xs, n):\n    \"\"\"Mean of each window of n items.\"\"\"\n    return [sum(xs[i:i + n]) / n"
PREFILL_TOKENS = 6


# Lookup rounds run passes of up to 65 rows (64 drafts); checking every width
# would cost ~2,000 rows, so the check takes the widths on both sides of the
# kernels' column blocks of 8, 16, 32 and 64.
LOOKUP_WIDTHS = (16, 17, 32, 33, 64, 65)


def batch_sizes(w_max: int, lookup_rows: int = 0) -> List[int]:
    """The decode batch sizes a round with at most w_max early-exit drafts may
    run (> 1), and with lookup drafts (lookup_rows: its widest pass) the
    LOOKUP_WIDTHS up to lookup_rows."""
    sizes = set(range(2, int(w_max) + 2)) | {w for w in LOOKUP_WIDTHS if w <= lookup_rows}
    return sorted(sizes)


def verdict_key(session, model_sha256: str, n_threads: int, sizes: Sequence[int]) -> Dict[str, Any]:
    import llama_cpp

    from . import __version__

    return {
        "check_version": CHECK_VERSION,
        "model_sha256": model_sha256,
        "devices": list(session.devices()),
        "kernels": [list(kv) for kv in session.kernels()],
        "n_threads": int(n_threads),
        "batch_sizes": list(sizes),
        "llama_cpp_python": llama_cpp.__version__,
        "specbound_cpp": __version__,
    }


def verdict_path(key: Dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    return cache_dir() / "invariance" / f"{digest}.json"


def _check_tokens(session, n_positions: int) -> List[int]:
    """CHECK_TEXT's tokens, repeated if the tokenizer makes fewer than needed."""
    toks = list(session.tokenize(CHECK_TEXT, False, False))
    while len(toks) < PREFILL_TOKENS + n_positions:
        toks += toks
    return toks[: PREFILL_TOKENS + n_positions]


def run_check(session, sizes: Sequence[int]) -> Dict[str, Any]:
    """Decode max(sizes) positions one at a time, then, for each k in sizes, the
    last k of them again as one batch, and compare the logits bitwise.

    Each batch rewrites only its own positions' KV cells, so every batch sees
    the same earlier context as the single-token pass. The session's cache and
    history are reset afterwards."""
    t0 = time.perf_counter()
    n = max(sizes, default=1)
    toks = _check_tokens(session, n)
    prefix, probe = toks[:PREFILL_TOKENS], toks[PREFILL_TOKENS:]
    failed: List[str] = []
    try:
        session.eval_logits(prefix, 0, False)
        singles = np.concatenate(
            [session.eval_logits([t], PREFILL_TOKENS + i, True) for i, t in enumerate(probe)]
        ).view(np.uint32)
        for k in sizes:
            start = n - k
            batch = session.eval_logits(probe[start:], PREFILL_TOKENS + start, True).view(np.uint32)
            rows = np.nonzero((batch != singles[start:]).any(axis=1))[0]
            if len(rows):
                failed.append(f"batch of {k}: logits of {len(rows)} of its {k} positions differ from single-token decoding")
    finally:
        session.reset()
    return {
        "ok": not failed,
        "batch_sizes": list(sizes),
        "failures": failed,
        "seconds": round(time.perf_counter() - t0, 4),
        "checked_at": time.time(),
    }


def invariance_verdict(session, model_file: str, n_threads: int, w_max: int, lookup_rows: int = 0) -> Dict[str, Any]:
    """The cached verdict for this model on these devices, or a fresh check
    (stored for next time). Adds "cached": whether it came from the cache."""
    # a round never verifies more tokens than the context or one pass holds
    cap = min(session.n_ctx - PREFILL_TOKENS - 1, session.max_invariant_rows)
    sizes = [k for k in batch_sizes(w_max, lookup_rows) if k <= cap]
    key = verdict_key(session, model_sha256(model_file), n_threads, sizes)
    path = verdict_path(key)
    try:
        stored = json.loads(path.read_text())
        if stored.get("key") == key:
            return dict(stored["verdict"], cached=True)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    verdict = run_check(session, sizes)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # concurrent loads: whole files only
    tmp.write_text(json.dumps({"key": key, "verdict": verdict}, indent=1))
    os.replace(tmp, path)
    return dict(verdict, cached=False)


def describe(verdict: Dict[str, Any]) -> str:
    """One line for `specbound_source` and verbose output."""
    sizes = verdict["batch_sizes"]
    checked = f"batches of 1-{max(sizes)}" if sizes else "no batches (w_max=0)"
    if verdict["ok"]:
        return f"invariance check passed ({checked})"
    return "plain decoding: invariance check failed on this device (" + "; ".join(verdict["failures"]) + ")"
