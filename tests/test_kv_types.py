"""KV cache types (type_k / type_v, llama-cpp-python's GGML_TYPE_* ints), as
llama.cpp 0.3.36 runs them: keys and values written to the cache in that type
(ggml_set_rows quantizes each row), q.k in the K type's vec_dot type, a
quantized cache's q, k and v rotated by llama.cpp's Hadamard transform, and a
quantized V only with flash attention. Against llama-cpp-python with the same
options: greedy tokens equal and teacher-forced logits bitwise equal; the
decode-phase kernels stay batch-invariant, so SpecBound equals plain decoding;
the bytes per token of KV cache follow the types' row sizes; the types
llama.cpp refuses (or would abort on) are ValueErrors.
"""

from __future__ import annotations

import inspect
import json.decoder

import llama_cpp
import numpy as np
import pytest
from conftest import gen, n_gpu_layers
from test_batch_invariance import PROMPT as INVARIANCE_PROMPT
from test_batch_invariance import check_invariance
from test_parity_llamacpp import reference_greedy

F32, F16, BF16 = llama_cpp.GGML_TYPE_F32, llama_cpp.GGML_TYPE_F16, 30  # BF16: not among llama_cpp's constants
Q8_0, Q4_0, Q4_1 = llama_cpp.GGML_TYPE_Q8_0, llama_cpp.GGML_TYPE_Q4_0, llama_cpp.GGML_TYPE_Q4_1
Q5_0, Q5_1, IQ4_NL = llama_cpp.GGML_TYPE_Q5_0, llama_cpp.GGML_TYPE_Q5_1, llama_cpp.GGML_TYPE_IQ4_NL
MXFP4, NVFP4 = llama_cpp.GGML_TYPE_MXFP4, llama_cpp.GGML_TYPE_NVFP4

# name -> (type_k, type_v, flash_attn). Without flash attention only K may be
# quantized (llama.cpp refuses a quantized V there); F32 with flash attention
# goes through llama.cpp's F16 cast of the cache.
CASES = {
    "k_q8_0": (Q8_0, F16, False),
    "k_q4_0": (Q4_0, F16, False),
    "kv_bf16": (BF16, BF16, False),
    "kv_f32_fa": (F32, F32, True),
    "kv_q8_0_fa": (Q8_0, Q8_0, True),
    "kv_q4_0_fa": (Q4_0, Q4_0, True),
    "k_q4_1_v_q5_1_fa": (Q4_1, Q5_1, True),
    "k_q5_0_v_iq4_nl_fa": (Q5_0, IQ4_NL, True),
    "kv_mxfp4_fa": (MXFP4, MXFP4, True),
    "kv_nvfp4_fa": (NVFP4, NVFP4, True),
}
N_NEW = 48
GREEDY_PROMPT = b"def binary_search(items, target):\n"
N_FORCED = 600  # two chunks of 512: the second attends to 512 cached positions


def session(path: str, type_k: int, type_v: int, flash_attn: bool, n_ctx: int = 1024):
    from specbound_cpp import _core

    ngl = n_gpu_layers()
    return _core.Session(path, n_ctx, 512, 2, 2, 0x7FFFFFFF if ngl == -1 else ngl, False, flash_attn=flash_attn,
                         type_k=type_k, type_v=type_v)  # fmt: skip


def reference(make_reference, path: str, type_k: int, type_v: int, flash_attn: bool):
    return make_reference(path, n_ctx=1024, logits_all=True, flash_attn=flash_attn, type_k=type_k, type_v=type_v)


