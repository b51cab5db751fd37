// llama: RMS norm, rotary (normal mode), grouped-query attention, SwiGLU FFN.
// SmolLM2, Llama 2/3, Mistral-style models.
#include "graph/builder.h"

namespace sb {

static ggml_tensor * build_layer_llama(GraphBuilder & b, int il, ggml_tensor * x, const Segment & s) {
    const Layer & L = b.m.layers[il];
    ggml_context * ctx = b.ctx;

    ggml_tensor * h = b.rms_norm(x, L.attn_norm);
    auto [q, k, v] = b.qkv(L, h, s, il);  // optional biases (some llama-arch fine-tunes)
    ggml_tensor * a = b.matmul(L.wo, b.attention(il, q, k, v, s));
    x = ggml_add(ctx, a, x);

    h = b.rms_norm(x, L.ffn_norm);
    return ggml_add(ctx, b.ffn_swiglu(L, h), x);
}

extern const ArchInfo arch_llama = {
    "llama", GGML_ROPE_TYPE_NORMAL, ArchTensors{}, /*read_hparams*/ nullptr, build_layer_llama,
};

} // namespace sb
