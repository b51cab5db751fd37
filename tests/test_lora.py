"""LoRA adapters (Llama(lora_path=..., lora_scale=...)) against llama-cpp-python.

Each test writes its own small GGUF adapter (gguf-py, seeded random pairs of
rank 8 on every attention and FFN weight, and on the LM head where the model
has one of its own) in the layout llama.cpp's convert_lora_to_gguf.py writes:
general.type "adapter", adapter.type "lora", adapter.lora.alpha, and
"<weight>.lora_a" [n_in, rank] / "<weight>.lora_b" [rank, n_out] tensors.

The engine adds scale * B (A x) after each adapted matmul in llama.cpp's op
order, with the adapter's own matmuls per column in the decode phase, so:
greedy tokens and teacher-forced logits (bitwise) are llama-cpp-python's with
the same adapter and scale; the adapter changes the output; scale 0 is the base
model bit for bit; decode-phase logits do not depend on the batch; SpecBound
gives plain decoding's text. Bad adapters are Python exceptions (in a
subprocess: a crash there would be the engine's bug, and must not take the
test run down with it).
"""

from __future__ import annotations

import inspect
import json
import json.decoder
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from conftest import gen, spec_then_plain
from test_batch_invariance import PROMPT, check_invariance
from test_parity_llamacpp import reference_greedy

RANK = 8
ALPHA = 16.0  # scale * alpha / rank = 2 * scale: llama.cpp's alpha scaling is exercised
WEIGHTS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
PROMPTS = [
    b"def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    b"The three primary colors are",
]
N_NEW = 48


def adapted_weights(model_path: str, extra: tuple = ("output.weight",)) -> dict:
    """name -> (n_in, n_out) of every attention/FFN weight of the model, and of
    `extra` where the model has them (SmolLM2 and Qwen2.5 tie their LM head)."""
    import gguf

    out = {}
    for t in gguf.GGUFReader(model_path).tensors:
        parts = t.name.split(".")
        if (len(parts) == 4 and parts[0] == "blk" and parts[2] in WEIGHTS and parts[3] == "weight") or t.name in extra:
            out[t.name] = (int(t.shape[0]), int(t.shape[1]))
    return out


def model_arch(model_path: str) -> str:
    import gguf

    return gguf.GGUFReader(model_path).fields["general.architecture"].contents()


def write_adapter(path, arch: str, weights: dict, dtype: str = "F16", rank: int = RANK, alpha: float | None = ALPHA,
                  seed: int = 0, gain: float = 0.1, general_type: str = "adapter", adapter_type: str = "lora",
                  skip: tuple = ()) -> str:
    """A GGUF LoRA adapter of `weights` ({name: (n_in, n_out)}) with random
    pairs; B's gain sets how far the adapter moves the model. skip: tensor
    names left out (a broken adapter)."""
    import gguf

    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_string("general.type", general_type)
    w.add_string("adapter.type", adapter_type)
    if alpha is not None:
        w.add_float32("adapter.lora.alpha", alpha)
    for name, (n_in, n_out) in weights.items():
        a = rng.standard_normal((rank, n_in)) / np.sqrt(n_in)  # numpy [rank, n_in] = GGUF ne [n_in, rank]
        b = rng.standard_normal((n_out, rank)) * gain / np.sqrt(rank)
        for suffix, m in ((".lora_a", a), (".lora_b", b)):
            if name + suffix in skip:
                continue
            if dtype in ("F16", "F32"):
                w.add_tensor(name + suffix, m.astype(np.float16 if dtype == "F16" else np.float32))
            else:
                q = getattr(gguf.GGMLQuantizationType, dtype)
                w.add_tensor(name + suffix, gguf.quants.quantize(m.astype(np.float32), q), raw_dtype=q)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return str(path)


def lora_session(make_session, path: str, adapter: str, scale: float, n_ctx: int = 1024):
    """A _core.Session with the adapter, as make_session builds one without."""
    from specbound_cpp import _core

    del make_session  # same arguments as conftest.new_session, CPU only (an adapter is refused with offload)
    return _core.Session(path, n_ctx, 512, 2, 2, 0, False, lora_path=adapter, lora_scale=scale)


# (model, adapter type, lora_scale): F16, F32 and Q8_0 pairs (BF16: teacher-forced only); a scale that is not
# exact in float (0.7) and one above 1; qwen2 adds biases after the adapter's
# term; the random qwen3 has an LM head of its own, adapted too.
CASES = [("smollm2-135m", "F16", 0.7), ("qwen2.5-coder-0.5b", "F32", 1.0), ("qwen3-random", "Q8_0", 1.5)]


