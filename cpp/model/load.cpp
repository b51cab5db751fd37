// Load a GGUF file: read hyper-parameters from its metadata, map the file and
// point every weight tensor at its bytes (zero copy on CPU).
#include "model/model.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace sb {

const char * supported_arch_list() { return "llama, qwen2, qwen3, gemma3"; }

static std::string key(const HParams & hp, const char * suffix) { return hp.arch_name + "." + suffix; }

static int64_t find_key(gguf_context * g, const std::string & k) { return gguf_find_key(g, k.c_str()); }

static uint32_t get_u32(gguf_context * g, const std::string & k, bool required, uint32_t def = 0) {
    int64_t id = find_key(g, k);
    if (id < 0) {
        if (required) throw std::invalid_argument("GGUF metadata is missing required key '" + k + "'");
        return def;
    }
    switch (gguf_get_kv_type(g, id)) {
        case GGUF_TYPE_UINT32: return gguf_get_val_u32(g, id);
        case GGUF_TYPE_INT32:  return (uint32_t) gguf_get_val_i32(g, id);
        case GGUF_TYPE_UINT64: return (uint32_t) gguf_get_val_u64(g, id);
        case GGUF_TYPE_ARRAY:  // per-layer arrays (e.g. head counts): take the first entry
            if (gguf_get_arr_type(g, id) == GGUF_TYPE_INT32 || gguf_get_arr_type(g, id) == GGUF_TYPE_UINT32)
                return ((const uint32_t *) gguf_get_arr_data(g, id))[0];
            break;
        default: break;
    }
    throw std::invalid_argument("GGUF metadata key '" + k + "' has an unexpected type");
}

static float get_f32(gguf_context * g, const std::string & k, float def) {
    int64_t id = find_key(g, k);
    if (id < 0) return def;
    if (gguf_get_kv_type(g, id) != GGUF_TYPE_FLOAT32) throw std::invalid_argument("GGUF key '" + k + "' is not a float");
    return gguf_get_val_f32(g, id);
}

Model::~Model() {
    for (auto b : buffers) ggml_backend_buffer_free(b);
    if (ctx_meta) ggml_free(ctx_meta);
    if (gguf) gguf_free(gguf);
    if (mmap_addr) munmap(mmap_addr, mmap_size);
}

// Which layers use the sliding window, as llama.cpp decides it: an explicit
// per-layer array, or a period n (default 6) where the last layer of every n is
// global and the others slide (n == 0: all slide).
static void read_swa_pattern(gguf_context * g, HParams & hp) {
    hp.swa.assign(hp.n_layer, false);
    const int64_t id = find_key(g, key(hp, "attention.sliding_window_pattern"));
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
    const uint32_t n = get_u32(g, key(hp, "attention.sliding_window_pattern"), false, 6);
    for (int il = 0; il < hp.n_layer; ++il) hp.swa[il] = n == 0 || (uint32_t) il % n < n - 1;
}

static void read_gemma3(gguf_context * g, HParams & hp) {
    hp.embd_scale = sqrtf((float) hp.n_embd);
    hp.rms_eps = get_f32(g, key(hp, "attention.layer_norm_rms_epsilon"), 1e-6f);
    hp.n_swa = (int) get_u32(g, key(hp, "attention.sliding_window"), false, 0);
    if (hp.n_swa > 0) {
        read_swa_pattern(g, hp);
        // sliding layers keep the base rope (no scaling) unless the file says otherwise
        hp.rope_freq_base_swa = get_f32(g, key(hp, "rope.freq_base_swa"), 10000.0f);
        hp.rope_freq_scale_swa = 1.0f;
    }
    if (get_f32(g, key(hp, "final_logit_softcapping"), 0.0f) != 0.0f)
        throw std::invalid_argument("gemma3 with final logit softcapping is not supported");
}

