// qwen3: qwen2's block without q/k/v biases, with an RMS norm over each head of
// q and k before the rotary embedding.
#include "graph/builder.h"

namespace sb {

static ggml_tensor * build_layer_qwen3(GraphBuilder & b, int il, ggml_tensor * x, const Segment & s) {
    const Layer & L = b.m.layers[il];
    ggml_context * ctx = b.ctx;

    ggml_tensor * h = b.rms_norm(x, L.attn_norm);
    auto [q, k, v] = b.qkv(L, h, s, il);  // biases optional, as llama.cpp allows them; q/k norms per head
    ggml_tensor * a = b.matmul(L.wo, b.attention(il, q, k, v, s));
    x = ggml_add(ctx, a, x);

    h = b.rms_norm(x, L.ffn_norm);
    return ggml_add(ctx, b.ffn_swiglu(L, h), x);
}

extern const ArchInfo arch_qwen3 = {
    "qwen3", GGML_ROPE_TYPE_NEOX, ArchTensors{ /*qkv_bias*/ false, /*qk_norm*/ true }, /*read_hparams*/ nullptr,
    build_layer_qwen3,
};

} // namespace sb
