// GGUF model: hyper-parameters and weights as ggml tensors.
// On CPU the weights are the mmapped file itself (zero copy); layers offloaded
// to a GPU backend are uploaded into a buffer of that device.
#pragma once

#include <ggml.h>
#include <ggml-backend.h>
#include <gguf.h>

#include "model/arch.h"
#include "model/kv_override.h"
#include "model/lora.h"
#include "rpc/proxy.h"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sb {

// The rope options of llama-cpp-python's Llama (its defaults: the model's own)
struct RopeOverrides {
    int scaling_type = -1;      // llama_rope_scaling_type, -1: the file's
    float freq_base = 0.0f;     // 0: the file's
    float freq_scale = 0.0f;    // 0: the file's
    float ext_factor = -1.0f;   // YaRN extrapolation mix, < 0: 1 for YaRN scaling, else 0
    float attn_factor = 1.0f;   // YaRN magnitude scale, < 0: 1
    float beta_fast = 32.0f;    // < 0: 32
    float beta_slow = 1.0f;     // < 0: 1
    int orig_ctx = 0;           // YaRN's original context, 0: the file's
};

// ggml_rope_ext's parameters, after resolving the overrides
struct RopeParams {
    float freq_base = 10000.0f, freq_scale = 1.0f;
    int n_ctx_orig = 0;
    float ext_factor = 0.0f, attn_factor = 1.0f, beta_fast = 32.0f, beta_slow = 1.0f;
};

struct HParams {
    std::string arch_name;             // general.architecture
    const ArchInfo * arch = nullptr;   // its descriptor (model/arch.h)
    int n_layer = 0;
    int n_embd = 0;
    int n_ff = 0;
    int n_head = 0;
    int n_head_kv = 0;
    int head_dim = 0;     // key/value length per head
    int n_rot = 0;        // rotary dimensions
    int n_vocab = 0;
    int n_ctx_train = 0;
    float rms_eps = 1e-5f;
    float rope_freq_base = 10000.0f;
    float rope_freq_scale = 1.0f;
    int rope_mode = 0;    // GGML_ROPE_TYPE_NORMAL or GGML_ROPE_TYPE_NEOX
    float embd_scale = 1.0f;  // token embeddings are multiplied by this (gemma3: sqrt(n_embd))
    // Sliding-window attention (gemma3): layers with swa[il] attend only to the
    // last n_swa positions (pos_q - pos_k < n_swa) and use their own rope base.
    int n_swa = 0;            // 0: no sliding window
    std::vector<bool> swa;    // per layer
    float rope_freq_base_swa = 10000.0f;
    float rope_freq_scale_swa = 1.0f;
    bool is_swa(int il) const { return n_swa > 0 && swa[il]; }
    // the file's rope scaling keys (llama.cpp's defaults where absent)
    int rope_scaling_type = 1;    // llama_rope_scaling_type: 0 none, 1 linear, 2 yarn, 3 longrope
    int n_ctx_orig_yarn = 0;      // rope.scaling.original_context_length (0: n_ctx_train)
    float rope_attn_factor = 1.0f;
    float rope_yarn_log_mul = 0.0f;
    // what the non-sliding layers' rope computes with: the file's values and
    // the Llama's overrides, resolved as llama.cpp's context does (rope.cpp)
    RopeParams rope;
};

struct Layer {
    ggml_tensor * attn_norm = nullptr;
    ggml_tensor * wq = nullptr, * wk = nullptr, * wv = nullptr, * wo = nullptr;
    ggml_tensor * bq = nullptr, * bk = nullptr, * bv = nullptr;
    ggml_tensor * ffn_norm = nullptr;
    ggml_tensor * ffn_gate = nullptr, * ffn_up = nullptr, * ffn_down = nullptr;
    // per-head RMS norms of q and k (qwen3, gemma3); norms after attention and FFN (gemma3)
    ggml_tensor * attn_q_norm = nullptr, * attn_k_norm = nullptr;
    ggml_tensor * attn_post_norm = nullptr, * ffn_post_norm = nullptr;

    // the weights the layer multiplies by (absent ones null)
    std::array<const ggml_tensor *, 7> matmul_weights() const { return { wq, wk, wv, wo, ffn_gate, ffn_up, ffn_down }; }
};

struct Model {
    HParams hp;
    std::string path;
    ggml_tensor * tok_embd = nullptr;
    ggml_tensor * output_norm = nullptr;
    ggml_tensor * output = nullptr;     // tok_embd when embeddings are tied
    ggml_tensor * rope_freqs = nullptr; // optional (Llama 3 style rope scaling)
    std::vector<Layer> layers;
    Lora lora;  // the Llama's LoRA adapter (none: no weights), loaded after the model (model/lora.h)

    // The devices layers are offloaded to (a GPU, or the devices of RPC
    // workers) and the device of each layer and of the output head (an index
    // into devices; -1: the CPU). The last n_gpu_layers layers are offloaded.
    int n_gpu_layers = 0;
    std::vector<ggml_backend_dev_t> devices;
    std::vector<std::string> device_names;  // stable across loads (RPC: the worker's address)
    std::vector<int> layer_device;          // [n_layer]; empty: all on the CPU
    int head_device = -1;
    bool layer_on_gpu(int il) const { return !layer_device.empty() && layer_device[(size_t) il] >= 0; }
    ggml_backend_dev_t device_of_layer(int il) const {
        return layer_on_gpu(il) ? devices[(size_t) layer_device[(size_t) il]] : nullptr;
    }

    ~Model();
    Model() = default;
    Model(const Model &) = delete;
    Model & operator=(const Model &) = delete;

    // owned resources
    // The relays to RPC workers (rpc/proxy.h): first, so that they go last,
    // after every buffer on a worker is freed through them.
    std::vector<std::unique_ptr<rpc::Proxy>> proxies;
    gguf_context * gguf = nullptr;
    ggml_context * ctx_meta = nullptr;    // the file's tensors
    ggml_context * ctx_copies = nullptr;  // copies the file has no tensor for (tied output head)
    // Weights repacked as llama.cpp repacks them by default (CPU_REPACK), with
    // their bytes as the file stores them (exit-head rows are copied from there)
    struct Repacked {
        const ggml_tensor * t;
        const void * file_bytes;
    };
    std::vector<Repacked> repacked;
    // the file's bytes of weight t where it is repacked, else null
    const void * file_bytes_of_repacked(const ggml_tensor * t) const {
        for (const Repacked & r : repacked)
            if (r.t == t) return r.file_bytes;
        return nullptr;
    }
    void * mmap_addr = nullptr;
    size_t mmap_size = 0;
    std::vector<ggml_backend_buffer_t> buffers;
};

// Throws std::invalid_argument (bad/unsupported file) or std::runtime_error.
// Missing files are reported by the Python layer before this is reached.
// Where layers go: the last n_gpu_layers to the first GPU, or, with RPC
// workers ("host:port"), split over their devices by tensor_split (empty: by
// the devices' free memory), as llama.cpp splits layers.
struct Placement {
    int n_gpu_layers = 0;
    std::vector<std::string> rpc_servers;
    std::vector<float> tensor_split;
    double rpc_timeout_s = 300;
};
// kv_overrides: metadata values replacing the file's (model/kv_override.h)
void load_model(Model & model, const std::string & path, const Placement & placement,
                const std::vector<KvOverride> & kv_overrides = {});

} // namespace sb
