// Shared graph helpers (norm, matmul, qkv, rope, attention, ffn) used by the
// per-architecture layer files.
#pragma once

#include "kernels/kernels.h"
#include "kv/kv_cache.h"
#include "model/model.h"

#include <vector>

namespace sb {

// Inputs shared by all layers while the set of active rows stays the same.
struct Segment {
    std::vector<int> rows;         // request rows, in tensor column order
    int n_kv = 0;                  // attended cells
    std::vector<int> n_kv_row;     // [m] attended cells of each row alone (per-query attention)
    ggml_tensor * pos = nullptr;   // I32 [m]
    ggml_tensor * kv_idx = nullptr;// I64 [m] cells written by these rows
    ggml_tensor * v_idx = nullptr; // I64 [row * m] elements their values go to (KvCache::v_trans)
    ggml_tensor * mask = nullptr;  // F16 [n_kv, m]
    ggml_tensor * mask_swa = nullptr;  // F16 [n_kv, m], sliding-window layers (models with n_swa > 0)
};

struct GraphBuilder {
    GraphBuilder(ggml_context * ctx, ggml_cgraph * gf, const Model & m, KvCache & kv, bool invariant,
                 const kernels::KernelTable * kernel_table = nullptr)
        : ctx(ctx), gf(gf), m(m), kv(kv), invariant(invariant), kernel_table(kernel_table) {}

    ggml_context * ctx;
    ggml_cgraph * gf;
    const Model & m;
    KvCache & kv;
    // Batch-invariant kernels (decode phase): see matmul().
    bool invariant;
    const kernels::KernelTable * kernel_table;  // our kernels per weight type (null: none)
    // Weights and KV cache off the CPU (a GPU backend): ggml chooses the kernel,
    // and with it the summation order, by the number of columns. In the decode
    // phase such a matmul then runs in chunks of device_columns columns (1: each
    // column alone, as a single-token pass computes it; 4: what ggml-cuda's mmvq
    // computes with one split of the dot product) and attention runs per query
    // over that query's own cells. 0: one op for the batch.
    int device_columns = 0;
    bool device_path_on_cpu = false;  // the same path for CPU weights (tests)
    // Attention as llama.cpp computes it with flash_attn on (one fused op) or
    // off (llama-cpp-python's default: q.k, softmax, then v, as ggml matmuls).
    bool flash_attn = false;

    ggml_tensor * rms_norm(ggml_tensor * x, ggml_tensor * w);
    // w x, plus the LoRA adapter's term where it adapts w (graph/lora.cpp)
    ggml_tensor * matmul(ggml_tensor * w, ggml_tensor * x);
    // w x alone (Engine::probe_matmul measures the weight's own path)
    ggml_tensor * base_matmul(ggml_tensor * w, ggml_tensor * x);
    // q, k, v of layer L from the normed input h [n_embd, m], ready for
    // attention(): projected (plus the layer's biases where it has them), split
    // into heads, q and k normed per head where the layer has q/k norms, then
    // rotated. q [head_dim, n_head, m], k and v [head_dim, n_head_kv, m].
    struct Qkv { ggml_tensor * q, * k, * v; };
    Qkv qkv(const Layer & L, ggml_tensor * h, const Segment & s, int il);
    // rotary embedding of layer il (sliding-window layers have their own base)
    ggml_tensor * rope(ggml_tensor * x, const Segment & s, int il);
    // q: [head_dim, n_head, m], k/v: [head_dim, n_head_kv, m]; writes k/v to the
    // cache of layer il at the segment's cells, returns [n_head*head_dim, m].
    // kq_scale: softmax scale of q.k (default 1/sqrt(head_dim)).
    ggml_tensor * attention(int il, ggml_tensor * q, ggml_tensor * k, ggml_tensor * v, const Segment & s,
                            float kq_scale = 0.0f);
    ggml_tensor * ffn_swiglu(const Layer & L, ggml_tensor * x);
    // rows of n values of x rotated as llama.cpp rotates a quantized KV cache's
    ggml_tensor * hadamard(ggml_tensor * x, int n);
    ggml_tensor * ffn_geglu(const Layer & L, ggml_tensor * x);  // GELU (tanh approximation) gate

  private:
    // attention() after the rotations of a quantized cache (KvCache::rot_k, rot_v)
    ggml_tensor * attention_rotated(int il, ggml_tensor * q, ggml_tensor * k, ggml_tensor * v, const Segment & s,
                                    float kq_scale);
    // y + scale * B (A x), in llama.cpp's op order (graph/lora.cpp)
    ggml_tensor * add_lora(ggml_tensor * y, const LoraWeight & lw, ggml_tensor * x);
    ggml_tensor * adapter_matmul(ggml_tensor * w, ggml_tensor * x);
    // a decode-phase op on this buffer takes the device path (chunks, per-query attention)
    bool device_path(ggml_backend_buffer_t buf) const;
    ggml_tensor * matmul_by_columns(ggml_tensor * w, ggml_tensor * x);
    // flash attention of queries q [head_dim, m, n_head] over the first n_kv cells of layer il
    // (one_query_each: the unfused path's per-query arithmetic, see attend_unfused)
    ggml_tensor * attend(int il, ggml_tensor * q, int n_kv, ggml_tensor * mask, float kq_scale, bool one_query_each);
    // the same without flash attention: softmax(k.q) then v, as llama.cpp's unfused path
    ggml_tensor * attend_unfused(int il, ggml_tensor * q, int n_kv, ggml_tensor * mask, float kq_scale,
                                 bool one_query_each);
    // x [n, m, heads] in F32 as a copy in `type` whose rows are not contiguous
    ggml_tensor * rows_apart(ggml_tensor * x, ggml_type type);
    // x quantized to `type`: for our kernels (ours) or as mul_mat's non-contiguous input
    ggml_tensor * quantized(ggml_tensor * x, ggml_type type, bool ours);
    struct QuantizedInput { ggml_tensor * x; ggml_type type; bool ours; ggml_tensor * q; };
    std::vector<QuantizedInput> quantized_;  // one quantized copy per (activation, type, kind)
};

// One transformer block of the model's architecture (its ArchInfo::build_layer,
// cpp/graph/arch_<name>.cpp): x [n_embd, m] -> [n_embd, m].
inline ggml_tensor * build_layer(GraphBuilder & b, int il, ggml_tensor * x, const Segment & s) {
    return b.m.hp.arch->build_layer(b, il, x, s);
}

} // namespace sb
