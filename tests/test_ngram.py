"""N-gram lookup drafts (cpp/speculation/ngram_pool.h): free drafts from the
text seen so far, verified like any draft, so the output stays plain decoding's."""

from __future__ import annotations

import pytest
from conftest import spec_then_plain

from specbound_cpp import _core


def _pool(*texts):
    p = _core.testing.NgramPool(1 << 20)
    for t in texts:
        p.feed(t)
    return p


def test_continuation_of_latest_occurrence():
    ctx = [1, 2, 3, 9, 9, 1, 2, 3, 7, 8, 5, 1, 2, 3]
    # "1 2 3" occurred at 0 and at 5; the latest (5) is followed by 7 8 5 1 ...
    p = _pool(ctx)
    assert [t for t, _ in p.chain(ctx, 24, 3)] == [7, 8, 5]
    # past the end of the text the chain goes on from its own drafts: "... 5 1 2 3" -> 7 again
    assert [t for t, _ in p.chain(ctx, 24, 9)] == [7, 8, 5, 1, 2, 3, 7, 8, 5]


def test_longest_key_first_then_shorter():
    p = _pool([4, 2, 3, 6, 1, 2, 3])
    assert p.chain([1, 2, 3], 24, 1) == [(6, 2)]  # "1 2 3" was never followed by anything; "2 3" was
    assert p.chain([7, 2, 3], 24, 2) == [(6, 2), (1, 3)]  # only "2 3" matches, then "2 3 6" -> 1
    assert p.chain([7, 2, 3], 1, 2) == []  # no key that short
    assert p.chain([7, 2, 3], 2, 2) == [(6, 2), (1, 2)]  # keys of at most 2 tokens


def test_no_match_and_bounds():
    p = _pool([1, 2, 3, 4])
    assert p.chain([9, 9], 24, 4) == []
    assert p.chain([], 24, 4) == []
    assert p.chain([1, 2], 24, 0) == []
    assert _pool([5, 5, 5]).chain([5, 5], 2, 4) == [(5, 2)] * 4  # a repeated token repeats


CASES = {
    "greedy": dict(temperature=0.0),
    "seeded": dict(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, seed=99),
    "penalties": dict(temperature=0.0, repeat_penalty=1.2, frequency_penalty=0.1),
}
# code that the model will largely repeat: lookups find long continuations
PROMPT = (
    "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n\n"
    "def mul(a, b):\n    return a * b\n\n\ndef div(a, b):\n    return a / b\n\n\n"
    "# the same four functions again, with type hints\n"
    "def add(a: float, b: float) -> float:\n    return a + b\n\n\n"
)


@pytest.fixture(scope="module", params=["smollm2_path", "qwen05_path"])
def ngram_llm(request):
    from specbound_cpp import Llama

    llm = Llama(request.getfixturevalue(request.param), n_ctx=1024, n_threads=2, verbose=False, specbound=True,
                spec_gate=False, ngram=3)
    yield llm


@pytest.mark.parametrize("case", sorted(CASES))
def test_ngram_drafts_keep_output_exact(ngram_llm, case):
    kw = dict(max_tokens=64, **CASES[case])
    spec, st, plain = spec_then_plain(ngram_llm, PROMPT, **kw)
    assert spec == plain
    assert st["ngram_rounds"] > 0 and st["exit_depth_hist"][0] > 0, st
    assert st["ngram_accepted"] <= st["accepted_tokens"] <= st["draft_tokens"], st
    # nothing computed twice, n-gram drafts included (each costs n_layer in the deep pass)
    assert st["layer_evals"] == st["layer_evals_committed"] + st["layer_evals_rejected"], st
    assert st["layer_evals_committed"] == ngram_llm._session.n_layer * st["emitted_tokens"], st
    if case == "greedy":
        assert st["ngram_accepted"] > 0, st  # the repeated code is found and accepted
