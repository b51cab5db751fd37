// gemma3: RMS norms before and after both attention and FFN, per-head q/k
// norms, NeoX rotary with a per-layer base, GELU-gated FFN, and sliding-window
// attention on most layers (the mask and rope base come from hp.is_swa(il)).
// The token embeddings are scaled by sqrt(n_embd) in the engine (hp.embd_scale).
#include "graph/builder.h"
#include "model/gguf_meta.h"

#include <cmath>
#include <stdexcept>

namespace sb {

static ggml_tensor * build_layer_gemma3(GraphBuilder & b, int il, ggml_tensor * x, const Segment & s) {
    const HParams & hp = b.m.hp;
    const Layer & L = b.m.layers[il];
    ggml_context * ctx = b.ctx;

    ggml_tensor * h = b.rms_norm(x, L.attn_norm);
    auto [q, k, v] = b.qkv(L, h, s, il);  // q/k norms per head
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

// Which layers use the sliding window, as llama.cpp decides it: an explicit
// per-layer array, or a period n (default 6) where the last layer of every n is
// global and the others slide (n == 0: all slide).
static void read_swa_pattern(gguf_context * g, HParams & hp) {
    hp.swa.assign(hp.n_layer, false);
    const int64_t id = find_key(g, arch_key(hp, "attention.sliding_window_pattern"));
    if (id >= 0 && gguf_get_kv_type(g, id) == GGUF_TYPE_ARRAY) {
        const enum gguf_type t = gguf_get_arr_type(g, id);
        if ((int) gguf_get_arr_n(g, id) < hp.n_layer)
            throw std::invalid_argument("sliding_window_pattern has fewer entries than layers");
        for (int il = 0; il < hp.n_layer; ++il) {
            if (t == GGUF_TYPE_BOOL) hp.swa[il] = ((const int8_t *) gguf_get_arr_data(g, id))[il] != 0;
            else if (t == GGUF_TYPE_INT32 || t == GGUF_TYPE_UINT32) hp.swa[il] = ((const uint32_t *) gguf_get_arr_data(g, id))[il] != 0;
            else throw std::invalid_argument("sliding_window_pattern has an unexpected type");
        }
        return;
    }
    const uint32_t n = get_u32(g, arch_key(hp, "attention.sliding_window_pattern"), false, 6);
    for (int il = 0; il < hp.n_layer; ++il) hp.swa[il] = n == 0 || (uint32_t) il % n < n - 1;
}

static void read_hparams_gemma3(gguf_context * g, HParams & hp) {
    hp.embd_scale = sqrtf((float) hp.n_embd);
    hp.rms_eps = get_f32(g, arch_key(hp, "attention.layer_norm_rms_epsilon"), 1e-6f);
    hp.n_swa = (int) get_u32(g, arch_key(hp, "attention.sliding_window"), false, 0);
    if (hp.n_swa > 0) {
        read_swa_pattern(g, hp);
        // sliding layers keep the base rope (no scaling) unless the file says otherwise
        hp.rope_freq_base_swa = get_f32(g, arch_key(hp, "rope.freq_base_swa"), 10000.0f);
        hp.rope_freq_scale_swa = 1.0f;
    }
    if (get_f32(g, arch_key(hp, "final_logit_softcapping"), 0.0f) != 0.0f)
        throw std::invalid_argument("gemma3 with final logit softcapping is not supported");
}

extern const ArchInfo arch_gemma3 = {
    "gemma3", GGML_ROPE_TYPE_NEOX, ArchTensors{ /*qkv_bias*/ false, /*qk_norm*/ true, /*post_norms*/ true },
    read_hparams_gemma3, build_layer_gemma3,
};

} // namespace sb
