"""Our decode matmul kernels (cpp/kernels/): bitwise equal to ggml's vec_dot
for every column whatever the batch, on synthetic and on real weights.

SpecBound's exactness and our parity with llama.cpp both rest on this: a
column computed in a batch of k must be bitwise the column computed alone,
which is what ggml's single-token vec_dot gives. Closeness to a float
reference (dequantized weights, unquantized activations) guards against a
kernel that is consistently wrong in the same way as its reference.
"""

from __future__ import annotations

import numpy as np
import pytest

from specbound_cpp import _core

# every type the registry models use, then the other types we have kernels for
# (q4_0 and iq4_nl in their plain layout: llama.cpp repacks them where it can)
TYPES = ["q8_0", "q5_0", "q4_1", "q4_K", "q6_K",
         "q5_K", "q3_K", "iq4_xs", "q2_K", "q5_1", "f16", "bf16", "q4_0", "iq4_nl"]
BLOCK = {"q8_0": 32, "q5_0": 32, "q4_1": 32, "q5_1": 32, "q4_0": 32, "iq4_nl": 32, "f16": 1, "bf16": 1,
         "q4_K": 256, "q6_K": 256, "q5_K": 256, "q3_K": 256, "iq4_xs": 256, "q2_K": 256}
# model widths, and for the 32-value types odd block counts (iq4_nl's last odd
# block is summed apart), for f16/bf16 values past the last 32/64-value step
K_VALUES = [96, 256, 576, 896, 1000, 1056, 1536, 4864, 8960]

# Our kernels are built twice (cpp/kernels/x86_avx2.cpp, x86_avx512.cpp); on an
# AVX-512 VNNI CPU SPECBOUND_KERNELS=avx2 selects the AVX2 build. Its f16/bf16
# kernels mirror a ggml built without AVX-512 and are offered only with one.
BUILDS = ["native", "avx2"]


@pytest.fixture(params=BUILDS)
def build(request, monkeypatch):
    if request.param == "avx2":
        monkeypatch.setenv("SPECBOUND_KERNELS", "avx2")
    return request.param


def skip_if_no_kernel(typ: str, build: str) -> None:
    """The AVX2 build's f16/bf16 kernels exist only for a ggml without AVX-512."""
    if build == "avx2" and typ in ("f16", "bf16"):
        try:
            _core.testing.kernel_matmul(typ, quantized_weights(typ, 1, 64, seed=0), 1, np.zeros((1, 64), np.float32), "ours")
        except ValueError as e:
            if "no kernel of ours" in str(e):
                pytest.skip(f"{typ}: this ggml runs its AVX-512 arithmetic, which the AVX2 build does not mirror")
            raise


