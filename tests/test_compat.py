"""specbound_cpp.patch_llama_cpp / patched_llama_cpp: code that builds
llama_cpp.Llama itself - Haystack's LlamaCppChatGenerator (llama-cpp-haystack,
its own class and call path, which imported llama_cpp.Llama before the patch),
LangChain's LlamaCpp, LlamaIndex's LlamaCPP - builds our Llama instead, and
answers with llama-cpp-python's greedy text; with an option ours refuses, it
builds llama-cpp-python's own class (one FallbackWarning), so the app runs as
it ran unpatched."""

from __future__ import annotations

import warnings

import pytest

N = 24
MESSAGES_TEXT = "Name three fruits."


@pytest.fixture(scope="module")
def haystack():
    from haystack.dataclasses import ChatMessage
    from haystack_integrations.components.generators.llama_cpp import LlamaCppChatGenerator

    return LlamaCppChatGenerator, ChatMessage


def make_generator(haystack, path, **model_kwargs):
    generator_class, _ = haystack
    # the reference configuration (conftest.new_reference): llama-cpp-python's defaults, 2 threads
    return generator_class(model=path, n_ctx=512, n_batch=512, generation_kwargs={"max_tokens": N, "temperature": 0},
                           model_kwargs={"n_threads": 2, "n_threads_batch": 2, "verbose": False, **model_kwargs})


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
        assert specbound_cpp.is_patched() and module.Llama is llama_cpp.Llama is llama_cpp.llama.Llama
        ours = make_generator(haystack, smollm2_path)
        ours.warm_up()
    # undone on exit; what was built while patched stays ours
    assert llama_cpp.Llama is original and module.Llama is original and llama_cpp.llama.Llama is original
    assert type(ours._model) is specbound_cpp.Llama
    got = reply(haystack, ours)
    assert ours._model.last_stats["completion_tokens"] > 0
    assert got == want and len(want) > 0


def test_haystack_generator_with_a_refused_option_falls_back(haystack, smollm2_path):
    """A draft model (ours refuses it): patched, Haystack gets llama-cpp-python's
    class (one FallbackWarning) and the text it gets unpatched."""
    import llama_cpp
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    import specbound_cpp

    original = llama_cpp.Llama
    theirs = make_generator(haystack, smollm2_path, draft_model=LlamaPromptLookupDecoding(num_pred_tokens=2))
    theirs.warm_up()
    want = reply(haystack, theirs)
    theirs.close()
    with specbound_cpp.patched_llama_cpp():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ours = make_generator(haystack, smollm2_path, draft_model=LlamaPromptLookupDecoding(num_pred_tokens=2))
            ours.warm_up()
    fallbacks = [str(w.message) for w in caught if issubclass(w.category, specbound_cpp.FallbackWarning)]
    assert len(fallbacks) == 1 and "draft_model" in fallbacks[0], fallbacks
    assert type(ours._model) is original
    assert reply(haystack, ours) == want and len(want) > 0


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
        with warnings.catch_warnings():
            warnings.simplefilter("error", specbound_cpp.FallbackWarning)  # options we take: no fallback
            llm = scope["Llama"](model_path=smollm2_path, n_ctx=256, n_threads=2, verbose=False, f16_kv=True)
        assert type(llm) is specbound_cpp.Llama and isinstance(llm, llama_cpp.Llama)
        assert llm("Hi", max_tokens=2, temperature=0)["usage"]["completion_tokens"] == 2
    finally:
        specbound_cpp.unpatch_llama_cpp()
    assert llama_cpp.Llama is original and llama_cpp.llama.Llama is original and not specbound_cpp.is_patched()
    assert not isinstance(llm, llama_cpp.Llama)  # the class again, with its own isinstance


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


SHORT = dict(n_ctx=256, n_threads=2, n_threads_batch=2, verbose=False)


def lookup_draft():
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    return LlamaPromptLookupDecoding(num_pred_tokens=2)


