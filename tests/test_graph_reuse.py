"""Reusing a decode graph gives the bits of building it anew.

The engine keeps decode-phase graphs by shape (engine/graph_cache.h) and, when
a call has the shape of a kept graph, only refills its inputs and computes.
Checked against a session of the same model that builds every graph
(graph_reuse off):

1. widths 1 to 64 (SmolLM2; a spread of widths on Qwen2.5-Coder-0.5B), each
   width twice, so the second call runs the first one's graph: logits of every
   row bitwise equal, and the reuse counter says the graph was reused;
2. a batch that straddles the 256-cell boundary of the attended cells (its
   rows attend 256 and 512 cells: another shape), twice;
3. greedy plain decoding and SpecBound past the 256-cell boundary, where the
   plain decode graph changes shape: the same tokens, graphs reused;
4. switching reuse off forgets the kept graphs and builds every one.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import gen, GREEDY

from specbound_cpp import _core

WIDTHS = {"smollm2-135m": list(range(1, 65)), "qwen2.5-coder-0.5b": [1, 2, 3, 7, 8, 9, 16, 31, 33, 64]}
PREFIX = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n"


@pytest.fixture(scope="module", params=list(WIDTHS))
def pair(request, model_file, make_session):
    """(name, session reusing graphs, session building every graph), both with PREFIX in the cache."""
    path = model_file(request.param)
    reuse, fresh = make_session(path, n_ctx=1024), make_session(path, n_ctx=1024)
    _core.testing.set_graph_reuse(fresh, False)
    assert _core.testing.graph_reuse(reuse) and not _core.testing.graph_reuse(fresh)
    return request.param, reuse, fresh


def tokens_of(sess, n: int) -> list[int]:
    """n tokens of ordinary code text (the prefix repeated as needed)."""
    t = list(sess.tokenize((PREFIX * 20).encode(), False, False))
    assert len(t) >= n
    return t[:n]


def test_widths_reused_bitwise(pair):
    name, reuse, fresh = pair
    prefix = tokens_of(reuse, 40)
    for s in (reuse, fresh):
        s.eval_logits(prefix, 0, False)
    batch = tokens_of(reuse, 64 + 40)[40:]
    for k in WIDTHS[name]:
        want = fresh.eval_logits(batch[:k], 40, True)
        before = _core.testing.forward_timing(reuse)["n_reused"]
        first = reuse.eval_logits(batch[:k], 40, True)
        again = reuse.eval_logits(batch[:k], 40, True)
        assert _core.testing.forward_timing(reuse)["n_reused"] >= before + 1, f"width {k}: the second call built its graph anew"
        assert np.array_equal(first.view(np.uint32), want.view(np.uint32)), f"width {k}: a new kept graph"
        assert np.array_equal(again.view(np.uint32), want.view(np.uint32)), f"width {k}: a reused graph"
    assert _core.testing.forward_timing(fresh)["n_reused"] == 0


def test_batch_across_the_cell_boundary(pair):
    _, reuse, fresh = pair
    toks = tokens_of(reuse, 264)
    for s in (reuse, fresh):
        s.reset()
        s.eval_logits(toks[:250], 0, False)
    want = fresh.eval_logits(toks[250:262], 250, True)  # positions 250-261: 256 and 512 attended cells
    for _ in range(2):
        got = reuse.eval_logits(toks[250:262], 250, True)
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("specbound", [False, True], ids=["plain", "specbound"])
def test_decoding_past_the_boundary(pair, specbound):
    _, reuse, fresh = pair
    prompt = tokens_of(reuse, 200)
    out = {}
    for label, s in (("reuse", reuse), ("fresh", fresh)):
        s.reset()
        s.set_candidates(sorted(set(range(1024)) | set(prompt)))
        before = _core.testing.forward_timing(s)
        r = gen(s, prompt, 120, GREEDY, specbound)
        after = _core.testing.forward_timing(s)
        out[label] = (list(r["tokens"]), after["n_calls"] - before["n_calls"], after["n_reused"] - before["n_reused"])
    tokens, calls, reused = out["reuse"]
    assert tokens == out["fresh"][0]
    assert len(tokens) == 120  # 200 + 120 positions: past 256
    assert out["fresh"][2] == 0
    # most calls reuse a kept graph (a new one per shape: width, depth, the boundary)
    assert reused >= calls // 2, (calls, reused)


def test_switching_reuse_off(pair):
    _, reuse, _ = pair
    prompt = tokens_of(reuse, 30)
    reuse.reset()
    want = list(gen(reuse, prompt, 20, GREEDY)["tokens"])
    _core.testing.set_graph_reuse(reuse, False)
    try:
        before = _core.testing.forward_timing(reuse)["n_reused"]
        reuse.reset()
        assert list(gen(reuse, prompt, 20, GREEDY)["tokens"]) == want
        assert _core.testing.forward_timing(reuse)["n_reused"] == before
    finally:
        _core.testing.set_graph_reuse(reuse, True)
    reuse.reset()
    assert list(gen(reuse, prompt, 20, GREEDY)["tokens"]) == want