def activations(kind: str, n: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.standard_normal((n, k)).astype(np.float32)
    if kind == "zeros":
        x = rng.standard_normal((n, k)).astype(np.float32)
        x[::2] = 0.0  # whole columns of zeros beside normal ones
        x[:, : k // 2] = 0.0
        return x
    if kind == "ties":  # many elements at +-max: rounding ties in the quantizer
        return np.where(rng.random((n, k)) < 0.5, 3.0, -3.0).astype(np.float32) * (1 + (rng.random((n, k)) < 0.1))
    if kind == "wide":  # 2^-20 .. 2^19 within a column
        return (rng.standard_normal((n, k)) * 2.0 ** rng.integers(-20, 20, (n, k))).astype(np.float32)
    raise ValueError(kind)


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint32)


def quantized_weights(typ: str, rows: int, k: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((rows, k)) * rng.uniform(0.01, 0.2, (rows, 1))).astype(np.float32)
    return _core.testing.kernel_quantize(typ, w)


def assert_batch_invariant_and_vec_dot(typ, w, rows, x, threads=(1, 2, 3)):
    ref = _core.testing.kernel_matmul(typ, w, rows, x, "vec_dot")  # each column alone, ggml's arithmetic
    for nt in threads:
        for n in range(1, x.shape[0] + 1):
            out = _core.testing.kernel_matmul(typ, w, rows, x[:n], "ours", nt)
            assert np.array_equal(bits(out), bits(ref[:n])), f"{typ}: batch {n}, {nt} threads differs from vec_dot"


@pytest.mark.parametrize("typ", TYPES)
@pytest.mark.parametrize("k", K_VALUES)
def test_kernel_equals_vec_dot_for_every_batch(typ, k, build):
    if k % BLOCK[typ]:
        pytest.skip(f"{typ} needs k % {BLOCK[typ]} == 0")
    skip_if_no_kernel(typ, build)
    rows = 37  # not a multiple of any group size or thread count
    w = quantized_weights(typ, rows, k, seed=k)
    x = activations("normal", 16, k, seed=1)
    assert_batch_invariant_and_vec_dot(typ, w, rows, x, threads=(1, 3) if k > 2000 else (1, 2, 3))


@pytest.mark.parametrize("typ", TYPES)
def test_kernel_every_width_to_64(typ, build):
    """Batches 1..64: several passes of kCols columns and every remainder."""
    skip_if_no_kernel(typ, build)
    k = 1056 if BLOCK[typ] == 32 else 1000 if BLOCK[typ] == 1 else 1536
    rows = 21
    w = quantized_weights(typ, rows, k, seed=5)
    x = activations("normal", 64, k, seed=6)
    x[17] = activations("wide", 1, k, seed=4)[0] * (1e-3 if typ == "f16" else 1.0)  # within fp16's range
    x[40] = 0.0
    assert_batch_invariant_and_vec_dot(typ, w, rows, x, threads=(1, 3))


@pytest.mark.parametrize("typ", TYPES)
@pytest.mark.parametrize("kind", ["zeros", "ties", "wide"])
def test_kernel_adversarial_activations(typ, kind, build):
    skip_if_no_kernel(typ, build)
    k, rows = 1536, 19
    w = quantized_weights(typ, rows, k, seed=7)
    x = activations(kind, 16, k, seed=3)
    assert_batch_invariant_and_vec_dot(typ, w, rows, x, threads=(2,))


@pytest.mark.parametrize("typ", TYPES)
def test_kernel_close_to_float_reference(typ):
    k, rows = 1536, 64
    w = quantized_weights(typ, rows, k, seed=11)
    x = activations("normal", 8, k, seed=5)
    ours = _core.testing.kernel_matmul(typ, w, rows, x, "ours", 2).astype(np.float64)
    exact = _core.testing.kernel_matmul(typ, w, rows, x, "float").astype(np.float64)
    # activation quantization to 8 bits: a relative error of about 1% of the row norm
    err = np.abs(ours - exact).max() / np.abs(exact).max()
    assert err < 0.02, f"{typ}: max error {err:.4f} of the largest output"
    assert not np.array_equal(ours, exact)  # the reference is independent (floats, no quantized activations)


@pytest.mark.parametrize("typ", ["q8_0", "q5_0", "q4_0", "q4_1", "q5_1"])
def test_kernel_extreme_weight_bytes(typ, build):
    """Most weight bytes at the ends of their range (Q8_0's -128, which ggml's
    quantizer never writes but a file may hold; the 4- and 5-bit types' 0 and
    15 / 31): the pair kernels' -128 * sum(w) correction and the 256-bit
    kernels' sign trick must stay exact there."""
    k, rows = 1056, 13
    blocks = bytearray(quantized_weights(typ, rows, k, seed=9))
    size, first = {"q8_0": (34, 2), "q5_0": (22, 2), "q4_0": (18, 2), "q4_1": (20, 4), "q5_1": (24, 4)}[typ]  # block, its quants
    rng = np.random.default_rng(2)
    for b in range(0, len(blocks), size):
        quants = np.frombuffer(bytes(blocks[b + first : b + size]), np.uint8)
        extreme = np.where(rng.random(quants.size) < 0.5, 0x80 if typ == "q8_0" else 0x00, 0x7F if typ == "q8_0" else 0xFF)
        blocks[b + first : b + size] = np.where(rng.random(quants.size) < 0.7, extreme, quants).astype(np.uint8).tobytes()
    x = activations("ties", 17, k, seed=8)
    assert_batch_invariant_and_vec_dot(typ, bytes(blocks), rows, x, threads=(1, 2))


def test_kernel_rejects_bad_input():
    w = quantized_weights("q4_K", 4, 256, seed=0)
    with pytest.raises(ValueError):
        _core.testing.kernel_matmul("q4_K", w, 5, np.zeros((1, 256), np.float32), "ours")  # rows do not match the bytes
    with pytest.raises(ValueError):
        _core.testing.kernel_matmul("q4_K", w, 4, np.zeros((1, 256), np.float32), "sideways")
    with pytest.raises(ValueError):
        _core.testing.kernel_matmul("no_such_type", w, 4, np.zeros((1, 256), np.float32), "ours")


# ---- real weights, through the engine's decode graph (ggml_custom_4d, thread pool)

MODEL_TENSORS = {  # (model fixture, tensor) covering every type and K of the registry models
    "smollm2_path": ["blk.0.attn_q.weight", "blk.0.ffn_down.weight", "token_embd.weight"],
    "qwen05_path": ["blk.0.ffn_gate.weight", "blk.0.attn_v.weight", "blk.0.ffn_down.weight", "output.weight"],
    "qwen15_path": ["blk.0.ffn_up.weight", "blk.0.ffn_down.weight", "output.weight"],
    "gemma3_path": ["blk.0.attn_output.weight", "blk.0.ffn_down.weight", "blk.0.attn_q.weight"],
}


REPACKED = "(repacked, as llama.cpp)"  # kernel report of weights llama.cpp repacks (ggml's gemv per column)


def ggml_type_name(gguf_name: str) -> str:
    """gguf's "Q4_K" as ggml names it: "q4_K"."""
    return gguf_name.lower()[:-1] + "K" if gguf_name.endswith("_K") else gguf_name.lower()


def weight_types(path) -> dict:
    import gguf

    return {t.name: (t.tensor_type.name, int(t.shape[0])) for t in gguf.GGUFReader(path).tensors}


@pytest.mark.parametrize("fixture", sorted(MODEL_TENSORS))
def test_model_weights_through_decode_graph(fixture, request, make_session):
    path = request.getfixturevalue(fixture)
    sess = make_session(path, n_ctx=256)
    kernels = dict(sess.kernels())
    # every type passed its self-check here, or is repacked and decoded by llama.cpp's own gemv
    assert all(v.startswith("sb_") or REPACKED in v for v in kernels.values()), kernels
    types = weight_types(path)
    for name in MODEL_TENSORS[fixture]:
        typ, k = types[name]
        x = activations("normal", 16, k, seed=2)
        x[3] = activations("wide", 1, k, seed=4)[0]
        if REPACKED in kernels.get(ggml_type_name(typ), ""):
            assert_repacked_columns_are_single_tokens(sess, name, x, range(1, 17))
            continue
        rows = 333  # a slice of the rows, not a multiple of 16
        alone = np.concatenate([_core.testing.probe_matmul(sess, name, x[j:j + 1], "detour", 2, rows) for j in range(16)])
        for nt in (1, 2, 3):
            for n in (1, 2, 3, 5, 8, 13, 16):
                out = _core.testing.probe_matmul(sess, name, x[:n], "ours", nt, rows)
                assert np.array_equal(bits(out), bits(alone[:n])), f"{name}: batch {n}, {nt} threads"


def assert_repacked_columns_are_single_tokens(sess, name, x, widths, threads=(1, 2, 3)):
    """Each column of a batch through our decode op equals that column alone through
    ggml's own mul_mat on the repacked weight (llama.cpp's single-token gemv)."""
    alone = np.concatenate([_core.testing.probe_matmul(sess, name, x[j:j + 1], "ggml", 2) for j in range(x.shape[0])])
    for nt in threads:
        for n in widths:
            out = _core.testing.probe_matmul(sess, name, x[:n], "ours", nt)
            assert np.array_equal(bits(out), bits(alone[:n])), f"{name}: batch {n}, {nt} threads"


def repacked_columns_build(build: str) -> str:
    """Which build of our repacked multi-column kernels a session of this build
    reports: the AVX-512 one where the CPU has it, unless the AVX2 one is asked for."""
    native = "sb_avx512vnni" if _core.testing.cpu_has_avx512_vnni() else "sb_avx2"
    return "sb_avx2" if build == "avx2" else native


@pytest.mark.parametrize("name", ["blk.0.ffn_gate.weight", "blk.3.ffn_down.weight"])
def test_repacked_q4_K_every_width_to_64(name, build, qwen15_path, make_session):
    """Widths 1..64, every position, 1-3 threads, on repacked Q4_K weights of the
    1.5B (K = 1536 and 8960: the ffn_down row does not fit one L1 block), for
    each build of our kernels this CPU runs."""
    sess = make_session(qwen15_path, n_ctx=256)
    typ, k = weight_types(qwen15_path)[name]
    report = dict(sess.kernels())["q4_K"]
    ours = repacked_columns_build(build)
    # the AVX2 build takes a single column too (faster than the gemv there), the AVX-512 one batches only
    widths = "every width" if ours == "sb_avx2" else "batches"
    assert typ == "Q4_K" and REPACKED in report and f"{widths}: {ours}," in report, report
    x = activations("normal", 64, k, seed=9)
    x[17] = activations("wide", 1, k, seed=4)[0]
    x[40] = 0.0
    assert_repacked_columns_are_single_tokens(sess, name, x, range(1, 65), threads=(1, 2, 3))


def test_kernels_can_be_switched_off(smollm2_path, monkeypatch, make_session):
    monkeypatch.setenv("SPECBOUND_KERNELS", "ggml")
    sess = _core.Session(smollm2_path, 256, 256, 2, 2, 0, False)
    assert dict(sess.kernels()) == {"q4_1": "ggml vec_dot", "q8_0": "ggml vec_dot (pre-quantized input)"}
