// The LoRA adapter's term in the graph (model/lora.h), as llama.cpp's
// build_lora_mm computes it: y = W x, then y + ggml_scale(B (A x), scale),
// before any bias (qkv() adds the biases to what matmul() returns).
#include "graph/builder.h"

#include <ggml-cpu.h>

namespace sb {

ggml_tensor * GraphBuilder::matmul(ggml_tensor * w, ggml_tensor * x) {
    ggml_tensor * y = base_matmul(w, x);
    const LoraWeight * lw = m.lora.of(w);
    return lw ? add_lora(y, *lw, x) : y;
}

ggml_tensor * GraphBuilder::add_lora(ggml_tensor * y, const LoraWeight & lw, ggml_tensor * x) {
    ggml_tensor * ab = adapter_matmul(lw.b, adapter_matmul(lw.a, x));
    return ggml_add(ctx, y, ggml_scale(ctx, ab, lw.scale));
}

// llama.cpp keeps an adapter's pairs in plain CPU memory (never repacked) and
// multiplies by them with ggml's mul_mat: one token, one column, so vec_dot
// per output element. In the decode phase the activation goes in already in
// the pair's vec_dot type and not contiguous (quantized(), as base_matmul's
// detour), which keeps llamafile's sgemm out for any number of columns: each
// column then gets exactly the single-token arithmetic. Our own kernels are
// not used here: they are self-checked on the model's weights, whose row
// length is not the adapter's rank. The prompt phase is llama.cpp's batch op.
ggml_tensor * GraphBuilder::adapter_matmul(ggml_tensor * w, ggml_tensor * x) {
    if (!invariant) return ggml_mul_mat(ctx, w, x);
    return ggml_mul_mat(ctx, w, quantized(x, ggml_get_type_traits_cpu(w->type)->vec_dot_type, false));
}

} // namespace sb
