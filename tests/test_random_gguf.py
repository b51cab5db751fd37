"""tools/random_gguf.py end to end on its tiny shapes (the real sizes take minutes
and gigabytes, so no test writes them; they go through the same code): write,
quantize with llama-cpp-python's quantizer, load in llama_cpp.Llama and in
specbound_cpp.Llama, and decode greedily to the same tokens.

tiny-qwen2 (Q4_K_M) pads the Qwen tokenizer to a larger vocabulary and ties its
embeddings, as Qwen2.5-7B pads and Qwen2.5-3B ties; tiny-llama (Q4_0) cuts the
tokenizer to a smaller one and carries Llama 3.1's rope factors, as
Llama-3.1-8B does."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import N_THREADS, gen
from test_parity_llamacpp import reference_greedy

TOOLS = Path(__file__).resolve().parents[1] / "tools"
sys.path.insert(0, str(TOOLS))
import random_gguf as rg  # noqa: E402  (tools/ is not a package)

N_NEW = 16
PROMPTS = [b"def merge_sorted(a: list[int], b: list[int]) -> list[int]:\n",
           b"The old bridge over the river had been closed for years, but"]
# (shape, type, the type that must make up most matrices)
CASES = [("tiny-qwen2", "q4_k_m", "Q4_K"), ("tiny-llama", "q4_0", "Q4_0")]


@pytest.fixture(scope="module", params=CASES, ids=[f"{s}-{t}" for s, t, _ in CASES])
def made(request, tmp_path_factory):
    shape, qtype, main_type = request.param
    out_dir = tmp_path_factory.mktemp("random")  # not the user's cache
    return shape, qtype, main_type, rg.random_gguf(shape, qtype, seed=0, out_dir=out_dir, threads=N_THREADS)


def test_file_has_the_shape_and_quantized_types(made):
    import gguf

    shape, qtype, main_type, path = made
    s = rg.SHAPES[shape]
    r = gguf.GGUFReader(path)
    types = {t.name: t.tensor_type.name for t in r.tensors}
    counts = Counter(types.values())
    # llama.cpp's presets: the weight matrices in the main type, some (the LM
    # head, Q4_K_M's more sensitive layers) in Q6_K; norms, biases, rope factors F32
    assert counts[main_type] >= 6 * s.n_layer, counts
    assert set(counts) <= {main_type, "Q6_K", "F32"}, counts
    assert {n for n, t in types.items() if t == "F32"} == {n for n, _, k in rg.tensor_plan(s) if k != "matrix"}
    head = next(t for t in r.tensors if t.name == ("token_embd.weight" if s.tied else "output.weight"))
    assert list(head.shape) == [s.n_embd, s.n_vocab]
    assert ("output.weight" in types) == (not s.tied) and ("rope_freqs.weight" in types) == s.llama3_rope
    assert len(r.fields["tokenizer.ggml.tokens"].data) == s.n_vocab
    assert r.fields["general.file_type"].contents() == rg.FTYPES[qtype]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # the F16 file is gone


def test_second_call_is_cached(made):
    shape, qtype, _, path = made
    before = path.stat().st_mtime_ns
    assert rg.random_gguf(shape, qtype, seed=0, out_dir=path.parent) == path
    # the command line finds it too, and prints its path
    proc = subprocess.run([sys.executable, str(TOOLS / "random_gguf.py"), "--shape", shape, "--type", qtype,
                           "--out", str(path.parent)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == str(path)
    assert path.stat().st_mtime_ns == before


def test_greedy_matches_llamacpp(made, make_session, make_reference):
    from specbound_cpp import Llama

    shape, _, _, path = made
    ref = make_reference(str(path), n_ctx=512)
    sess = make_session(str(path), n_ctx=512)
    llm = Llama(model_path=str(path), n_ctx=512, n_threads=N_THREADS, n_threads_batch=N_THREADS,
                specbound=False, verbose=False)  # fmt: skip
    assert llm.n_vocab() == ref.n_vocab() == rg.SHAPES[shape].n_vocab
    for text in PROMPTS:
        prompt = sess.tokenize(text, True, False)
        assert prompt == ref.tokenize(text, add_bos=True, special=False) == llm.tokenize(text)
        ours = list(gen(sess, prompt, N_NEW)["tokens"])
        theirs = reference_greedy(ref, prompt, N_NEW)
        assert ours == theirs and len(ours) == N_NEW, (shape, text, ours, theirs)
        # and through the Llama classes: the same text
        ref.reset()
        a = ref(text.decode(), max_tokens=N_NEW, temperature=0)["choices"][0]["text"]
        b = llm(text.decode(), max_tokens=N_NEW, temperature=0)["choices"][0]["text"]
        assert a == b
    llm.close()


def test_real_shapes_have_the_real_parameter_counts():
    """The big shapes are never written here: check their plans against the
    models' published sizes (billions of parameters, embeddings included)."""
    expected = {"qwen2.5-3b": 3.09, "qwen2.5-7b": 7.62, "llama-3.1-8b": 8.03}
    for name, billions in expected.items():
        n = sum(int(np.prod(shape)) for t, shape, kind in rg.tensor_plan(rg.SHAPES[name]) if t != "rope_freqs.weight")
        assert abs(n / 1e9 - billions) < 0.01, (name, n)


def test_llama3_rope_factors():
    f = rg.llama3_rope_factors(rg.SHAPES["llama-3.1-8b"])
    # high frequencies unscaled, low ones divided by the factor 8, monotonic between
    assert f.shape == (64,) and f[0] == 1.0 and f[-1] == pytest.approx(8.0) and np.all(np.diff(f) >= 0)
