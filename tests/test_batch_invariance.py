"""Batch invariance of the decode-phase kernels (eval_logits(..., invariant=True)).

SpecBound is exact only if the logits of a position do not depend on how many
positions share its batch: verifying k drafted tokens in one batch must give
bitwise the logits that decoding them one by one would. Here the same 16
positions are evaluated in consecutive chunks of every size 1..16 after the
same cached prefix, and every position's logits must be bitwise identical
across chunk sizes. The prompt-phase kernels (invariant=False) carry no such
promise; whether they differ is printed for information only.
"""

from __future__ import annotations

import inspect
import json.decoder

import numpy as np
import pytest
from conftest import gen

N_POS = 16

PROMPT = (
    b"def quicksort(items):\n"
    b'    """Sort a list of numbers with the quicksort algorithm and return a new list."""\n'
    b"    # nothing to do\n"
    b"    if len(items) <= 1:\n"
)


def chunked_logits(sess, n_past: int, tokens: list[int], size: int, invariant: bool) -> np.ndarray:
    """Logits of tokens at positions n_past.., evaluated in consecutive chunks of `size`."""
    out = []
    for start in range(0, len(tokens), size):
        chunk = tokens[start:start + size]
        out.append(np.array(sess.eval_logits(chunk, n_past + start, invariant), copy=True))
    return np.concatenate(out)


def poison(sess, n_past: int, tokens: list[int]) -> None:
    """Overwrite the cache cells after the prefix with other tokens, so that no run
    can profit from (or be hidden by) what the previous one left there."""
    sess.eval_logits(tokens[::-1], n_past, False)


def check_invariance(sess, prefix: list[int], label: str) -> None:
    n_past = len(prefix)
    # real continuation: the greedy tokens after the prefix
    sess.reset()
    cont = list(gen(sess, prefix, N_POS)["tokens"])
    assert len(cont) == N_POS, f"{label}: the model stopped after {len(cont)} tokens"
    # prefill the prefix with the prompt kernels (in chunks of 512, as a prompt would be)
    for start in range(0, n_past, 512):
        sess.eval_logits(prefix[start:start + 512], start, False)

    base = chunked_logits(sess, n_past, cont, 1, True)
    assert base.shape == (N_POS, sess.n_vocab) and base.dtype == np.float32
    assert np.isfinite(base).all()
    # the single-token evaluations reproduce the greedy continuation
    assert list(base[:-1].argmax(axis=1)) == cont[1:], label
    mismatches = []
    for size in range(2, N_POS + 1):
        poison(sess, n_past, cont)
        got = chunked_logits(sess, n_past, cont, size, True)
        for p in range(N_POS):
            if not np.array_equal(got[p], base[p]):
                mismatches.append((size, p, float(np.abs(got[p] - base[p]).max())))
    assert not mismatches, f"{label}: logits depend on the batch (chunk size, position, max abs diff): {mismatches}"

    # information only: the prompt kernels
    poison(sess, n_past, cont)
    one = chunked_logits(sess, n_past, cont, 1, False)
    poison(sess, n_past, cont)
    full = chunked_logits(sess, n_past, cont, N_POS, False)
    same = np.array_equal(one, full)
    print(f"{label}: invariant kernels bitwise equal over chunk sizes 1..{N_POS}; prompt kernels "
          f"(invariant=False) chunk 1 vs {N_POS}: {'equal' if same else 'differ'}, "
          f"max abs diff {float(np.abs(one - full).max()):.3g}; invariant vs prompt kernels at chunk 1: "
          f"max abs diff {float(np.abs(one - base).max()):.3g}")


# qwen3-random: F16 weights (an sgemm type: the quantized-activation path);
# gemma3-270m past its sliding window: tests/test_arch_gemma3_qwen3.py
@pytest.mark.parametrize("model", ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "qwen3-random"])
def test_decode_kernels_batch_invariant(model, model_file, make_session):
    sess = make_session(model_file(model), n_ctx=256)
    prefix = sess.tokenize(PROMPT, True, False)
    assert 35 <= len(prefix) <= 50, len(prefix)
    check_invariance(sess, prefix, f"{model} n_past={len(prefix)}")


@pytest.mark.parametrize("model", ["smollm2-135m", "qwen2.5-coder-0.5b"])
def test_decode_kernels_batch_invariant_long_context(model, model_file, make_session):
    # attention over >= 512 cached positions takes other paths in ggml
    sess = make_session(model_file(model), n_ctx=1024)
    toks = sess.tokenize(inspect.getsource(json.decoder).encode(), True, False)
    assert len(toks) >= 600
    check_invariance(sess, toks[:600], f"{model} n_past=600")
