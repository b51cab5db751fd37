// Binding the GGUF's tensors to the model's weights, by llama.cpp's names.
#include "model/arch.h"
#include "model/read_gguf.h"

#include <stdexcept>

namespace sb {

static ggml_tensor * get_tensor(Model & m, const std::string & name, bool required) {
    ggml_tensor * t = ggml_get_tensor(m.ctx_meta, name.c_str());
    if (!t && required) throw std::invalid_argument("GGUF file is missing tensor '" + name + "'");
    return t;
}

static void bind_layer(Model & m, int il) {
    const HParams & hp = m.hp;
    const ArchTensors & need = hp.arch->tensors;
    Layer & L = m.layers[il];
    auto t = [&](const char * n, bool req) { return get_tensor(m, "blk." + std::to_string(il) + "." + n, req); };
    L.attn_norm = t("attn_norm.weight", true);
    L.wq = t("attn_q.weight", true);
    L.wk = t("attn_k.weight", true);
    L.wv = t("attn_v.weight", true);
    L.wo = t("attn_output.weight", true);
    L.bq = t("attn_q.bias", false);
    L.bk = t("attn_k.bias", false);
    L.bv = t("attn_v.bias", false);
    L.ffn_norm = t("ffn_norm.weight", true);
    L.ffn_gate = t("ffn_gate.weight", true);
    L.ffn_up = t("ffn_up.weight", true);
    L.ffn_down = t("ffn_down.weight", true);
    // bound only where the architecture uses them: the shared q/k/v helper
    // applies whatever norms a layer has
    if (need.qk_norm) {
        L.attn_q_norm = t("attn_q_norm.weight", true);
        L.attn_k_norm = t("attn_k_norm.weight", true);
    }
    if (need.post_norms) {
        L.attn_post_norm = t("post_attention_norm.weight", true);
        L.ffn_post_norm = t("post_ffw_norm.weight", true);
    }
    if (need.qk_norm && (L.attn_q_norm->ne[0] != hp.head_dim || L.attn_k_norm->ne[0] != hp.head_dim))
        throw std::invalid_argument("q/k norm of layer " + std::to_string(il) + " does not match the head size");
    if (need.qkv_bias && !(L.bq && L.bk && L.bv))
        throw std::invalid_argument(hp.arch_name + " model is missing attention biases in layer " + std::to_string(il));
    if (L.wq->ne[0] != hp.n_embd || L.wq->ne[1] != hp.n_head * hp.head_dim ||
        L.wk->ne[1] != hp.n_head_kv * hp.head_dim || L.ffn_up->ne[1] != hp.n_ff)
        throw std::invalid_argument("tensor shapes of layer " + std::to_string(il) + " do not match the hyper-parameters");
}

void bind_tensors(Model & m) {
    const HParams & hp = m.hp;
    m.tok_embd = get_tensor(m, "token_embd.weight", true);
    m.output_norm = get_tensor(m, "output_norm.weight", true);
    m.output = get_tensor(m, "output.weight", false);
    if (!m.output) m.output = m.tok_embd;  // tied embeddings
    m.rope_freqs = get_tensor(m, "rope_freqs.weight", false);
    m.hp.n_vocab = (int) m.output->ne[1];
    m.layers.resize(hp.n_layer);
    for (int il = 0; il < hp.n_layer; ++il) bind_layer(m, il);
    if (m.tok_embd->ne[0] != hp.n_embd) throw std::invalid_argument("token_embd.weight has the wrong width");
}

} // namespace sb