static void read_hparams(Model & m) {
    gguf_context * g = m.gguf;
    HParams & hp = m.hp;
    int64_t id = gguf_find_key(g, "general.architecture");
    if (id < 0 || gguf_get_kv_type(g, id) != GGUF_TYPE_STRING)
        throw std::invalid_argument("GGUF file has no general.architecture");
    hp.arch_name = gguf_get_val_str(g, id);
    if (hp.arch_name == "llama") {
        hp.arch = Arch::llama;
        hp.rope_mode = GGML_ROPE_TYPE_NORMAL;
    } else if (hp.arch_name == "qwen2") {
        hp.arch = Arch::qwen2;
        hp.rope_mode = GGML_ROPE_TYPE_NEOX;
    } else if (hp.arch_name == "qwen3") {
        hp.arch = Arch::qwen3;
        hp.rope_mode = GGML_ROPE_TYPE_NEOX;
    } else if (hp.arch_name == "gemma3") {
        hp.arch = Arch::gemma3;
        hp.rope_mode = GGML_ROPE_TYPE_NEOX;
    } else {
        throw std::invalid_argument("unsupported model architecture '" + hp.arch_name +
                                    "' (supported: " + supported_arch_list() + ")");
    }
    hp.n_layer = get_u32(g, key(hp, "block_count"), true);
    hp.n_embd = get_u32(g, key(hp, "embedding_length"), true);
    hp.n_ff = get_u32(g, key(hp, "feed_forward_length"), true);
    hp.n_head = get_u32(g, key(hp, "attention.head_count"), true);
    hp.n_head_kv = get_u32(g, key(hp, "attention.head_count_kv"), false, hp.n_head);
    hp.head_dim = get_u32(g, key(hp, "attention.key_length"), false, hp.n_embd / hp.n_head);
    hp.n_rot = get_u32(g, key(hp, "rope.dimension_count"), false, hp.head_dim);
    hp.n_ctx_train = get_u32(g, key(hp, "context_length"), false, 2048);
    hp.rms_eps = get_f32(g, key(hp, "attention.layer_norm_rms_epsilon"), 1e-5f);
    hp.rope_freq_base = get_f32(g, key(hp, "rope.freq_base"), 10000.0f);
    float scale = get_f32(g, key(hp, "rope.scaling.factor"), 0.0f);
    hp.rope_freq_scale = scale > 0.0f ? 1.0f / scale : 1.0f;
    if (hp.n_layer <= 0 || hp.n_embd <= 0 || hp.n_head <= 0 || hp.n_head_kv <= 0 || hp.n_head % hp.n_head_kv != 0)
        throw std::invalid_argument("GGUF hyper-parameters are inconsistent");
    // values ggml's ops assert on (rms_norm: eps >= 0; rope: even n_rot <= head size)
    if (!(std::isfinite(hp.rms_eps) && hp.rms_eps >= 0.0f))
        throw std::invalid_argument("GGUF attention.layer_norm_rms_epsilon is negative or not finite");
    if (!(std::isfinite(hp.rope_freq_base) && hp.rope_freq_base > 0.0f) ||
        !(std::isfinite(hp.rope_freq_scale) && hp.rope_freq_scale > 0.0f))
        throw std::invalid_argument("GGUF rope frequency base / scaling factor is not a positive number");
    if (hp.head_dim <= 0 || hp.n_rot <= 0 || hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0)
        throw std::invalid_argument("GGUF rope.dimension_count / attention.key_length do not fit the head size");
    if (hp.arch == Arch::gemma3) read_gemma3(g, hp);
}

static ggml_tensor * get_tensor(Model & m, const std::string & name, bool required) {
    ggml_tensor * t = ggml_get_tensor(m.ctx_meta, name.c_str());
    if (!t && required) throw std::invalid_argument("GGUF file is missing tensor '" + name + "'");
    return t;
}

static void bind_tensors(Model & m) {
    const HParams & hp = m.hp;
    m.tok_embd = get_tensor(m, "token_embd.weight", true);
    m.output_norm = get_tensor(m, "output_norm.weight", true);
    m.output = get_tensor(m, "output.weight", false);
    if (!m.output) m.output = m.tok_embd;  // tied embeddings
    m.rope_freqs = get_tensor(m, "rope_freqs.weight", false);
    m.hp.n_vocab = (int) m.output->ne[1];
    m.layers.resize(hp.n_layer);
    for (int il = 0; il < hp.n_layer; ++il) {
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
        const bool qk_norm = hp.arch == Arch::qwen3 || hp.arch == Arch::gemma3;
        L.attn_q_norm = t("attn_q_norm.weight", qk_norm);
        L.attn_k_norm = t("attn_k_norm.weight", qk_norm);
        if (hp.arch == Arch::gemma3) {
            L.attn_post_norm = t("post_attention_norm.weight", true);
            L.ffn_post_norm = t("post_ffw_norm.weight", true);
        }
        if (qk_norm && (L.attn_q_norm->ne[0] != hp.head_dim || L.attn_k_norm->ne[0] != hp.head_dim))
            throw std::invalid_argument("q/k norm of layer " + std::to_string(il) + " does not match the head size");
        if (hp.arch == Arch::qwen2 && !(L.bq && L.bk && L.bv))
            throw std::invalid_argument("qwen2 model is missing attention biases in layer " + std::to_string(il));
        if (L.wq->ne[0] != hp.n_embd || L.wq->ne[1] != hp.n_head * hp.head_dim ||
            L.wk->ne[1] != hp.n_head_kv * hp.head_dim || L.ffn_up->ne[1] != hp.n_ff)
            throw std::invalid_argument("tensor shapes of layer " + std::to_string(il) + " do not match the hyper-parameters");
    }
    if (m.tok_embd->ne[0] != hp.n_embd) throw std::invalid_argument("token_embd.weight has the wrong width");
}

// Which layer a tensor belongs to (-1 for the input / output tensors).
static int tensor_layer(const char * name) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    return atoi(name + 4);
}

