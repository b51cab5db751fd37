// qwen2: llama's block with biases on q/k/v and NeoX-style rotary.
#include "graph/builder.h"

namespace sb {

static ggml_tensor * build_layer_qwen2(GraphBuilder & b, int il, ggml_tensor * x, const Segment & s) {
    const Layer & L = b.m.layers[il];
    ggml_context * ctx = b.ctx;

    ggml_tensor * h = b.rms_norm(x, L.attn_norm);
    auto [q, k, v] = b.qkv(L, h, s, il);  // with the q/k/v biases the loader requires
    ggml_tensor * a = b.matmul(L.wo, b.attention(il, q, k, v, s));
    x = ggml_add(ctx, a, x);

    h = b.rms_norm(x, L.ffn_norm);
    return ggml_add(ctx, b.ffn_swiglu(L, h), x);
}

extern const ArchInfo arch_qwen2 = {
    "qwen2", GGML_ROPE_TYPE_NEOX, ArchTensors{ /*qkv_bias*/ true }, /*read_hparams*/ nullptr, build_layer_qwen2,
};

} // namespace sb
