// qwen2: llama's block with biases on q/k/v and NeoX-style rotary.
#include "graph/builder.h"

namespace sb {

ggml_tensor * build_layer_qwen2(GraphBuilder & b, int il, ggml_tensor * x, const Segment & s) {
    const HParams & hp = b.m.hp;
    const Layer & L = b.m.layers[il];
    ggml_context * ctx = b.ctx;
    const int64_t m = x->ne[1];

    ggml_tensor * h = b.rms_norm(x, L.attn_norm);
    ggml_tensor * q = ggml_add(ctx, b.matmul(L.wq, h), L.bq);
    ggml_tensor * k = ggml_add(ctx, b.matmul(L.wk, h), L.bk);
    ggml_tensor * v = ggml_add(ctx, b.matmul(L.wv, h), L.bv);
    q = b.rope(ggml_reshape_3d(ctx, q, hp.head_dim, hp.n_head, m), s, il);
    k = b.rope(ggml_reshape_3d(ctx, k, hp.head_dim, hp.n_head_kv, m), s, il);
    v = ggml_reshape_3d(ctx, v, hp.head_dim, hp.n_head_kv, m);
    ggml_tensor * a = b.matmul(L.wo, b.attention(il, q, k, v, s));
    x = ggml_add(ctx, a, x);

    h = b.rms_norm(x, L.ffn_norm);
    return ggml_add(ctx, b.ffn_swiglu(L, h), x);
}

} // namespace sb