void load_model(Model & m, const std::string & path, int n_gpu_layers) {
    m.path = path;
    gguf_init_params gp = { /*no_alloc*/ true, /*ctx*/ &m.ctx_meta };
    m.gguf = gguf_init_from_file(path.c_str(), gp);
    if (!m.gguf) throw std::invalid_argument("not a valid GGUF file (bad magic, truncated or corrupt header): " + path);
    read_hparams(m);
    bind_tensors(m);

    // every tensor's bytes must lie inside the file
    int fd = open(path.c_str(), O_RDONLY);
    if (fd < 0) throw std::runtime_error("cannot open " + path);
    struct stat st;
    fstat(fd, &st);
    m.mmap_size = (size_t) st.st_size;
    const size_t data_off = gguf_get_data_offset(m.gguf);
    const int64_t n_tensors = gguf_get_n_tensors(m.gguf);
    for (int64_t i = 0; i < n_tensors; ++i) {
        ggml_tensor * t = ggml_get_tensor(m.ctx_meta, gguf_get_tensor_name(m.gguf, i));
        size_t end = data_off + gguf_get_tensor_offset(m.gguf, i) + ggml_nbytes(t);
        if (end > m.mmap_size) {
            close(fd);
            throw std::invalid_argument("GGUF file is truncated: tensor '" + std::string(ggml_get_name(t)) +
                                        "' extends past the end of the file");
        }
    }
    m.mmap_addr = mmap(nullptr, m.mmap_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m.mmap_addr == MAP_FAILED) { m.mmap_addr = nullptr; throw std::runtime_error("mmap failed for " + path); }

    // GPU offload: the last n_gpu_layers layers (and the output head when all are
    // offloaded) go to the first GPU device ggml knows about.
    if (n_gpu_layers > 0) {
        for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
            ggml_backend_dev_t d = ggml_backend_dev_get(i);
            auto type = ggml_backend_dev_type(d);
            if (type == GGML_BACKEND_DEVICE_TYPE_GPU || type == GGML_BACKEND_DEVICE_TYPE_IGPU) { m.gpu_dev = d; break; }
        }
        m.n_gpu_layers = std::min(n_gpu_layers, m.hp.n_layer);
    }

    // CPU: one buffer over the whole mapping; weights are used in place.
    ggml_backend_buffer_t cpu_buf = ggml_backend_cpu_buffer_from_ptr(m.mmap_addr, m.mmap_size);
    if (!cpu_buf) throw std::runtime_error("cannot wrap the model mapping in a ggml buffer");
    m.buffers.push_back(cpu_buf);

    std::vector<ggml_tensor *> gpu_tensors;
    for (int64_t i = 0; i < n_tensors; ++i) {
        const char * name = gguf_get_tensor_name(m.gguf, i);
        ggml_tensor * t = ggml_get_tensor(m.ctx_meta, name);
        int il = tensor_layer(name);
        bool on_gpu = m.gpu_dev && ((il >= 0 && m.layer_on_gpu(il)) ||
                                     (il < 0 && t != m.tok_embd && m.n_gpu_layers >= m.hp.n_layer));
        if (on_gpu) { gpu_tensors.push_back(t); continue; }
        char * addr = (char *) m.mmap_addr + data_off + gguf_get_tensor_offset(m.gguf, i);
        if (ggml_backend_tensor_alloc(cpu_buf, t, addr) != GGML_STATUS_SUCCESS)
            throw std::invalid_argument(std::string("misaligned tensor data in GGUF: ") + name);
    }
    if (!gpu_tensors.empty()) {
        // Tied embeddings: the output head needs its own GPU copy of tok_embd.
        ggml_backend_buffer_type_t buft = ggml_backend_dev_buffer_type(m.gpu_dev);
        size_t align = ggml_backend_buft_get_alignment(buft), total = 0;
        bool tied_out = m.output == m.tok_embd && m.n_gpu_layers >= m.hp.n_layer;
        ggml_tensor * out_copy = nullptr;
        if (tied_out) {
            ggml_init_params ip = { ggml_tensor_overhead() * 2, nullptr, true };
            ggml_context * c = ggml_init(ip);
            out_copy = ggml_dup_tensor(c, m.tok_embd);
            ggml_set_name(out_copy, "output.weight(tied)");
            gpu_tensors.push_back(out_copy);
            // ctx leaks with the model deliberately small; freed with the process
        }
        for (auto t : gpu_tensors) total += GGML_PAD(ggml_backend_buft_get_alloc_size(buft, t), align);
        ggml_backend_buffer_t gbuf = ggml_backend_buft_alloc_buffer(buft, total + align);
        if (!gbuf) throw std::runtime_error("cannot allocate GPU buffer for offloaded layers");
        ggml_backend_buffer_set_usage(gbuf, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
        m.buffers.push_back(gbuf);
        char * base = (char *) ggml_backend_buffer_get_base(gbuf);
        size_t off = 0;
        for (auto t : gpu_tensors) {
            ggml_backend_tensor_alloc(gbuf, t, base + off);
            off += GGML_PAD(ggml_backend_buft_get_alloc_size(buft, t), align);
            const ggml_tensor * src = t == out_copy ? m.tok_embd : t;
            int64_t idx = gguf_find_tensor(m.gguf, ggml_get_name(src));
            const char * data = (const char *) m.mmap_addr + data_off + gguf_get_tensor_offset(m.gguf, idx);
            ggml_backend_tensor_set(t, data, 0, ggml_nbytes(t));
        }
        if (out_copy) m.output = out_copy;
    }
}

} // namespace sb
