"""Embeddings (`embedding=True`: `embed`, `create_embedding`) against
llama-cpp-python's on the same model: the same shapes and dicts, values
within float tolerance (the prompt goes through ggml's own matmuls with
llama-cpp-python's batch split, so unpooled values are in practice bitwise
llama.cpp's; mean pooling sums in another order)."""

from __future__ import annotations

import llama_cpp
import numpy as np
import pytest

TEXTS = ["The quick brown fox jumps over the lazy dog.", "def add(a, b):\n    return a + b\n"]
POOLINGS = [llama_cpp.LLAMA_POOLING_TYPE_NONE, llama_cpp.LLAMA_POOLING_TYPE_MEAN,
            llama_cpp.LLAMA_POOLING_TYPE_CLS, llama_cpp.LLAMA_POOLING_TYPE_LAST]  # fmt: skip


def pair(path, make_reference, **kw):
    from specbound_cpp import Llama

    return make_reference(path, n_ctx=512, embedding=True, **kw), Llama(path, n_ctx=512, n_threads=2, verbose=False,
                                                                         embedding=True, **kw)


def assert_close(ours, ref, what, tol=1e-5):
    a, b = np.asarray(ref, dtype=np.float64), np.asarray(ours, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shape {b.shape} != llama-cpp-python's {a.shape}"
    err = np.abs(a - b).max() / np.abs(a).max()
    assert err < tol, f"{what}: relative difference {err:.2e}"


@pytest.mark.parametrize("name", ["smollm2-135m", "qwen2.5-coder-0.5b"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_embed_equals_llama_cpp_pythons(name, pooling, model_file, make_reference):
    ref, ours = pair(model_file(name), make_reference, pooling_type=pooling)
    assert ours.pooling_type() == ref.pooling_type() == pooling
    for text in TEXTS:
        assert_close(ours.embed(text), ref.embed(text), f"{name} pooling {pooling}")
        assert_close(ours.embed(text, normalize=True), ref.embed(text, normalize=True), f"{name} normalized")
    # A list gives a list. llama-cpp-python decodes a list as one batch of
    # sequences, and llama.cpp's batched arithmetic (repacked gemm, another
    # summation order) depends on the batch: up to 1.5e-2 of the largest value
    # on the 0.5B; we read each input alone, as it reads a single input. (It
    # misreads unpooled lists past the first.)
    if pooling != llama_cpp.LLAMA_POOLING_TYPE_NONE:
        for o, r in zip(ours.embed(TEXTS), ref.embed(TEXTS)):
            a, b = np.asarray(r), np.asarray(o)
            assert a.shape == b.shape
            assert (a @ b) / np.linalg.norm(a) / np.linalg.norm(b) > 0.999, f"{name} list: cosine"


def test_create_embedding_dict(smollm2_path, make_reference):
    ref, ours = pair(smollm2_path, make_reference, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN)
    a, b = ref.create_embedding(TEXTS), ours.create_embedding(TEXTS)
    assert set(b) == set(a) and b["object"] == "list" and b["model"] == a["model"]
    assert b["usage"] == a["usage"]
    assert [(d["object"], d["index"]) for d in b["data"]] == [(d["object"], d["index"]) for d in a["data"]]
    for o, r in zip(b["data"], a["data"]):
        assert_close(o["embedding"], r["embedding"], "create_embedding")
    assert ours.create_embedding("one", model="m")["model"] == "m"


def test_unpooled_is_the_models_default_and_generation_still_works(smollm2_path):
    """Pooling unspecified: the GGUF's, none for SmolLM2 (one vector per token).
    An embedding rewrites the cache; the next completion is a fresh model's."""
    from specbound_cpp import Llama

    llm = Llama(smollm2_path, n_ctx=512, n_threads=2, verbose=False, embedding=True)
    fresh = Llama(smollm2_path, n_ctx=512, n_threads=2, verbose=False)
    want = fresh("Once upon a time", max_tokens=16, temperature=0)["choices"][0]["text"]
    assert llm("Once upon a time", max_tokens=16, temperature=0)["choices"][0]["text"] == want
    e = llm.embed("Once upon a time")
    assert llm.pooling_type() == llama_cpp.LLAMA_POOLING_TYPE_NONE
    assert len(e) == len(llm.tokenize(b"Once upon a time")) and len(e[0]) == llm.n_embd()
    assert llm("Once upon a time", max_tokens=16, temperature=0)["choices"][0]["text"] == want


def test_embedding_errors(smollm2_path):
    from specbound_cpp import Llama

    llm = Llama(smollm2_path, n_ctx=256, n_threads=2, verbose=False)
    with pytest.raises(RuntimeError, match="embedding=True"):
        llm.embed("x")
    with pytest.raises(NotImplementedError, match="rank"):
        Llama(smollm2_path, n_ctx=256, verbose=False, embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_RANK)
    with pytest.raises(ValueError):
        Llama(smollm2_path, n_ctx=256, verbose=False, embedding=True, pooling_type=9)
    small = Llama(smollm2_path, n_ctx=256, n_batch=8, n_threads=2, verbose=False, embedding=True)
    with pytest.raises(ValueError, match="exceed batch size"):
        small.embed("a b c d e f g h i j k l m n o p", truncate=False)
    assert len(small.embed("a b c d e f g h i j k l m n o p")) == 8  # truncated to n_batch tokens
