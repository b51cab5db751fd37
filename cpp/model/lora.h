// A GGUF LoRA adapter as llama.cpp loads it (llama-adapter.cpp): metadata
// general.type = "adapter", adapter.type = "lora", adapter.lora.alpha, and a
// pair of tensors "<base weight name>.lora_a" [n_in, rank] and ".lora_b"
// [rank, n_out] per adapted weight. The graph adds scale * B (A x) to that
// weight's product (GraphBuilder::matmul, graph/lora.cpp).
#pragma once

#include <ggml.h>
#include <ggml-backend.h>
#include <gguf.h>

#include <string>
#include <unordered_map>

namespace sb {

struct Model;

struct LoraWeight {
    ggml_tensor * a = nullptr;  // [n_in, rank]
    ggml_tensor * b = nullptr;  // [rank, n_out]
    float scale = 0.0f;         // lora_scale * alpha / rank (alpha 0: lora_scale), as llama.cpp
};

struct Lora {
    std::string path;
    float alpha = 0.0f;       // adapter.lora.alpha (0 where absent)
    float user_scale = 0.0f;  // Llama(lora_scale=...)
    // llama.cpp leaves an adapter of scale 0 out of the graph (llama_context::
    // set_adapters_lora): then so do we, and the bits are the base model's
    bool in_graph() const { return !weights.empty() && user_scale != 0.0f; }
    // adapted matmul weight of the model -> its pair
    std::unordered_map<const ggml_tensor *, LoraWeight> weights;
    const LoraWeight * of(const ggml_tensor * w) const {
        if (!in_graph()) return nullptr;
        auto it = weights.find(w);
        return it == weights.end() ? nullptr : &it->second;
    }
    size_t bytes() const;
    // one line for Engine::device_report (the invariance verdict's key)
    std::string describe() const;

    Lora() = default;
    Lora(const Lora &) = delete;
    Lora & operator=(const Lora &) = delete;
    ~Lora();

    gguf_context * gguf = nullptr;
    ggml_context * ctx_meta = nullptr;
    ggml_backend_buffer_t buffer = nullptr;  // CPU memory holding every pair
};

// Reads the adapter at `path` into m.lora, checked against the model as
// llama.cpp checks it (type, architecture, names, shapes, the file's extent).
// std::invalid_argument for a file llama.cpp would refuse too; messages that
// start with kLoraUnsupported for one it loads but we do not run (an adapter
// of the token embeddings, tensors of a type ggml cannot multiply by on the CPU).
void load_lora(Model & m, const std::string & path, float scale);
inline constexpr const char * kLoraUnsupported = "unsupported LoRA adapter: ";

} // namespace sb
