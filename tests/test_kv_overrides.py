"""kv_overrides (llama-cpp-python's dict of metadata key -> bool / int / float /
str): the values replace the GGUF's own for our reader (hyperparameters) and
for libllama's vocabulary alike, as llama.cpp applies them (an override of
another kind than the key's is ignored); each case changes what the model does
and gives llama-cpp-python's result with the same override."""

from __future__ import annotations

import inspect
import json.decoder

import llama_cpp
import pytest

N = 32


def completion(llm, prompt: str) -> str:
    llm.reset()
    return llm(prompt, max_tokens=N, temperature=0)["choices"][0]["text"]


def both(path: str, kv_overrides, **kw):
    from specbound_cpp import Llama

    common = dict(n_ctx=kw.pop("n_ctx", 512), n_threads=2, verbose=False, kv_overrides=kv_overrides, **kw)
    return Llama(path, **common), llama_cpp.Llama(path, n_threads_batch=2, **common)


def test_add_bos_override_tokenizes_as_llama_cpp_python(gemma3_path):
    """tokenizer.ggml.add_bos_token (a bool libllama's vocabulary reads):
    Gemma 3 adds BOS; overridden, neither library does."""
    text = b"The capital of France is"
    ours, theirs = both(gemma3_path, {"tokenizer.ggml.add_bos_token": False})
    default = llama_cpp.Llama(gemma3_path, n_ctx=512, verbose=False).tokenize(text)
    assert default[0] == theirs.token_bos()
    assert ours.tokenize(text) == theirs.tokenize(text) == default[1:]
    assert completion(ours, text.decode()) == completion(theirs, text.decode())
    assert ours.metadata == theirs.metadata  # both show the file's values


def test_float_hparam_override_gives_llama_cpp_pythons_text(smollm2_path):
    """llama.rope.freq_base (a float our reader takes): SmolLM2's own is 100000."""
    from specbound_cpp import Llama

    prompt = "def fibonacci(n):\n"
    default = completion(Llama(smollm2_path, n_ctx=512, n_threads=2, verbose=False), prompt)
    ours, theirs = both(smollm2_path, {"llama.rope.freq_base": 10000.0})
    got = completion(ours, prompt)
    assert got == completion(theirs, prompt) and got != default
    assert ours.last_stats["specbound"]


def test_int_hparam_override_gives_llama_cpp_pythons_text(gemma3_path):
    """gemma3.attention.sliding_window (an int our reader takes): 512 in the
    file, 64 here, so a 200-token prompt's sliding layers see less of it."""
    from specbound_cpp import Llama

    prompt = inspect.getsource(json.decoder)[:700]
    default = completion(Llama(gemma3_path, n_ctx=512, n_threads=2, verbose=False), prompt)
    ours, theirs = both(gemma3_path, {"gemma3.attention.sliding_window": 64})
    assert len(ours.tokenize(prompt.encode())) > 150
    got = completion(ours, prompt)
    assert got == completion(theirs, prompt) and got != default


def test_context_length_override_sets_n_ctx_0(smollm2_path):
    ours, theirs = both(smollm2_path, {"llama.context_length": 1024}, n_ctx=0)
    assert ours.n_ctx() == theirs.n_ctx() == 1024
    assert ours.context_params.n_ctx == theirs.context_params.n_ctx == 1024


def test_override_of_another_kind_is_ignored(smollm2_path):
    """An int for a float key: llama.cpp warns and keeps the file's value."""
    from specbound_cpp import Llama

    prompt = "def fibonacci(n):\n"
    default = completion(Llama(smollm2_path, n_ctx=512, n_threads=2, verbose=False), prompt)
    ours, theirs = both(smollm2_path, {"llama.rope.freq_base": 10000})
    assert completion(ours, prompt) == completion(theirs, prompt) == default


@pytest.mark.parametrize("bad", [{"general.name": "x" * 129}, {"general.name": ["a"]}, {"general.name": None}])
def test_bad_overrides_are_value_errors_as_in_llama_cpp_python(bad, smollm2_path):
    from specbound_cpp import Llama

    with pytest.raises(ValueError, match="general.name"):
        Llama(smollm2_path, n_ctx=256, verbose=False, kv_overrides=bad)
    with pytest.raises(ValueError, match="general.name"):
        llama_cpp.Llama(smollm2_path, n_ctx=256, verbose=False, kv_overrides=bad)


def test_server_kv_overrides_setting():
    """llama_cpp.server's --kv_overrides entries, read as it reads them."""
    pytest.importorskip("fastapi")
    from specbound_cpp.server import kv_overrides_setting

    got = kv_overrides_setting(["a.b=bool:true", "c=int:7", "d=float:0.5", "e=str:hi", "f=no_type"])
    assert got == {"a.b": True, "c": 7, "d": 0.5, "e": "hi"}
    assert type(got["c"]) is int and kv_overrides_setting(None) is None
    with pytest.raises(ValueError, match="Unknown value type"):
        kv_overrides_setting(["g=list:1"])
