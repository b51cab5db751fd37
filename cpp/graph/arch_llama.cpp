// llama: RMS norm, rotary (normal mode), grouped-query attention, SwiGLU FFN.
// SmolLM2, Llama 2/3, Mistral-style models.
#include "graph/builder.h"

namespace sb {

ggml_tensor * build_layer_llama(GraphBuilder & b, int il, ggml_tensor * x, const Segment & s) {
    const HParams & hp = b.m.hp;
    const Layer & L = b.m.layers[il];
    ggml_context * ctx = b.ctx;
    const int64_t m = x->ne[1];

    ggml_tensor * h = b.rms_norm(x, L.attn_norm);
    ggml_tensor * q = b.matmul(L.wq, h), * k = b.matmul(L.wk, h), * v = b.matmul(L.wv, h);
    if (L.bq) q = ggml_add(ctx, q, L.bq);  // optional biases (some llama-arch fine-tunes)
    if (L.bk) k = ggml_add(ctx, k, L.bk);
    if (L.bv) v = ggml_add(ctx, v, L.bv);
    q = ggml_reshape_3d(ctx, q, hp.head_dim, hp.n_head, m);
    k = ggml_reshape_3d(ctx, k, hp.head_dim, hp.n_head_kv, m);
    v = ggml_reshape_3d(ctx, v, hp.head_dim, hp.n_head_kv, m);
    q = b.rope(q, s, il);
    k = b.rope(k, s, il);
    ggml_tensor * a = b.matmul(L.wo, b.attention(il, q, k, v, s));
    x = ggml_add(ctx, a, x);

    h = b.rms_norm(x, L.ffn_norm);
    return ggml_add(ctx, b.ffn_swiglu(L, h), x);
}

} // namespace sb
