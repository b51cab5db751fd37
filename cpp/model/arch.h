// One descriptor per supported architecture: what the loader and the graph
// builder need to know about it, in one place. Adding an architecture means a
// new cpp/graph/arch_<name>.cpp defining its ArchInfo and one line in
// kArchitectures (model/arch.cpp).
#pragma once

#include <ggml.h>
#include <gguf.h>

#include <string>

namespace sb {

struct HParams;
struct GraphBuilder;
struct Segment;

// Layer tensors beyond the ones every architecture has (norms, q/k/v/o, FFN).
struct ArchTensors {
    bool qkv_bias = false;    // attn_{q,k,v}.bias required (otherwise optional)
    bool qk_norm = false;     // attn_{q,k}_norm.weight: per-head RMS norms of q and k
    bool post_norms = false;  // post_attention_norm / post_ffw_norm after attention and FFN
};

// One transformer block: x [n_embd, m] -> [n_embd, m].
using LayerBuilder = ggml_tensor * (*)(GraphBuilder & b, int il, ggml_tensor * x, const Segment & s);

// Reads the architecture's own metadata keys, after the common ones were read
// and checked (may overwrite them).
using HParamsReader = void (*)(gguf_context * g, HParams & hp);

struct ArchInfo {
    const char * name;             // GGUF general.architecture
    int rope_mode;                 // GGML_ROPE_TYPE_NORMAL or GGML_ROPE_TYPE_NEOX
    ArchTensors tensors;
    HParamsReader read_hparams;    // null: the common keys are all
    LayerBuilder build_layer;
};

// The descriptor for a general.architecture value, or null if unsupported.
const ArchInfo * find_arch(const std::string & name);

// "llama, qwen2, ...", for error messages.
const char * supported_arch_list();

} // namespace sb
