// qwen3: qwen2's block without q/k/v biases, with an RMS norm over each head of
// q and k before the rotary embedding.
#include "graph/builder.h"

namespace sb {

ggml_tensor * build_layer_qwen3(GraphBuilder & b, int il, ggml_tensor * x, const Segment & s) {
    const HParams & hp = b.m.hp;
    const Layer & L = b.m.layers[il];
    ggml_context * ctx = b.ctx;
    const int64_t m = x->ne[1];

    ggml_tensor * h = b.rms_norm(x, L.attn_norm);
    ggml_tensor * q = b.matmul(L.wq, h), * k = b.matmul(L.wk, h), * v = b.matmul(L.wv, h);
    if (L.bq) q = ggml_add(ctx, q, L.bq);  // optional, as llama.cpp allows them
    if (L.bk) k = ggml_add(ctx, k, L.bk);
    if (L.bv) v = ggml_add(ctx, v, L.bv);
    q = b.rms_norm(ggml_reshape_3d(ctx, q, hp.head_dim, hp.n_head, m), L.attn_q_norm);     // per head
    k = b.rms_norm(ggml_reshape_3d(ctx, k, hp.head_dim, hp.n_head_kv, m), L.attn_k_norm);
    q = b.rope(q, s, il);
    k = b.rope(k, s, il);
    v = ggml_reshape_3d(ctx, v, hp.head_dim, hp.n_head_kv, m);
    ggml_tensor * a = b.matmul(L.wo, b.attention(il, q, k, v, s));
    x = ggml_add(ctx, a, x);

    h = b.rms_norm(x, L.ffn_norm);
    return ggml_add(ctx, b.ffn_swiglu(L, h), x);
}

} // namespace sb