def greedy_text(llm) -> str:
    return llm("The capital of France is", max_tokens=8, temperature=0)["choices"][0]["text"]


# option -> (the keyword arguments that set it, what the app does with the object)
REFUSED = {
    "draft_model": (dict(draft_model=lookup_draft()), greedy_text),  # llama-cpp-python's prompt-lookup drafts
    "no_such_option": (dict(no_such_option=1), greedy_text),  # llama-cpp-python ignores unknown keywords
}
# supported since: built as ours while patched, without a warning
SUPPORTED = {
    "type_k": dict(type_k=8),  # GGML_TYPE_Q8_0: a quantized K cache
    "kv_overrides": dict(kv_overrides={"llama.context_length": 4096}),
    "vocab_only": dict(vocab_only=True),
}


@pytest.mark.parametrize("option", sorted(SUPPORTED))
def test_patched_construction_with_a_supported_option_builds_ours(smollm2_path, option):
    import llama_cpp

    import specbound_cpp

    with specbound_cpp.patched_llama_cpp():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            llm = llama_cpp.Llama(smollm2_path, **SHORT, **SUPPORTED[option])
    assert type(llm) is specbound_cpp.Llama
    assert not [w for w in caught if issubclass(w.category, specbound_cpp.FallbackWarning)]
    want = llama_cpp.Llama(smollm2_path, **SHORT, **SUPPORTED[option])
    assert llm.tokenize(b"The capital of France is") == want.tokenize(b"The capital of France is")
    if option != "vocab_only":
        assert greedy_text(llm) == greedy_text(want)


@pytest.mark.parametrize("option", sorted(REFUSED))
def test_patched_construction_with_a_refused_option_builds_llama_cpp_python(smollm2_path, option):
    """While patched, an option specbound_cpp.Llama refuses builds
    llama-cpp-python's own class with the same arguments (one FallbackWarning
    naming the option, pointing at the caller), and the app gets what it got
    unpatched; directly, specbound_cpp.Llama still refuses the option."""
    import llama_cpp

    import specbound_cpp

    kwargs, use = REFUSED[option]
    original = llama_cpp.Llama
    want = use(original(smollm2_path, **SHORT, **kwargs))
    with specbound_cpp.patched_llama_cpp():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            llm = llama_cpp.Llama(smollm2_path, **SHORT, **kwargs)
        assert isinstance(llm, llama_cpp.Llama)
    ours = [w for w in caught if issubclass(w.category, specbound_cpp.FallbackWarning)]
    assert len(ours) == 1 and f"the {option} option" in str(ours[0].message), [str(w.message) for w in caught]
    assert ours[0].filename == __file__
    assert type(llm) is original
    got = use(llm)
    assert got == want and len(got) > 0
    with pytest.raises((NotImplementedError, TypeError), match=option):
        specbound_cpp.Llama(smollm2_path, **SHORT, **kwargs)


def test_the_stand_in_while_patched(smollm2_path):
    """What code sees of llama_cpp.Llama while patched: our signature (every
    llama-cpp-python option, and ours), llama-cpp-python's class attributes, and
    a subclass defined meanwhile is llama-cpp-python's (its methods would
    assume that one's internals)."""
    import inspect

    import llama_cpp

    import specbound_cpp

    original = llama_cpp.Llama
    with specbound_cpp.patched_llama_cpp():
        stand_in = llama_cpp.Llama
        params = inspect.signature(stand_in).parameters
        theirs = [name for name, p in inspect.signature(original).parameters.items() if p.kind != p.VAR_KEYWORD]
        assert set(theirs) <= set(params) and "specbound" in params
        assert stand_in.longest_token_prefix([1, 2, 3], [1, 2, 4]) == 2
        assert issubclass(specbound_cpp.Llama, stand_in) and issubclass(original, stand_in)

        class Mine(llama_cpp.Llama):
            pass

        mine = Mine(smollm2_path, **SHORT)
    assert isinstance(mine, original) and not isinstance(mine, specbound_cpp.Llama)
    assert greedy_text(mine) == greedy_text(original(smollm2_path, **SHORT))


