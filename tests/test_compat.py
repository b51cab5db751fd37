"""specbound_cpp.patch_llama_cpp / patched_llama_cpp: code that builds
llama_cpp.Llama itself - here Haystack's LlamaCppChatGenerator (llama-cpp-haystack,
its own class and call path, which imported llama_cpp.Llama before the patch) -
builds our Llama instead, and answers with llama-cpp-python's greedy text."""

from __future__ import annotations

import pytest

N = 24
MESSAGES_TEXT = "Name three fruits."


@pytest.fixture(scope="module")
def haystack():
    from haystack.dataclasses import ChatMessage
    from haystack_integrations.components.generators.llama_cpp import LlamaCppChatGenerator

    return LlamaCppChatGenerator, ChatMessage


def make_generator(haystack, path):
    generator_class, _ = haystack
    # the reference configuration (conftest.new_reference): llama-cpp-python's defaults, 2 threads
    return generator_class(model=path, n_ctx=512, n_batch=512, generation_kwargs={"max_tokens": N, "temperature": 0},
                           model_kwargs={"n_threads": 2, "n_threads_batch": 2, "verbose": False})  # fmt: skip


def reply(haystack, generator) -> str:
    _, chat_message = haystack
    out = generator.run(messages=[chat_message.from_user(MESSAGES_TEXT)])
    return out["replies"][0].text


def test_haystack_generator_builds_our_llama_with_the_same_text(haystack, smollm2_path):
    import llama_cpp
    from haystack_integrations.components.generators.llama_cpp.chat import chat_generator as module

    import specbound_cpp

    original = llama_cpp.Llama
    theirs = make_generator(haystack, smollm2_path)
    theirs.warm_up()
    assert type(theirs._model) is original
    want = reply(haystack, theirs)
    theirs.close()

    with specbound_cpp.patched_llama_cpp():
        assert llama_cpp.Llama is specbound_cpp.Llama and module.Llama is specbound_cpp.Llama
        ours = make_generator(haystack, smollm2_path)
        ours.warm_up()
    # undone on exit; what was built while patched stays ours
    assert llama_cpp.Llama is original and module.Llama is original and llama_cpp.llama.Llama is original
    assert type(ours._model) is specbound_cpp.Llama
    got = reply(haystack, ours)
    assert ours._model.last_stats["completion_tokens"] > 0
    assert got == want and len(want) > 0


def test_patch_and_unpatch_calls(smollm2_path):
    """The two-call form: patched until unpatched; patching twice is harmless, and
    a module imported while patched sees our class under `from llama_cpp import Llama`."""
    import llama_cpp

    import specbound_cpp

    original = llama_cpp.Llama
    specbound_cpp.patch_llama_cpp()
    try:
        specbound_cpp.patch_llama_cpp()
        assert specbound_cpp.is_patched()
        scope: dict = {}
        exec("from llama_cpp import Llama", scope)
        llm = scope["Llama"](model_path=smollm2_path, n_ctx=256, n_threads=2, verbose=False, f16_kv=True)
        assert isinstance(llm, specbound_cpp.Llama)
        assert llm("Hi", max_tokens=2, temperature=0)["usage"]["completion_tokens"] == 2
    finally:
        specbound_cpp.unpatch_llama_cpp()
    assert llama_cpp.Llama is original and not specbound_cpp.is_patched()


def test_framework_keywords(smollm2_path):
    """What LangChain's LlamaCpp passes: obsolete options (n_parts, f16_kv) are
    ignored and rope options equal to the model's own are accepted (other
    values are applied: test_rope.py)."""
    import specbound_cpp

    llm = specbound_cpp.Llama(smollm2_path, n_ctx=256, n_threads=2, verbose=False, n_parts=-1, f16_kv=True,
                              rope_freq_scale=1.0, rope_freq_base=0.0)  # fmt: skip
    own = float(llm.metadata["llama.rope.freq_base"])
    specbound_cpp.Llama(smollm2_path, n_ctx=256, n_threads=2, verbose=False, rope_freq_base=own, rope_freq_scale=1.0)
    with pytest.raises(TypeError, match="no_such_option"):
        specbound_cpp.Llama(smollm2_path, n_ctx=256, verbose=False, no_such_option=1)
