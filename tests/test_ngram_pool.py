"""The n-gram pool of lookup drafts (cpp/speculation/ngram_pool.h): bounded
memory, kept by the Llama across requests and reset(), emptied by
reset_ngram_pool(), and never a change to the text: SpecBound's output equals
plain decoding's with the pool cold, warm from other requests, and holding
this very answer."""

from __future__ import annotations

import random

import pytest

from specbound_cpp import Llama, _core

MIB = 1 << 20


def test_pool_memory_is_bounded():
    p = _core.testing.NgramPool(3 * MIB)  # rounded down to a power of two of 8-byte slots
    assert p.stats["bytes"] == 2 * MIB and p.stats["slots"] == 2 * MIB // 8
    assert not p.stats["allocated"]  # nothing taken before the first feed
    assert _core.testing.NgramPool(1).stats["bytes"] == 64 << 10  # the floor
    small = _core.testing.NgramPool(64 << 10)
    rng = random.Random(0)
    text = [rng.randrange(50_000) for _ in range(20_000)]  # 8 keys per token: 20x the slots
    small.feed(text)
    st = small.stats
    assert st["allocated"] and st["bytes"] == 64 << 10 and st["fed"] == len(text) - 1
    assert 0.9 * st["slots"] < st["used"] <= st["slots"]
    # newer n-grams take the slots of older ones: the end of the text is still there
    assert [t for t, _ in small.chain(text[-40:-10], 24, 4)] == text[-10:-6]


def test_pool_feed_is_idempotent_and_clear_empties():
    p = _core.testing.NgramPool(MIB)
    text = [1, 2, 3, 4, 5, 1, 2, 3]
    p.feed(text)
    used = p.stats["used"]
    p.feed(text)  # the same text again: the same slots, the same tokens
    assert p.stats["used"] == used and p.chain([1, 2, 3], 24, 2) == [(4, 3), (5, 4)]
    p.feed(text + [9, 9], len(text))  # only the new positions
    assert p.stats["fed"] == 2 * (len(text) - 1) + 2
    p.clear()
    assert p.stats["used"] == 0 and p.stats["fed"] == 0 and p.chain([1, 2, 3], 24, 2) == []


def test_ngram_pool_mb_sets_the_bound(smollm2_path):
    llm = Llama(smollm2_path, n_ctx=512, n_threads=2, verbose=False, specbound=True, ngram_pool_mb=1)
    assert llm.ngram_pool["bytes"] == MIB and not llm.ngram_pool["allocated"]
    llm("def add(a, b):", max_tokens=8, temperature=0)
    assert llm.ngram_pool["allocated"] and llm.ngram_pool["bytes"] == MIB and llm.ngram_pool["fed"] > 0
    with pytest.raises(ValueError):
        Llama(smollm2_path, n_ctx=512, n_threads=2, verbose=False, ngram_pool_mb=0)


def test_plain_decoding_leaves_the_pool_alone(smollm2_path):
    llm = Llama(smollm2_path, n_ctx=512, n_threads=2, verbose=False, specbound=False)
    llm("def add(a, b):", max_tokens=8, temperature=0)
    assert not llm.ngram_pool["allocated"] and llm.ngram_pool["fed"] == 0


CASES = {
    "greedy": dict(temperature=0.0),
    "seeded": dict(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, seed=7),
}
EDIT = (
    "def mean(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total / len(xs)\n\n\n"
    "def variance(xs):\n    m = mean(xs)\n    total = 0\n    for x in xs:\n        total += (x - m) ** 2\n"
    "    return total / len(xs)\n\n\n# the same two functions again, with type hints and docstrings\n"
)
OTHER = "Once upon a time, in a small village by the sea, there lived an old fisherman who"


@pytest.fixture(scope="module", params=["smollm2_path", "qwen05_path"])
def pool_llms(request):
    path = request.getfixturevalue(request.param)
    kw = dict(n_ctx=1024, n_threads=2, verbose=False)
    # the gate off: every round drafts, so the counts below do not hang on timings
    yield Llama(path, specbound=True, spec_gate=False, **kw), Llama(path, specbound=False, **kw)


def _text(llm, prompt, kw):
    llm.reset()  # the whole prompt evaluated in one batch, in every run alike
    return llm(prompt, max_tokens=96, **kw)["choices"][0]["text"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_text_is_plain_decoding_cold_warm_and_after_reset(pool_llms, case):
    spec, plain = pool_llms
    kw = CASES[case]
    expected = _text(plain, EDIT, kw)
    spec.reset_ngram_pool()
    assert spec.ngram_pool["used"] == 0 and spec.ngram_pool["fed"] == 0
    assert _text(spec, EDIT, kw) == expected  # cold: the prompt's own n-grams only
    cold = spec.last_stats
    # warm from another request, then holding this very answer (reset() keeps the pool)
    assert _text(spec, OTHER, kw) == _text(plain, OTHER, kw)
    used = spec.ngram_pool["used"]
    assert _text(spec, EDIT, kw) == expected
    assert spec.ngram_pool["used"] >= used  # reset() kept it
    again = spec.last_stats
    if case == "greedy":  # the second time, the answer is drafted from the first
        assert again["ngram_accepted"] > cold["ngram_accepted"], (cold, again)
        assert again["rounds"] < cold["rounds"], (cold, again)
    # and emptied again: the text is still plain decoding's
    spec.reset_ngram_pool()
    assert _text(spec, EDIT, kw) == expected


def test_copied_spans_draft_from_long_keys(pool_llms):
    """An answer the pool holds is drafted by its longest keys, and accepted."""
    spec, plain = pool_llms
    spec.reset_ngram_pool()
    _text(spec, EDIT, CASES["greedy"])
    _text(spec, EDIT, CASES["greedy"])  # the answer is in the pool now
    st = spec.last_stats
    drafts = st["lookup_key_drafts"]
    assert sum(drafts) == st["exit_depth_hist"][0] and drafts[24] > 0, st
    assert st["lookup_key_accepted"][24] > 0.8 * (st["lookup_key_accepted"][24] + st["lookup_key_rejected"][24]), st
