"""`logprobs` of completions, as llama-cpp-python 0.3.36 computes them.

`completion_logprobs`: the whole completion's (stream=False), from its
self._scores rows. With `stream=True` and `logprobs=N`, llama-cpp-python sends one chunk per
token, each with the logprobs of that one token (text offset, its logprob, the
top N), computed from the logits row that chose it; held-back text and the
final flush follow the same rules as without logprobs. The engine keeps those
rows (`keep_logits`), in both decoding modes, so the values are bit for bit
llama-cpp-python's. `RowReader` fetches them as the generation goes (only the
new rows each time); `token_logprobs` builds one chunk's dict.
"""

from __future__ import annotations

from typing import Callable, List

import llama_cpp
import numpy as np


class RowReader:
    """The kept logits rows of the generation in progress, fetched on demand.
    Row k chose the k-th token the engine emitted."""

    def __init__(self, session, offset: int):
        self._session = session
        self._rows: List[np.ndarray] = []
        self._n = 0
        self._offset = offset  # completion index of the engine's first token (1 after an empty prompt's BOS)

    def row(self, completion_index: int) -> np.ndarray:
        # (after an empty prompt llama-cpp-python reads the prompt's row for the
        # token after its BOS: the engine's first row is the nearest it has)
        k = max(completion_index - self._offset, 0)
        while k >= self._n:
            new = self._session.result_logits(self._n)
            if len(new) == 0:
                raise IndexError(f"no logits row for token {completion_index}")
            self._rows.append(new)
            self._n += len(new)
        for block in self._rows:  # few blocks: one per round that was read
            if k < len(block):
                return block[k]
            k -= len(block)
        raise IndexError(completion_index)


def top_logprobs(lp: np.ndarray, n_top: int) -> list:
    """(logprob, id) of the n_top best, in llama-cpp-python's order (sorted
    descending as pairs: ties go to the higher id)."""
    k = min(n_top, len(lp))
    if k <= 0:
        return []
    cut = np.partition(lp, len(lp) - k)[len(lp) - k]
    ids = np.nonzero(lp >= cut)[0]
    return sorted(zip(lp[ids].tolist(), ids.tolist()), reverse=True)[:k]


def token_logprobs(detok: Callable, prompt, completion_tokens: List[int], returned: int, token: int,
                   row: np.ndarray, n_top: int, offset_in_bytes: bool = False) -> dict:  # fmt: skip
    """The `logprobs` of the chunk that carries completion token `returned`.
    offset_in_bytes: llama-cpp-python's final flush counts the text before the
    token in bytes (the chunks while generating count characters)."""
    lp = llama_cpp.Llama.logits_to_logprobs(row)
    token_str = detok([token]).decode("utf-8", errors="ignore")
    before = detok(completion_tokens[:returned])
    text_offset = len(prompt) + len(before if offset_in_bytes else before.decode("utf-8", errors="ignore"))
    top = {detok([i]).decode("utf-8", errors="ignore"): v for v, i in top_logprobs(lp, n_top)}
    value = float(lp[int(token)])
    top.update({token_str: value})
    return {"tokens": [token_str], "text_offset": [text_offset], "token_logprobs": [value], "top_logprobs": [top]}


def completion_logprobs(detok: Callable, bos: int, prompt, prompt_tokens: List[int], completion_tokens: List[int],
                        scores: np.ndarray, n_top: int, echo: bool) -> dict:  # fmt: skip
    """The completion's `logprobs`, a port of llama_cpp.Llama._create_completion's
    (same offsets, same quirks: the echoed first token gets None, ties in the
    top list go to the higher token id). scores: its self._scores rows from the
    first one it reads (echo: the prompt's; otherwise the completion's)."""
    text_offset = 0 if echo else len(prompt)
    if echo:
        all_tokens = prompt_tokens[1 if prompt_tokens[0] == bos else 0 :] + completion_tokens
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