# LangChain's LlamaCpp and LlamaIndex's LlamaCPP, each built unpatched and
# patched with the same settings: the reference configuration (n_batch 512, 2
# threads), greedy. LangChain passes its default rope base of 10000 (SmolLM2's
# own is 100000): ours applies it as llama.cpp does. With `falls_back`, a
# draft model (llama-cpp-python's prompt-lookup drafts), which ours refuses:
# patched, the framework gets llama-cpp-python's class, and the same text.
FRAMEWORK_PROMPT = "def fibonacci(n):"


def framework_both_ways(smollm2_path, make, text_of, falls_back):
    """(unpatched text, patched text, the Llama the patched framework built);
    checks which class each built and the fallback warning."""
    import llama_cpp

    import specbound_cpp

    original = llama_cpp.Llama
    theirs = make(smollm2_path, falls_back)
    assert type(theirs[1]) is original
    want = text_of(theirs[0])
    del theirs
    with specbound_cpp.patched_llama_cpp():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ours = make(smollm2_path, falls_back)
    fallbacks = [str(w.message) for w in caught if issubclass(w.category, specbound_cpp.FallbackWarning)]
    assert len(fallbacks) == int(falls_back), [str(w.message) for w in caught]
    assert all("draft_model" in m for m in fallbacks)
    assert type(ours[1]) is (original if falls_back else specbound_cpp.Llama)
    return want, text_of(ours[0]), ours[1]


def make_langchain(path, falls_back):
    from langchain_community.llms import LlamaCpp

    refused = {"draft_model": lookup_draft()} if falls_back else {}
    llm = LlamaCpp(model_path=path, n_ctx=512, n_batch=512, n_threads=2, temperature=0, max_tokens=N, verbose=False,
                   model_kwargs={"n_threads_batch": 2, **refused})  # fmt: skip
    assert llm.rope_freq_base == 10000.0  # LangChain's default, not the model's
    return llm, llm.client


@pytest.mark.parametrize("falls_back", [False, True], ids=["ours", "refused_option"])
def test_langchain_llamacpp_patched_gives_the_same_text(smollm2_path, falls_back):
    pytest.importorskip("langchain_community.llms")
    want, got, client = framework_both_ways(smollm2_path, make_langchain, lambda llm: llm.invoke(FRAMEWORK_PROMPT),
                                            falls_back)  # fmt: skip
    assert got == want and len(want) > 0
    if not falls_back:  # LangChain streams by default: ours ran the whole completion
        assert client.last_stats["completion_tokens"] == N and client.last_stats["specbound"], client.last_stats


def make_llamaindex(path, falls_back):
    from llama_index.llms.llama_cpp import LlamaCPP

    refused = {"draft_model": lookup_draft()} if falls_back else {}
    llm = LlamaCPP(model_path=path, temperature=0.0, max_new_tokens=N, context_window=512, verbose=False,
                   model_kwargs={"n_threads": 2, "n_threads_batch": 2, **refused})  # fmt: skip
    return llm, llm._model


@pytest.mark.parametrize("falls_back", [False, True], ids=["ours", "refused_option"])
def test_llamaindex_llamacpp_patched_gives_the_same_text(smollm2_path, falls_back):
    pytest.importorskip("llama_index.llms.llama_cpp")

    def text_of(llm):
        assert llm.metadata.context_window == 512  # read from the Llama's context_params
        return llm.complete(FRAMEWORK_PROMPT).text

    want, got, model = framework_both_ways(smollm2_path, make_llamaindex, text_of, falls_back)
    assert got == want and len(want) > 0
    if not falls_back:
        assert model.last_stats["completion_tokens"] == N and model.last_stats["specbound"], model.last_stats
