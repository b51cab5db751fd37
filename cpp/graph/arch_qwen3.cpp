// qwen3: qwen2's block without q/k/v biases, with an RMS norm over each head of
// q and k before the rotary embedding.
#include "graph/builder.h"

namespace sb {

ggml_tensor * build_layer_qwen3(GraphBuilder & b, int il, ggml_tensor * x, const Segment & s) {
    const Layer & L = b.m.layers[il];
    ggml_context * ctx = b.ctx;

    ggml_tensor * h = b.rms_norm(x, L.attn_norm);
    auto [q, k, v] = b.qkv(L, h);  // biases optional, as llama.cpp allows them
    q = b.rope(b.rms_norm(q, L.attn_q_norm), s, il);  // norms per head
    k = b.rope(b.rms_norm(k, L.attn_k_norm), s, il);
    ggml_tensor * a = b.matmul(L.wo, b.attention(il, q, k, v, s));
    x = ggml_add(ctx, a, x);

    h = b.rms_norm(x, L.ffn_norm);
    return ggml_add(ctx, b.ffn_swiglu(L, h), x);
}

} // namespace sb
