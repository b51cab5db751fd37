"""Parity on GGUF types the registry lacks: Qwen2.5-Coder-0.5B requantized with
llama-cpp-python's own quantizer (as a user would make such a file) to Q4_0
(repacked by llama.cpp on x86), IQ4_XS (its IQ4_NL tensors repacked) and
Q5_K_M (not repacked). Our plain greedy text equals llama-cpp-python's with
its defaults, SpecBound's equals our plain text, and each repacked weight
decodes every column of a batch with the single-token arithmetic.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

from test_kernels import (REPACKED, activations, assert_repacked_columns_are_single_tokens, build,  # noqa: F401
                          repacked_columns_build)

# llama_ftype (llama.h)
FTYPES = {"q4_0": 2, "iq4_xs": 30, "q5_k_m": 17}
PROMPTS = ["def merge_sorted(a, b):\n", "The old bridge over the river had been closed for years, but",
           "Question: A train travels 180 km in 2.5 hours. What is its average speed?\nAnswer:"]
N = 48


@pytest.fixture(scope="module", params=sorted(FTYPES))
def requantized(request, qwen05_path):
    """(type, path): the 0.5B requantized once per type into the model cache."""
    import llama_cpp

    from specbound_cpp.models import cache_dir

    qtype = request.param
    out = Path(cache_dir()) / "requantized" / f"qwen2.5-coder-0.5b-{qtype}.gguf"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = FTYPES[qtype]
        params.allow_requantize = True
        params.nthread = 2
        tmp = out.with_suffix(".tmp")
        assert llama_cpp.llama_model_quantize(str(qwen05_path).encode(), str(tmp).encode(), ctypes.byref(params)) == 0
        tmp.rename(out)
    return qtype, str(out)


def greedy(llm, prompt: str) -> str:
    llm.reset()
    return llm(prompt, max_tokens=N, temperature=0)["choices"][0]["text"]


def test_plain_and_specbound_text_is_llama_cpp_pythons(requantized, make_reference):
    from specbound_cpp import Llama

    qtype, path = requantized
    ref = make_reference(path, n_ctx=512)
    kw = dict(n_ctx=512, n_threads=2, n_threads_batch=2, verbose=False)
    plain, spec = Llama(path, specbound=False, **kw), Llama(path, specbound=True, **kw)
    for p in PROMPTS:
        want = greedy(ref, p)
        assert greedy(plain, p) == want, (qtype, p)
        assert greedy(spec, p) == want, (qtype, p)


def test_repacked_weights_decode_columns_as_single_tokens(requantized, build, make_session):
    import gguf

    qtype, path = requantized
    sess = make_session(path, n_ctx=256)
    kernels = dict(sess.kernels())
    repacked = {t for t, v in kernels.items() if REPACKED in v}
    assert repacked == {"q4_0": {"q4_0"}, "iq4_xs": {"iq4_nl"}, "q5_k_m": set()}[qtype], kernels
    assert all(repacked_columns_build(build) + "," in kernels[t] for t in repacked), kernels
    for t in gguf.GGUFReader(path).tensors:
        if t.name.startswith("blk.0.") and t.tensor_type.name.lower() in repacked:
            x = activations("normal", 24, int(t.shape[0]), seed=3)
            x[5] = np.float32(0)
            assert_repacked_columns_are_single_tokens(sess, t.name, x, (1, 2, 3, 4, 5, 8, 13, 24), threads=(1, 3))