def check_parity(sess, ref, label: str) -> None:
    """Greedy tokens equal, then teacher-forced logits bitwise equal (CPU)."""
    prompt = sess.tokenize(GREEDY_PROMPT, True, False)
    ours = list(gen(sess, prompt, N_NEW)["tokens"])
    theirs = reference_greedy(ref, prompt, N_NEW)
    # both may stop at an end-of-generation token before N_NEW (Gemma 3 with a
    # Q4_0 K cache on an AVX2-only CPU: 36 tokens, the same on both sides)
    assert len(ours) >= N_NEW // 2 and ours == theirs, f"{label}: greedy tokens differ from llama-cpp-python's"

    toks = sess.tokenize(inspect.getsource(json.decoder).encode(), True, False)[:N_FORCED]
    assert len(toks) == N_FORCED
    sess.reset()
    ref.reset()
    ref.eval(toks)  # n_batch 512: the same chunks as below
    exact, agree = 0, 0
    for start in range(0, N_FORCED, 512):
        chunk = toks[start:start + 512]
        got = np.array(sess.eval_logits(chunk, start, False), copy=True)
        want = np.asarray(ref.scores[start:start + len(chunk)], dtype=np.float32)
        assert np.isfinite(got).all()
        exact += int(np.all(got == want, axis=1).sum())
        agree += int((got.argmax(axis=1) == want.argmax(axis=1)).sum())
    print(f"{label}: {N_NEW} greedy tokens equal; teacher-forced {N_FORCED} positions: "
          f"bitwise-equal rows {exact}, top-1 agreement {agree}")
    if n_gpu_layers() == 0:
        assert exact == N_FORCED, f"{label}: {N_FORCED - exact} of {N_FORCED} rows differ from llama-cpp-python's bits"
    else:
        assert agree >= 0.99 * N_FORCED


@pytest.mark.parametrize("case", sorted(CASES))
def test_kv_types_match_llama_cpp_python(case, smollm2_path, make_reference):
    type_k, type_v, fa = CASES[case]
    sess = session(smollm2_path, type_k, type_v, fa)
    check_parity(sess, reference(make_reference, smollm2_path, type_k, type_v, fa), f"smollm2 {case}")


# qwen2 (GQA 14/2, biases), gemma3 (head_dim 256: K rotated in blocks of 256,
# V in 64; sliding-window layers)
@pytest.mark.parametrize("case", ["k_q4_0", "kv_q8_0_fa"])
@pytest.mark.parametrize("model", ["qwen2.5-coder-0.5b", "gemma3-270m"])
def test_kv_types_match_llama_cpp_python_other_architectures(model, case, model_file, make_reference):
    type_k, type_v, fa = CASES[case]
    path = model_file(model)
    sess = session(path, type_k, type_v, fa)
    check_parity(sess, reference(make_reference, path, type_k, type_v, fa), f"{model} {case}")


# the decode kernels' detours per cache type: q in Q8_0 (quantized K) or BF16
# rows apart, the probabilities in V's type; flash attention per query
@pytest.mark.parametrize("case", ["k_q4_0", "kv_bf16", "kv_q4_0_fa", "k_q4_1_v_q5_1_fa"])
def test_kv_types_decode_batch_invariant(case, smollm2_path):
    type_k, type_v, fa = CASES[case]
    sess = session(smollm2_path, type_k, type_v, fa, n_ctx=256)
    prefix = sess.tokenize(INVARIANCE_PROMPT, True, False)
    check_invariance(sess, prefix, f"smollm2 {case} n_past={len(prefix)}")


@pytest.mark.parametrize("case", ["k_q8_0", "kv_q4_0_fa"])
def test_specbound_equals_plain_with_kv_types(case, qwen05_path):
    from specbound_cpp import Llama

    type_k, type_v, fa = CASES[case]
    kw = dict(n_ctx=512, n_threads=2, verbose=False, type_k=type_k, type_v=type_v, flash_attn=fa)
    prompt = "def merge_sort(items):\n"
    plain = Llama(qwen05_path, specbound=False, **kw)(prompt, max_tokens=64, temperature=0)["choices"][0]["text"]
    llm = Llama(qwen05_path, specbound=True, **kw)
    assert llm(prompt, max_tokens=64, temperature=0)["choices"][0]["text"] == plain
    assert llm.last_stats["specbound"] and llm.last_stats["completion_tokens"] == 64


