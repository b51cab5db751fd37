// Hyper-parameters common to all architectures; each architecture's own keys
// are read by its ArchInfo::read_hparams hook.
#include "model/arch.h"
#include "model/gguf_meta.h"
#include "model/read_gguf.h"

#include <cmath>
#include <stdexcept>

namespace sb {

static const ArchInfo * read_arch(gguf_context * g, HParams & hp) {
    int64_t id = gguf_find_key(g, "general.architecture");
    if (id < 0 || gguf_get_kv_type(g, id) != GGUF_TYPE_STRING)
        throw std::invalid_argument("GGUF file has no general.architecture");
    hp.arch_name = gguf_get_val_str(g, id);
    const ArchInfo * arch = find_arch(hp.arch_name);
    if (!arch)
        throw std::invalid_argument("unsupported model architecture '" + hp.arch_name +
                                    "' (supported: " + supported_arch_list() + ")");
    return arch;
}

// values ggml's ops assert on (rms_norm: eps >= 0; rope: even n_rot <= head size)
static void check_hparams(const HParams & hp) {
    if (hp.n_layer <= 0 || hp.n_embd <= 0 || hp.n_head <= 0 || hp.n_head_kv <= 0 || hp.n_head % hp.n_head_kv != 0)
        throw std::invalid_argument("GGUF hyper-parameters are inconsistent");
    if (!(std::isfinite(hp.rms_eps) && hp.rms_eps >= 0.0f))
        throw std::invalid_argument("GGUF attention.layer_norm_rms_epsilon is negative or not finite");
    if (!(std::isfinite(hp.rope_freq_base) && hp.rope_freq_base > 0.0f) ||
        !(std::isfinite(hp.rope_freq_scale) && hp.rope_freq_scale > 0.0f))
        throw std::invalid_argument("GGUF rope frequency base / scaling factor is not a positive number");
    if (hp.head_dim <= 0 || hp.n_rot <= 0 || hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0)
        throw std::invalid_argument("GGUF rope.dimension_count / attention.key_length do not fit the head size");
}

void read_hparams(gguf_context * g, HParams & hp) {
    hp.arch = read_arch(g, hp);
    hp.rope_mode = hp.arch->rope_mode;
    hp.n_layer = get_u32(g, arch_key(hp, "block_count"), true);
    hp.n_embd = get_u32(g, arch_key(hp, "embedding_length"), true);
    hp.n_ff = get_u32(g, arch_key(hp, "feed_forward_length"), true);
    hp.n_head = get_u32(g, arch_key(hp, "attention.head_count"), true);
    hp.n_head_kv = get_u32(g, arch_key(hp, "attention.head_count_kv"), false, hp.n_head);
    // (n_head == 0 is refused by check_hparams; no division by zero before it)
    hp.head_dim = get_u32(g, arch_key(hp, "attention.key_length"), false, hp.n_head > 0 ? hp.n_embd / hp.n_head : 0);
    hp.n_rot = get_u32(g, arch_key(hp, "rope.dimension_count"), false, hp.head_dim);
    hp.n_ctx_train = get_u32(g, arch_key(hp, "context_length"), false, 2048);
    hp.rms_eps = get_f32(g, arch_key(hp, "attention.layer_norm_rms_epsilon"), 1e-5f);
    hp.rope_freq_base = get_f32(g, arch_key(hp, "rope.freq_base"), 10000.0f);
    float scale = get_f32(g, arch_key(hp, "rope.scaling.factor"), 0.0f);
    if (scale <= 0.0f) scale = get_f32(g, arch_key(hp, "rope.scale_linear"), 0.0f);  // the older key
    hp.rope_freq_scale = scale > 0.0f ? 1.0f / scale : 1.0f;
    read_rope_scaling(g, hp);
    check_hparams(hp);
    if (hp.arch->read_hparams) hp.arch->read_hparams(g, hp);
}

} // namespace sb
