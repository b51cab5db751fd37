"""N-gram lookup drafts (cpp/speculation/ngram.h): free drafts from the text so far,
verified like any draft, so the output stays plain decoding's."""

from __future__ import annotations

import pytest
from conftest import spec_then_plain

from specbound_cpp import _core


def test_continuation_of_latest_occurrence():
    ctx = [1, 2, 3, 9, 9, 1, 2, 3, 7, 8, 5, 1, 2, 3]
    # "1 2 3" occurred at 0 and at 5; the latest (5) is followed by 7 8 5 1 ...
    assert _core.ngram_draft(ctx, 2, 3, 3) == [7, 8, 5]
    assert _core.ngram_draft(ctx, 2, 3, 10) == [7, 8, 5, 1, 2, 3]  # up to the end of the text


def test_longest_ngram_first_then_shorter():
    ctx = [4, 2, 3, 6, 1, 2, 3]  # "1 2 3" never before; "2 3" at 1, followed by 6
    assert _core.ngram_draft(ctx, 2, 3, 2) == [6, 1]
    assert _core.ngram_draft(ctx, 3, 3, 2) == []  # no shorter n-grams allowed


def test_no_match_and_bounds():
    assert _core.ngram_draft([1, 2, 3, 4], 2, 3, 4) == []
    assert _core.ngram_draft([], 2, 3, 4) == []
    assert _core.ngram_draft([5, 5, 5], 2, 2, 0) == []
    assert _core.ngram_draft([5, 5, 5], 2, 2, 4) == [5]


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