# (block size, bytes per block) of each type: ggml's block layouts
ROW = {F32: (1, 4), F16: (1, 2), BF16: (1, 2), Q8_0: (32, 34), Q4_0: (32, 18), Q4_1: (32, 20), Q5_0: (32, 22),
       Q5_1: (32, 24), IQ4_NL: (32, 18), MXFP4: (32, 17), NVFP4: (64, 36)}  # fmt: skip


def test_kv_bytes_per_token_follow_the_types(smollm2_path, capsys):
    from specbound_cpp import Llama, _core

    probe = _core.Session(smollm2_path, 256, 256, 2, 2, 0, False)
    row = probe.n_head_kv * probe.head_dim  # values per layer and position, for K and for V
    n_layer = probe.n_layer
    assert probe.kv_bytes_per_token == n_layer * 2 * row * 2  # F16 keys and values

    def expected(t_k, t_v):
        return n_layer * sum(row // ROW[t][0] * ROW[t][1] for t in (t_k, t_v))

    for t in ROW:
        for type_k, type_v in ((t, t), (t, F16)):
            sess = session(smollm2_path, type_k, type_v, flash_attn=True, n_ctx=256)
            assert sess.kv_bytes_per_token == expected(type_k, type_v), (type_k, type_v)
    llm = Llama(smollm2_path, n_ctx=256, n_threads=2, verbose=True, specbound=False, type_k=Q8_0, type_v=Q4_0,
                flash_attn=True)  # fmt: skip
    assert llm.kv_bytes_per_token == expected(Q8_0, Q4_0) == n_layer * (row // 32) * (34 + 18)
    assert llm.context_params.type_k == Q8_0 and llm.context_params.type_v == Q4_0
    err = capsys.readouterr().err
    assert f"KV cache K q8_0, V q4_0: {expected(Q8_0, Q4_0)} bytes per token" in err


# (keyword arguments, whether llama-cpp-python refuses them too: where it does
# not, it aborts the process - a K-quant without flash attention, Q8_1 - and is
# not run here)
BAD = {
    "quantized_v_unfused": (dict(type_v=Q8_0), True),
    "quantized_v_unfused_q4_0": (dict(type_k=Q4_0, type_v=Q4_0), True),
    "k_quant_fa": (dict(type_k=llama_cpp.GGML_TYPE_Q4_K, flash_attn=True), True),
    "v_k_quant_fa": (dict(type_v=llama_cpp.GGML_TYPE_Q6_K, flash_attn=True), True),
    "k_quant_unfused": (dict(type_k=llama_cpp.GGML_TYPE_Q4_K), False),
    "q8_1": (dict(type_k=llama_cpp.GGML_TYPE_Q8_1), False),
    "no_such_type": (dict(type_k=99), False),
    "negative": (dict(type_v=-1), False),
    "a_string": (dict(type_k="q8_0"), False),
    "a_bool": (dict(type_v=True), False),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_refused_kv_types_are_value_errors(name, smollm2_path):
    from specbound_cpp import Llama

    kwargs, llama_cpp_python_refuses = BAD[name]
    with pytest.raises(ValueError, match="type_k|type_v"):
        Llama(smollm2_path, n_ctx=256, n_threads=2, verbose=False, **kwargs)
    if llama_cpp_python_refuses:
        with pytest.raises(ValueError):
            llama_cpp.Llama(smollm2_path, n_ctx=256, n_threads=2, verbose=False, **kwargs)


def test_quantized_kv_cache_with_gpu_layers_is_unsupported(smollm2_path):
    """The Hadamard rotation of a quantized cache is our CPU op: with layers on a
    GPU the option is refused (UnsupportedOption: llama-cpp-python's class when patched)."""
    from specbound_cpp import Llama
    from specbound_cpp.llama_checks import UnsupportedOption

    with pytest.raises(UnsupportedOption, match="type_k"):
        Llama(smollm2_path, n_ctx=256, n_threads=2, verbose=False, n_gpu_layers=1, type_k=Q8_0)
