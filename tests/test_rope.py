"""Rope and YaRN options (rope_freq_base, rope_freq_scale, rope_scaling_type,
yarn_*): applied in the engine's rope as llama.cpp applies them, so the text
is llama-cpp-python's with the same options. LangChain's LlamaCpp, for one,
passes rope_freq_base=10000 whatever the model's own base is.
"""

from __future__ import annotations

import pytest

N = 40
PROMPT = "def fibonacci(n):\n"
# linear scaling, another base, YaRN by type (its attention factor and the
# cancellation of ggml's own), YaRN mixed in by hand, and "none" (never scales)
CASES = {
    "base_10000": dict(rope_freq_base=10000.0),
    "linear_half": dict(rope_freq_scale=0.5),
    "yarn_quarter": dict(rope_scaling_type=2, rope_freq_scale=0.25, yarn_orig_ctx=512),
    "yarn_by_hand": dict(yarn_ext_factor=0.5, rope_freq_scale=0.5, yarn_beta_fast=16.0),
    "none_ignores_scale": dict(rope_scaling_type=0, rope_freq_scale=0.5),
}
# llama (normal rope), qwen2 (neox rope), gemma3 (sliding layers keep their own base)
MODELS = ["smollm2-135m", "qwen2.5-coder-0.5b", "gemma3-270m"]


def greedy(llm) -> str:
    llm.reset()
    return llm(PROMPT, max_tokens=N, temperature=0)["choices"][0]["text"]


@pytest.mark.parametrize("name", MODELS)
def test_rope_options_give_llama_cpp_pythons_text(name, model_file, make_reference):
    from specbound_cpp import Llama

    path = model_file(name)
    default = greedy(Llama(path, n_ctx=512, n_threads=2, verbose=False, specbound=False))
    changed = 0
    for case, kw in CASES.items():
        ref = greedy(make_reference(path, n_ctx=512, **kw))
        ours = greedy(Llama(path, n_ctx=512, n_threads=2, verbose=False, specbound=False, **kw))
        assert ours == ref, f"{name} {case}: {ours!r} != llama-cpp-python's {ref!r}"
        changed += ours != default
    assert changed >= 2, f"{name}: the rope options changed the text in only {changed} of {len(CASES)} cases"


def test_specbound_equals_plain_with_yarn(qwen05_path):
    from specbound_cpp import Llama

    kw = CASES["yarn_quarter"]
    plain = greedy(Llama(qwen05_path, n_ctx=512, n_threads=2, verbose=False, specbound=False, **kw))
    llm = Llama(qwen05_path, n_ctx=512, n_threads=2, verbose=False, **kw)
    assert greedy(llm) == plain
    assert llm.last_stats["specbound"]


@pytest.mark.parametrize("bad", [dict(rope_freq_base=-1.0), dict(rope_freq_scale=float("nan")),
                                 dict(rope_scaling_type=7), dict(yarn_orig_ctx=-5), dict(yarn_beta_fast="fast")])
def test_bad_rope_options_are_value_errors(bad, smollm2_path):
    from specbound_cpp import Llama

    with pytest.raises(ValueError):
        Llama(smollm2_path, n_ctx=256, n_threads=2, verbose=False, **bad)
