"""vocab_only=True: the vocabulary alone, as llama-cpp-python loads it
(libllama, no weights): tokens, text, special tokens, metadata and the chat
template are llama-cpp-python's; generation and embeddings raise
VocabOnlyError (a RuntimeError naming vocab_only)."""

from __future__ import annotations

import llama_cpp
import pytest

TEXTS = [b"Hello, world!", b"def f(x):\n    return x ** 2\n", "caf\u00e9 \u4e2d\u6587 \U0001f600".encode(),
         b"<|im_start|>user\nhi<|im_end|>", b""]  # fmt: skip


@pytest.mark.parametrize("model", ["smollm2-135m", "qwen2.5-coder-0.5b", "gemma3-270m"])
def test_vocab_only_tokens_equal_llama_cpp_pythons(model, model_file):
    from specbound_cpp import Llama

    path = model_file(model)
    ours = Llama(path, vocab_only=True, verbose=False)
    theirs = llama_cpp.Llama(path, vocab_only=True, verbose=False)
    assert ours.vocab_only and ours.kernels == {}  # no weights were read into an engine
    for text in TEXTS:
        for add_bos in (True, False):
            for special in (True, False):
                toks = ours.tokenize(text, add_bos=add_bos, special=special)
                assert toks == theirs.tokenize(text, add_bos=add_bos, special=special), (text, add_bos, special)
                assert ours.detokenize(toks, special=special) == theirs.detokenize(toks, special=special)
    assert (ours.n_vocab(), ours.token_bos(), ours.token_eos()) == (theirs.n_vocab(), theirs.token_bos(),
                                                                    theirs.token_eos())  # fmt: skip
    assert ours.n_ctx() == theirs.n_ctx()
    assert ours.metadata == theirs.metadata
    assert ours.chat_format == theirs.chat_format


def test_vocab_only_refuses_generation_and_embeddings(smollm2_path):
    from specbound_cpp import Llama
    from specbound_cpp.vocab_only import VocabOnlyError

    ours = Llama(smollm2_path, vocab_only=True, verbose=False)
    ours.reset()  # nothing cached: fine, as in llama-cpp-python
    with pytest.raises(VocabOnlyError, match="vocab_only"):
        ours("Hello", max_tokens=4)
    with pytest.raises(VocabOnlyError, match="vocab_only"):
        ours.create_chat_completion(messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    with pytest.raises(VocabOnlyError, match="vocab_only"):
        ours.n_embd()
    # llama-cpp-python fails too (its context has no memory)
    theirs = llama_cpp.Llama(smollm2_path, vocab_only=True, verbose=False)
    with pytest.raises(AssertionError):
        theirs("Hello", max_tokens=4)


def test_vocab_only_with_kv_overrides(gemma3_path):
    from specbound_cpp import Llama

    ov = {"tokenizer.ggml.add_bos_token": False}
    ours = Llama(gemma3_path, vocab_only=True, verbose=False, kv_overrides=ov)
    theirs = llama_cpp.Llama(gemma3_path, vocab_only=True, verbose=False, kv_overrides=ov)
    text = b"The capital of France is"
    assert ours.tokenize(text) == theirs.tokenize(text)
    assert ours.tokenize(text)[0] != ours.token_bos()
