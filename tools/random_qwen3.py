"""The small random-weight qwen3 GGUF the tests and the GPU recipe load.

No qwen3 GGUF ships in the model registry, so the tests (tests/conftest.py)
write one with SmolLM2's tokenizer, and tools/gpu/random_models.py writes the
same models for a GPU run that cannot wait for a registry model's uploads.
Kept here, not in tests/, so that tools need no path into tests/.
"""

from __future__ import annotations


def copy_tokenizer(writer, src_path: str) -> int:
    """Copy every tokenizer.* field of the GGUF at src_path into a gguf.GGUFWriter
    (so that llama.cpp can load the new file's vocabulary); returns n_vocab."""
    import gguf

    n_vocab = 0
    for name, field in gguf.GGUFReader(src_path).fields.items():
        if not name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        sub = field.types[1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), vtype, sub_type=sub)
        if name == "tokenizer.ggml.tokens":
            n_vocab = len(field.data)
    return n_vocab


def _add_hparams(w, n_layer: int, n_embd: int, n_head: int, n_head_kv: int, head_dim: int, n_ff: int) -> None:
    """The qwen3 hyper-parameters of the random model on a gguf.GGUFWriter."""
    w.add_name("qwen3 random test model")
    w.add_context_length(4096)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(1000000.0)
    w.add_layer_norm_rms_eps(1e-6)


def write_random_qwen3_gguf(path: str, smollm2_path: str, n_layer: int = 6, n_embd: int = 128, n_head: int = 4,
                            n_head_kv: int = 2, head_dim: int = 64, n_ff: int = 256, seed: int = 0,
                            weight_type: str = "F16") -> None:
    """A qwen3-layout GGUF with random F16 weights (F32 norms) and SmolLM2's
    tokenizer, which llama.cpp loads as it would a real Qwen3. head_dim *
    n_head != n_embd on purpose (as in real Qwen3 models). A separate random
    output matrix: with tied embeddings a random model only repeats its input.
    weight_type: the matrices' type, "F16" or one gguf-py can quantize ("Q4_1",
    "Q8_0", ...: another matmul kernel family on every backend)."""
    import gguf
    import numpy as np

    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(path, "qwen3")
    n_vocab = copy_tokenizer(w, smollm2_path)
    _add_hparams(w, n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff)

    qtype = getattr(gguf.GGMLQuantizationType, weight_type)

    def mat(n_out: int, n_in: int, gain: float = 1.0):  # numpy [out, in] -> GGUF ne [in, out]
        m = rng.standard_normal((n_out, n_in)) * gain / np.sqrt(n_in)
        if qtype == gguf.GGMLQuantizationType.F16:
            return m.astype(np.float16)
        return gguf.quants.quantize(m.astype(np.float32), qtype)

    def norm(n: int):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    w.add_tensor("token_embd.weight", rng.standard_normal((n_vocab, n_embd)).astype(np.float16))
    w.add_tensor("output_norm.weight", norm(n_embd))

    def add_mat(name: str, n_out: int, n_in: int, gain: float = 1.0):
        m = mat(n_out, n_in, gain)
        w.add_tensor(name, m, raw_dtype=None if qtype == gguf.GGMLQuantizationType.F16 else qtype)

    add_mat("output.weight", n_vocab, n_embd, 4.0)  # well separated logits
    for il in range(n_layer):
        b = f"blk.{il}."
        w.add_tensor(b + "attn_norm.weight", norm(n_embd))
        add_mat(b + "attn_q.weight", n_head * head_dim, n_embd)
        add_mat(b + "attn_k.weight", n_head_kv * head_dim, n_embd)
        add_mat(b + "attn_v.weight", n_head_kv * head_dim, n_embd)
        w.add_tensor(b + "attn_q_norm.weight", norm(head_dim))
        w.add_tensor(b + "attn_k_norm.weight", norm(head_dim))
        add_mat(b + "attn_output.weight", n_embd, n_head * head_dim, 2.0)
        w.add_tensor(b + "ffn_norm.weight", norm(n_embd))
        add_mat(b + "ffn_gate.weight", n_ff, n_embd)
        add_mat(b + "ffn_up.weight", n_ff, n_embd)
        add_mat(b + "ffn_down.weight", n_embd, n_ff, 2.0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