@pytest.fixture(scope="module")
def adapters(model_file, tmp_path_factory):
    """adapters(model, dtype) -> path of the module's adapter for that model."""
    made: dict = {}
    root = tmp_path_factory.mktemp("lora")

    def get(model: str, dtype: str) -> str:
        if (model, dtype) not in made:
            path = model_file(model)
            made[model, dtype] = write_adapter(root / f"{model}-{dtype}.gguf", model_arch(path), adapted_weights(path),
                                               dtype=dtype, rank=32 if dtype == "Q8_0" else RANK)  # q8_0 blocks of 32
        return made[model, dtype]

    return get


@pytest.mark.parametrize("model,dtype,scale", CASES)
def test_greedy_matches_llamacpp_and_differs_from_base(model, dtype, scale, model_file, adapters, make_session,
                                                       make_reference):
    path = model_file(model)
    adapter = adapters(model, dtype)
    sess = lora_session(make_session, path, adapter, scale)
    base = make_session(path, n_ctx=1024)
    ref = make_reference(path, n_ctx=1024, lora_path=adapter, lora_scale=scale)
    changed = 0
    for text in PROMPTS:
        prompt = sess.tokenize(text, True, False)
        ours = list(gen(sess, prompt, N_NEW)["tokens"])
        theirs = reference_greedy(ref, prompt, N_NEW)
        assert ours == theirs, f"{model} {text!r}: ours {ours} vs llama.cpp {theirs}"
        assert len(ours) >= 8, "the adapter stops the model at once: it tests little"
        changed += ours != list(gen(base, prompt, N_NEW)["tokens"])
    # the adapter is in the graph: without it, the text is another
    assert changed == len(PROMPTS), f"{model}: the adapter changed {changed} of {len(PROMPTS)} continuations"


@pytest.mark.parametrize("model,dtype,scale", [CASES[0], CASES[2], ("qwen3-random", "BF16", 1.0)])
def test_teacher_forced_logits_bitwise_llamacpp(model, dtype, scale, model_file, adapters, make_session,
                                                make_reference):
    n = 600  # two prompt-phase chunks of 512 and 88, as llama-cpp-python's n_batch 512 makes them
    path = model_file(model)
    sess = lora_session(make_session, path, adapters(model, dtype), scale)
    toks = sess.tokenize(inspect.getsource(json.decoder).encode(), True, False)[:n]
    assert len(toks) == n
    ref = make_reference(path, n_ctx=1024, logits_all=True, lora_path=adapters(model, dtype), lora_scale=scale)
    ref.eval(toks)
    ours = np.concatenate([sess.eval_logits(toks[:512], 0, False), sess.eval_logits(toks[512:], 512, False)])
    theirs = np.asarray(ref.scores[:n], dtype=np.float32)
    exact = int(np.all(ours == theirs, axis=1).sum())
    print(f"{model} + {dtype} adapter: bitwise-equal rows {exact}/{n}, max |diff| {float(np.abs(ours - theirs).max()):.3g}")
    assert exact == n, f"{n - exact} of {n} teacher-forced rows differ from llama-cpp-python's bits"
    # the decode phase: one token at a time on both sides, as a generation runs
    sess.reset()
    ref.reset()
    sess.eval_logits(toks[:40], 0, False)
    ref.eval(toks[:40])
    singles = np.concatenate([sess.eval_logits([t], 40 + i, True) for i, t in enumerate(toks[40:48])])
    for t in toks[40:48]:
        ref.eval([t])
    assert np.array_equal(singles, np.asarray(ref.scores[40:48], dtype=np.float32))


def test_scale_zero_is_the_base_model(model_file, adapters, make_session):
    # llama.cpp leaves an adapter of scale 0 out of the graph: the base model's bits
    path = model_file("smollm2-135m")
    zero = lora_session(make_session, path, adapters("smollm2-135m", "F16"), 0.0)
    base = make_session(path, n_ctx=1024)
    assert any("not in the graph" in d for d in zero.devices())
    toks = zero.tokenize(PROMPTS[0], True, False)
    for s in (zero, base):
        s.reset()
    assert np.array_equal(zero.eval_logits(toks, 0, False), base.eval_logits(toks, 0, False))
    assert np.array_equal(zero.eval_logits([toks[-1]], len(toks), True), base.eval_logits([toks[-1]], len(toks), True))
    one = lora_session(make_session, path, adapters("smollm2-135m", "F16"), 1.0)
    assert not np.array_equal(one.eval_logits(toks, 0, False), base.eval_logits(toks, 0, False))


