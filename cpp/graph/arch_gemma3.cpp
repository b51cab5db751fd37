// gemma3: RMS norms before and after both attention and FFN, per-head q/k
// norms, NeoX rotary with a per-layer base, GELU-gated FFN, and sliding-window
// attention on most layers (the mask and rope base come from hp.is_swa(il)).
// The token embeddings are scaled by sqrt(n_embd) in the engine (hp.embd_scale).
#include "graph/builder.h"

#include <cmath>

namespace sb {

ggml_tensor * build_layer_gemma3(GraphBuilder & b, int il, ggml_tensor * x, const Segment & s) {
    const HParams & hp = b.m.hp;
    const Layer & L = b.m.layers[il];
    ggml_context * ctx = b.ctx;

    ggml_tensor * h = b.rms_norm(x, L.attn_norm);
    auto [q, k, v] = b.qkv(L, h);
    q = b.rope(b.rms_norm(q, L.attn_q_norm), s, il);  // norms per head
    k = b.rope(b.rms_norm(k, L.attn_k_norm), s, il);
    // query_pre_attn_scalar: 1/sqrt(head_dim), except the 27B model (62 layers),
    // which uses 1/sqrt(n_embd/n_head). Applied to q before attention (scale 1
    // inside), in that order, as llama.cpp does.
    const float scale = hp.n_layer == 62 ? 1.0f / sqrtf((float) (hp.n_embd / hp.n_head)) : 1.0f / sqrtf((float) hp.head_dim);
    q = ggml_scale(ctx, q, scale);
    ggml_tensor * a = b.matmul(L.wo, b.attention(il, q, k, v, s, 1.0f));
    x = ggml_add(ctx, b.rms_norm(a, L.attn_post_norm), x);

    h = b.rms_norm(x, L.ffn_norm);
    return ggml_add(ctx, b.rms_norm(b.ffn_geglu(L, h), L.ffn_post_norm), x);
}

} // namespace sb
