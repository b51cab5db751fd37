"""`suffix` (fill-in-the-middle) in create_completion: llama-cpp-python 0.3.36's
prompt layout token for token, so the same text and usage as its Llama, under
plain decoding and under SpecBound. Its layout marks the prefix, suffix and
middle with token id 0 whatever the model (its FIM-token calls are commented
out), so a model without FIM tokens (SmolLM2, Gemma 3) is infilled the same
way as Qwen2.5-Coder, which has them."""

from __future__ import annotations

import pytest
from conftest import spec_then_plain

from specbound_cpp import Llama

N = 24
ARGS = dict(n_ctx=512, n_threads=2, n_threads_batch=2, verbose=False)
PAIRS = [  # (prompt, suffix)
    ("def add(a, b):\n    ", "\n\nprint(add(2, 3))\n"),
    ("import numpy as np\n\nx = np.", "\nprint(x.shape)"),
    ("# Sort a list\nxs = [3, 1, 2]\n", ""),  # an empty suffix: only its mark
    ("", "    return result\n"),  # an empty prompt: the completion starts with a BOS
]


@pytest.fixture(scope="module", params=["qwen05_path", "smollm2_path", "gemma3_path"])
def models(request, make_reference):
    """(llama-cpp-python's Llama, ours with plain decoding) on one model."""
    path = request.getfixturevalue(request.param)
    return make_reference(path, n_ctx=512), Llama(path, specbound=False, **ARGS)


def complete(llm, prompt, suffix, **kw):
    llm.reset()
    return llm(prompt, suffix=suffix, max_tokens=N, temperature=0, **kw)


@pytest.mark.parametrize("pair", range(len(PAIRS)))
def test_infill_text_and_usage_are_llama_cpp_pythons(models, pair):
    ref, llm = models
    prompt, suffix = PAIRS[pair]
    want, got = complete(ref, prompt, suffix), complete(llm, prompt, suffix)
    assert got["choices"] == want["choices"]
    assert got["usage"] == want["usage"]  # the same prompt tokens, counted
    assert want["usage"]["completion_tokens"] > 0


def test_infill_spm_layout_echo_and_token_prompt(qwen05_path, make_reference):
    """spm_infill (suffix first: another text than the default layout's),
    echo (the prompt before the text; no suffix after it, llama-cpp-python
    appends one only where it has no suffix mark) and a prompt given as
    tokens, which infilling frames like a string prompt."""
    ref = make_reference(qwen05_path, n_ctx=512, spm_infill=True)
    llm = Llama(qwen05_path, specbound=False, spm_infill=True, **ARGS)
    prompt, suffix = PAIRS[0]
    want, got = complete(ref, prompt, suffix, echo=True), complete(llm, prompt, suffix, echo=True)
    assert got["choices"] == want["choices"] and got["choices"][0]["text"].startswith(prompt)
    llm.spm_infill = False
    assert complete(llm, prompt, suffix)["choices"][0]["text"] != got["choices"][0]["text"][len(prompt):]
    llm.spm_infill = True
    tokens = llm.tokenize(prompt.encode(), add_bos=False)
    want, got = complete(ref, tokens, suffix), complete(llm, tokens, suffix)
    assert got["choices"] == want["choices"] and got["usage"] == want["usage"]


def test_warm_prompt_is_llama_cpp_pythons_warm_prompt(qwen05_path, make_reference):
    """The same request twice without reset(): the second reuses the cached
    prompt and evaluates its last token(s) in another batch, which can change
    llama-cpp-python's text (it did for this infill on an AVX2-only CPU). Ours,
    plain and under SpecBound, follows it cold and warm alike."""
    ref = make_reference(qwen05_path, n_ctx=512)
    plain = Llama(qwen05_path, specbound=False, **ARGS)
    spec = Llama(qwen05_path, specbound=True, spec_gate=False, **ARGS)
    prompt, suffix = PAIRS[0]
    for llm in (ref, plain, spec):
        llm.reset()
    for _ in range(2):  # cold, then warm
        want = ref(prompt, suffix=suffix, max_tokens=N, temperature=0)["choices"][0]["text"]
        assert plain(prompt, suffix=suffix, max_tokens=N, temperature=0)["choices"][0]["text"] == want
        assert spec(prompt, suffix=suffix, max_tokens=N, temperature=0)["choices"][0]["text"] == want
    assert plain.last_stats["prompt_tokens_reused"] > 0 and spec.last_stats["prompt_tokens_reused"] > 0


def test_infill_under_specbound_is_plain_decoding(qwen05_path):
    llm = Llama(qwen05_path, specbound=True, spec_gate=False, **ARGS)
    for prompt, suffix in PAIRS[:2]:
        spec, stats, plain = spec_then_plain(llm, prompt, suffix=suffix, max_tokens=N, temperature=0)
        assert spec == plain and len(plain) > 0
        assert stats["specbound"] and stats["draft_tokens"] > 0, stats


def test_suffix_must_be_a_string(smollm2_path):
    llm = Llama(smollm2_path, specbound=False, **ARGS)
    with pytest.raises(TypeError, match="suffix"):
        llm("def f():", suffix=b"bytes", max_tokens=2)