@pytest.mark.parametrize("model,dtype,scale", [CASES[0], CASES[2]])
def test_decode_with_adapter_batch_invariant(model, dtype, scale, model_file, adapters, make_session):
    sess = lora_session(make_session, model_file(model), adapters(model, dtype), scale, n_ctx=256)
    prefix = sess.tokenize(PROMPT, True, False)
    check_invariance(sess, prefix, f"{model} + {dtype} LoRA")


@pytest.mark.parametrize("model,dtype,scale", [CASES[0], CASES[2]])
def test_specbound_equals_plain_with_adapter(model, dtype, scale, model_file, adapters):
    from specbound_cpp import Llama

    llm = Llama(model_file(model), n_ctx=1024, n_threads=2, n_threads_batch=2, verbose=False, specbound=True,
                spec_gate=False, lora_path=adapters(model, dtype), lora_scale=scale)
    assert llm.invariance["ok"], llm.invariance
    assert any("LoRA adapter" in d for d in llm._session.devices())  # the verdict is the adapter's
    prompt = "def bubble_sort(xs):\n    # sort in place\n    for i in range(len(xs)):\n"
    spec, stats, plain = spec_then_plain(llm, prompt, max_tokens=64, temperature=0.0)
    assert spec == plain
    assert stats["specbound"] and stats["draft_tokens"] > 0, stats  # it speculated


# Bad adapters: each case builds our Llama in a child process and prints what
# it raised. A file llama.cpp refuses too is a LoraAdapterError (a ValueError
# and a RuntimeError: llama-cpp-python means to raise the latter, but 0.3.36
# builds its Llama with the failed adapter and crashes at the first call -
# measured with a missing file: SIGSEGV). An adapter llama.cpp loads and we do
# not run is UnsupportedOption (a NotImplementedError: the patched fallback).
CHILD = textwrap.dedent("""
    import json, sys
    from specbound_cpp import Llama
    model, cases = sys.argv[1], json.loads(sys.argv[2])
    out = {}
    for name, kw in cases.items():
        try:
            Llama(model, n_ctx=256, n_threads=2, verbose=False, **kw)
            out[name] = ["ok", [], ""]
        except Exception as e:
            out[name] = [type(e).__name__, [c.__name__ for c in type(e).__mro__], str(e)]
    print(json.dumps(out))
""")


def write_bad_adapters(tmp, smollm2: str, qwen05: str) -> dict:
    """case -> Llama keyword arguments"""
    arch, weights = model_arch(smollm2), adapted_weights(smollm2)
    one = dict(list(weights.items())[:2])
    good = write_adapter(tmp / "good.gguf", arch, one)
    with open(good, "rb") as f:
        data = f.read()
    (tmp / "truncated.gguf").write_bytes(data[: len(data) - 64])
    (tmp / "corrupt.gguf").write_bytes(b"GGUF" + b"\xff" * 60)
    (tmp / "text.gguf").write_bytes(b"not a gguf file at all")
    name0 = next(iter(one))
    return {
        "missing": dict(lora_path=str(tmp / "absent.gguf")),
        "not_gguf": dict(lora_path=str(tmp / "text.gguf")),
        "corrupt_header": dict(lora_path=str(tmp / "corrupt.gguf")),
        "truncated": dict(lora_path=str(tmp / "truncated.gguf")),
        "not_an_adapter": dict(lora_path=write_adapter(tmp / "model.gguf", arch, one, general_type="model")),
        "not_lora": dict(lora_path=write_adapter(tmp / "cvec.gguf", arch, one, adapter_type="control_vector")),
        "other_arch": dict(lora_path=write_adapter(tmp / "arch.gguf", model_arch(qwen05), one)),
        "other_model_shapes": dict(lora_path=write_adapter(tmp / "shapes.gguf", arch, {
            "blk.0.attn_q.weight": (896, 896)})),  # Qwen2.5-0.5B's q, on SmolLM2
        "other_model_tensor": dict(lora_path=write_adapter(tmp / "layer.gguf", arch, {
            "blk.99.attn_q.weight": one[name0]})),
        "pair_missing_b": dict(lora_path=write_adapter(tmp / "half.gguf", arch, one, skip=(name0 + ".lora_b",))),
        # llama.cpp loads these two, then aborts at its first graph (SmolLM2's tied
        # LM head would multiply by the embeddings' pair) or runs a type we do not
        "token_embd": dict(lora_path=write_adapter(tmp / "embd.gguf", arch, {"token_embd.weight": (49152, 576)})),
        "q4_0_pairs": dict(lora_path=write_adapter(tmp / "q4_0.gguf", arch, {"blk.0.ffn_down.weight": (1536, 576)},
                                                   dtype="Q4_0", rank=32)),
        "gpu_offload": dict(lora_path=good, n_gpu_layers=1),
        "scale_not_a_number": dict(lora_path=good, lora_scale="1.0"),
        "empty_path_is_no_adapter": dict(lora_path=""),
        "good": dict(lora_path=good, lora_scale=0.5),
    }


