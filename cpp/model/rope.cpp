// Rope scaling: the file's keys and llama-cpp-python's rope / YaRN options,
// resolved to ggml_rope_ext's parameters the way llama.cpp's context does, so
// that a model run with the same options computes the same rope.
#include "model/gguf_meta.h"
#include "model/read_gguf.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace sb {

static int scaling_type_from_string(const std::string & s) {
    if (s == "none") return 0;
    if (s == "linear") return 1;
    if (s == "yarn") return 2;
    if (s == "longrope") return 3;
    throw std::invalid_argument("GGUF rope.scaling.type '" + s + "' is not one llama.cpp knows");
}

void read_rope_scaling(gguf_context * g, HParams & hp) {
    const int64_t id = find_key(g, arch_key(hp, "rope.scaling.type"));
    if (id >= 0 && gguf_get_kv_type(g, id) == GGUF_TYPE_STRING)
        hp.rope_scaling_type = scaling_type_from_string(gguf_get_val_str(g, id));
    hp.n_ctx_orig_yarn = (int) get_u32(g, arch_key(hp, "rope.scaling.original_context_length"), false, 0);
    hp.rope_attn_factor = get_f32(g, arch_key(hp, "rope.scaling.attn_factor"), 1.0f);
    hp.rope_yarn_log_mul = get_f32(g, arch_key(hp, "rope.scaling.yarn_log_multiplier"), 0.0f);
}

// YaRN's magnitude correction for a context stretched by `factor`
static float yarn_mscale(float factor, float mscale) {
    return factor <= 1.0f ? 1.0f : 0.1f * mscale * logf(factor) + 1.0f;
}

// the attention factor of YaRN scaling (ext_factor != 0), before the file's rope_attn_factor
static float yarn_attn_factor(const HParams & hp, float freq_scale) {
    const float factor = 1.0f / freq_scale;
    // the transformers formula where the file gives a log multiplier (mscale taken as 1)
    float a = hp.rope_yarn_log_mul != 0.0f ? yarn_mscale(factor, 1.0f) / yarn_mscale(factor, hp.rope_yarn_log_mul)
                                           : yarn_mscale(factor, 1.0f);
    // ggml's rope multiplies by the same correction again when ext_factor != 0: cancel it
    return a * (1.0f / (1.0f + 0.1f * logf(factor)));
}

void resolve_rope(HParams & hp, const RopeOverrides & o) {
    if (o.scaling_type < -1 || o.scaling_type > 3) throw std::invalid_argument("rope_scaling_type must be -1..3");
    for (float v : { o.freq_base, o.freq_scale })
        if (!std::isfinite(v) || v < 0.0f) throw std::invalid_argument("rope_freq_base / rope_freq_scale must be >= 0");
    if (!std::isfinite(o.ext_factor) || !std::isfinite(o.attn_factor) || !std::isfinite(o.beta_fast) ||
        !std::isfinite(o.beta_slow) || o.orig_ctx < 0)
        throw std::invalid_argument("YaRN parameters must be finite, yarn_orig_ctx >= 0");
    RopeParams r;
    r.freq_base = o.freq_base == 0.0f ? hp.rope_freq_base : o.freq_base;
    r.freq_scale = o.freq_scale == 0.0f ? hp.rope_freq_scale : o.freq_scale;
    r.n_ctx_orig = o.orig_ctx != 0 ? o.orig_ctx : hp.n_ctx_orig_yarn != 0 ? hp.n_ctx_orig_yarn : hp.n_ctx_train;
    r.attn_factor = o.attn_factor >= 0.0f ? o.attn_factor : 1.0f;
    r.beta_fast = o.beta_fast >= 0.0f ? o.beta_fast : 32.0f;
    r.beta_slow = o.beta_slow >= 0.0f ? o.beta_slow : 1.0f;
    const int type = o.scaling_type == -1 ? hp.rope_scaling_type : o.scaling_type;
    if (type == 0) r.freq_scale = 1.0f;  // "none" never scales
    r.ext_factor = o.ext_factor >= 0.0f ? o.ext_factor : type == 2 ? 1.0f : 0.0f;
    if (r.ext_factor != 0.0f) r.attn_factor = yarn_attn_factor(hp, r.freq_scale);
    r.attn_factor *= hp.rope_attn_factor;
    hp.rope = r;
}

} // namespace sb
