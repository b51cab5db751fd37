"""Measure what decoding costs on this machine: the price of a decode batch
of k tokens against one (batch factors), the stages of one token's call, and
the size of the exit head's candidate vocabulary.

Both the profile command (`python -m specbound_cpp.profile`, which reports
these) and calibration (which prices speculation with them) measure here, so
that neither imports the other.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

from . import _core

# Widths priced: early-exit rounds use up to w_max + 1 rows, lookup rounds up
# to 65 (64 drafts), priced from these by interpolation (specbound_setup).
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
_WARM_TEXT = "def quicksort(xs):\n    if len(xs) <= 1:\n        return xs\n" * 64


@contextmanager
def _kernels_env(value: str | None):
    """SPECBOUND_KERNELS for the sessions built inside (read when a model loads)."""
    old = os.environ.get("SPECBOUND_KERNELS")
    if value is None:
        os.environ.pop("SPECBOUND_KERNELS", None)
    else:
        os.environ["SPECBOUND_KERNELS"] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SPECBOUND_KERNELS", None)
        else:
            os.environ["SPECBOUND_KERNELS"] = old


def _n_ctx(n_past: int) -> int:
    return max(2048, n_past + max(BATCH_SIZES) + 16)


def _warm_tokens(tokenize, n: int) -> list[int]:
    """The first n tokens of the warm-up text (repeated if it is too short)."""
    toks = tokenize(_WARM_TEXT.encode())
    return (toks * (n // len(toks) + 1))[:n]


def open_session(path: str, threads: int, n_past: int, ggml_kernels: bool = False):
    """A session with real keys/values in the first n_past + max(BATCH_SIZES)
    cells, every cell a probe writes (an unwritten cache holds arbitrary bits,
    which can make timings meaningless)."""
    with _kernels_env("ggml" if ggml_kernels else None):
        s = _core.Session(path, _n_ctx(n_past), 512, threads, threads, 0, False)
    s.eval_logits(_warm_tokens(lambda b: s.tokenize(b, True, False), n_past + max(BATCH_SIZES)), 0, False)
    return s


class LlamaCppBatch:
    """llama-cpp-python with its defaults (flash attention off, weights
    repacked) holding n_past cached positions of the warm-up text. time_batch(k)
    is one llama_decode of the next k tokens with logits for every row (ms);
    the k rows leave the cache again afterwards, so it stays at n_past."""

    def __init__(self, path: str, threads: int, n_past: int, max_k: int = max(BATCH_SIZES)):
        import llama_cpp

        self._lc = llama_cpp.llama_cpp
        self.llm = llama_cpp.Llama(model_path=path, n_ctx=_n_ctx(n_past), n_threads=threads,
                                   n_threads_batch=threads, logits_all=True, verbose=False)  # fmt: skip
        self.n_past, self.max_k = n_past, max_k
        self._tokens = _warm_tokens(lambda b: self.llm.tokenize(b, add_bos=True, special=False), n_past + max_k)
        self._chunk = self.llm.n_batch
        self._batch = self._lc.llama_batch_init(max(max_k, self._chunk), 0, 1)
        self._mem = self._lc.llama_get_memory(self.llm.ctx)
        for p0 in range(0, n_past, self._chunk):
            self._decode(p0, min(self._chunk, n_past - p0), all_logits=False)
        self.time_batch(1)  # warm-up: the first decode step after the prefill is not the price of one

    def _decode(self, p0: int, k: int, all_logits: bool) -> float:
        """llama_decode of tokens [p0, p0 + k) at positions p0.., its ms."""
        b = self._batch
        b.n_tokens = k
        for i in range(k):
            b.token[i], b.pos[i], b.n_seq_id[i] = self._tokens[p0 + i], p0 + i, 1
            b.seq_id[i][0] = 0
            b.logits[i] = all_logits or i == k - 1
        t0 = time.perf_counter()
        rc = self._lc.llama_decode(self.llm.ctx, b)
        self._lc.llama_synchronize(self.llm.ctx)
        ms = (time.perf_counter() - t0) * 1e3
        if rc != 0:
            raise RuntimeError(f"llama_decode of {k} tokens at {p0} returned {rc}")
        return ms

    def time_batch(self, k: int) -> float:
        if not 1 <= k <= self.max_k:
            raise ValueError(f"batch of {k} outside 1..{self.max_k}")
        ms = self._decode(self.n_past, k, all_logits=True)
        if not self._lc.llama_memory_seq_rm(self._mem, 0, self.n_past, -1):
            raise RuntimeError("llama_memory_seq_rm could not drop the timed rows")
        return ms

    def close(self) -> None:
        if self._batch is not None:
            self._lc.llama_batch_free(self._batch)
            self._batch = None
        self.llm.close()


def _time_batch(s, k: int, n_past: int) -> float:
    if isinstance(s, LlamaCppBatch):
        if n_past != s.n_past:
            raise ValueError(f"llama.cpp holds {s.n_past} cached positions, not {n_past}")
        return s.time_batch(k)
    return _core.testing.time_forward(s, k, n_past, 0, s.n_layer, True, False, 1, True)


def batch_factors(sessions: dict, n_past: int, reps: int, sizes=BATCH_SIZES) -> dict[str, dict[str, float]]:
    """Best-of-reps time of a decode batch of k full-depth tokens with logits,
    relative to one token, per session (a _core.Session or a LlamaCppBatch);
    sessions are timed interleaved. Keys: str(k) for each size, and "ms_1"."""
    best = {name: {k: float("inf") for k in sizes} for name in sessions}
    for _ in range(reps):
        for k in sizes:
            for name, s in sessions.items():
                best[name][k] = min(best[name][k], _time_batch(s, k, n_past))
    return {name: {str(k): round(b[k] / b[1], 3) for k in sizes} | {"ms_1": round(b[1], 3)} for name, b in best.items()}


# the stages of one call that _core.testing.forward_timing(session) accumulates
CALL_STAGES = ("plan_ms", "build_ms", "compute_ms", "read_ms")


def call_stages(s, n_past: int, reps: int) -> dict:
    """One full-depth token with logits, per call: time by stage (forward_timing)
    and the fixed cost (one call less its layers), with decode graphs reused and
    with every graph built, interleaved; best of reps for each."""
    L = s.n_layer
    out = {}
    for reuse in (True, False, True, False):
        _core.testing.set_graph_reuse(s, reuse)
        _core.testing.time_forward(s, 1, n_past, 0, L, True, False, 1, True)  # with reuse on, the graph is kept from here
        best = None
        for _ in range(reps):
            before = _core.testing.forward_timing(s)
            _core.testing.time_forward(s, 1, n_past, 0, L, True, False, 1, True)
            after = _core.testing.forward_timing(s)
            stages = {k: after[k] - before[k] for k in CALL_STAGES}
            if best is None or sum(stages.values()) < sum(best.values()):
                best = stages
        one = _core.testing.time_forward(s, 1, n_past, 0, 1, False, False, reps, True)
        two = _core.testing.time_forward(s, 1, n_past, 0, 2, False, False, reps, True)
        key = "reused" if reuse else "built"
        fixed = one - (two - one)
        prev = out.get(key)
        if prev is None or sum(best.values()) < sum(prev[k] for k in CALL_STAGES):
            out[key] = {**{k: round(v, 4) for k, v in best.items()}, "fixed_ms": round(fixed, 4)}
    _core.testing.set_graph_reuse(s, True)
    return out


def layer_macs(s) -> float:
    e, kv = s.n_embd, s.n_head_kv * s.head_dim
    return 2.0 * e * s.n_head * s.head_dim + 2.0 * e * kv + 3.0 * e * s.n_ff


def exit_vocab_size(s) -> int:
    """Candidates of the exit head: an exit check costs about a tenth of a layer."""
    return max(256, min(int(0.10 * layer_macs(s) / s.n_embd), s.n_vocab))



def measure_batch_factors(s, prompt: list[int], sizes=BATCH_SIZES) -> dict[int, float]:
    """Calibration's batch factors: the time of a decode-phase batch of b
    tokens relative to one token, as `python -m specbound_cpp.profile`
    measures it (full depth and LM head, after the prompt's cached positions),
    on a session calibration already holds."""
    s.reset()
    # real keys/values in every cell a batch writes (unwritten cells hold
    # arbitrary bits, which can make timings meaningless)
    filler = (prompt * (max(sizes) // len(prompt) + 1))[: max(sizes)]
    s.eval_logits(prompt + filler, 0, False)
    for _ in range(3):
        f = batch_factors({"model": s}, n_past=len(prompt), reps=3, sizes=sizes)["model"]
        # a pass of more rows never costs less than one row: a factor below
        # that is noise (a busy machine slowed the single row), measure again
        if all(f[str(b)] >= 0.95 for b in sizes):
            break
    return {b: f[str(b)] for b in sizes}