def test_bad_adapters_are_clear_python_exceptions(tmp_path, model_file):
    cases = write_bad_adapters(tmp_path, model_file("smollm2-135m"), model_file("qwen2.5-coder-0.5b"))
    proc = subprocess.run([sys.executable, "-c", CHILD, model_file("smollm2-135m"), json.dumps(cases)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = {
        "missing": "does not exist", "not_gguf": "not a valid GGUF", "corrupt_header": "not a valid GGUF",
        "truncated": "truncated", "not_an_adapter": "general.type", "not_lora": "adapter.type",
        "other_arch": "architecture", "other_model_shapes": "shapes", "other_model_tensor": "does not have",
        "pair_missing_b": "lacks its lora_b",
    }
    for case, words in expected.items():
        kind, mro, why = got[case]
        assert kind == "LoraAdapterError" and {"ValueError", "RuntimeError"} <= set(mro), (case, got[case])
        assert words in why and cases[case]["lora_path"] in why, (case, got[case])
    for case in ("token_embd", "q4_0_pairs", "gpu_offload"):
        assert got[case][0] == "UnsupportedOption" and "lora_path" in got[case][2], (case, got[case])
    assert "token embeddings" in got["token_embd"][2] and "q4_0" in got["q4_0_pairs"][2], got
    assert got["scale_not_a_number"][0] == "TypeError", got["scale_not_a_number"]
    assert got["empty_path_is_no_adapter"][0] == "ok" and got["good"][0] == "ok", got


def test_patched_app_gets_ours_or_llamacpp_python(model_file, adapters):
    import llama_cpp

    import specbound_cpp
    from specbound_cpp import FallbackWarning

    path, adapter = model_file("smollm2-135m"), adapters("smollm2-135m", "F16")
    with specbound_cpp.patched_llama_cpp():
        with warnings.catch_warnings():
            warnings.simplefilter("error", FallbackWarning)  # a supported adapter must not fall back
            ours = llama_cpp.Llama(path, n_ctx=256, n_threads=2, verbose=False, lora_path=adapter, lora_scale=0.7)
        assert isinstance(ours, specbound_cpp.Llama)
        assert (ours.lora_path, ours.lora_scale) == (adapter, 0.7)
        with pytest.warns(FallbackWarning, match="lora_path"):
            theirs = llama_cpp.Llama(path, n_ctx=256, n_threads=2, verbose=False, lora_path=adapter, lora_scale=0.7,
                                     n_gpu_layers=1)  # refused with offload: llama-cpp-python's own class
    assert not isinstance(theirs, specbound_cpp.Llama)
    kw = dict(max_tokens=24, temperature=0.0)
    assert ours("The three primary colors are", **kw)["choices"][0]["text"] == \
        theirs("The three primary colors are", **kw)["choices"][0]["text"]


def test_embeddings_with_adapter(model_file, adapters, make_reference):
    # embedding=True reads the same adapted layers: llama-cpp-python's values
    # with the same adapter (to test_embeddings' tolerance), not the base model's
    import llama_cpp
    from test_embeddings import assert_close

    from specbound_cpp import Llama

    path, adapter = model_file("smollm2-135m"), adapters("smollm2-135m", "F16")
    kw = dict(n_ctx=512, embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN)
    ours = Llama(path, n_threads=2, verbose=False, lora_path=adapter, lora_scale=0.7, **kw)
    ref = make_reference(path, lora_path=adapter, lora_scale=0.7, **kw)
    base = Llama(path, n_threads=2, verbose=False, **kw)
    text = "The quick brown fox jumps over the lazy dog."
    assert_close(ours.embed(text), ref.embed(text), "smollm2 + LoRA, mean pooling")
    a, b = np.asarray(ours.embed(text)), np.asarray(base.embed(text))
    assert np.abs(a - b).max() / np.abs(b).max() > 1e-2, "the adapter does not move the embeddings"
