// KV cache: per layer, one row per position ("cell" == position: a single
// sequence), for keys and for values, in llama-cpp-python's type_k / type_v
// (F16 by default); the cells (which token each position
// holds, kv/kv_cells.h); and the attention inputs of a batch's rows (which
// cells they write, which they see). Rows past the valid length are never
// read: the attention mask hides them, so removing entries from a position on
// (rejected drafts) is only bookkeeping.
#pragma once

#include "kv/kv_cells.h"
#include "model/model.h"

#include <cstdint>
#include <vector>

namespace sb {

// What the attention of a set of rows needs from the cache (kv/kv_inputs.cpp).
struct KvInputs {
    int n_kv = 0;                        // cells attended: the highest position + 1, padded
    std::vector<int> n_kv_row;           // [m] what n_kv would be for each row alone (its position + 1, padded)
    std::vector<int64_t> cells;          // [m] the cell each row writes (its position)
    std::vector<int64_t> v_cells;        // [m * row] with transposed values: the element each value goes to
    std::vector<ggml_fp16_t> mask;       // [m, n_kv] causal: 0 where a row sees a cell, -inf elsewhere
    std::vector<ggml_fp16_t> mask_swa;   // [m, n_kv] sliding window as well (only with n_swa > 0)
};

struct KvCache {
    int n_ctx = 0;   // usable positions
    int n_cells = 0; // allocated rows (n_ctx rounded up for the attention padding)
    ggml_type type_k = GGML_TYPE_F16, type_v = GGML_TYPE_F16;
    // llama.cpp rotates what a quantized cache holds by a normalized Hadamard
    // transform (outliers spread over the block before quantizing): q and k in
    // blocks of rot_k values, v and the attention output in blocks of rot_v;
    // 0: no rotation (a float cache, or LLAMA_ATTN_ROT_DISABLE set, as there)
    int rot_k = 0, rot_v = 0;
    std::vector<ggml_tensor *> k;  // [head_dim * n_head_kv, n_cells] type_k
    // [head_dim * n_head_kv, n_cells] type_v, or with v_trans [n_cells, head_dim * n_head_kv]:
    // each channel's cells side by side, as llama.cpp keeps them without flash
    // attention, so that v.softmax reads them in place (no transposed copy per call)
    std::vector<ggml_tensor *> v;
    bool v_trans = false;
    ggml_context * ctx = nullptr;
    std::vector<ggml_backend_buffer_t> buffers;
    KvCells cells;

    // bytes one position takes over all layers (keys and values)
    size_t bytes_per_token() const;

    // attention inputs of rows at positions pos (in row order); n_swa > 0: with
    // the sliding-window mask
    KvInputs inputs(const std::vector<int32_t> & pos, int n_swa) const;

    KvCache() = default;
    KvCache(const KvCache &) = delete;
    KvCache & operator=(const KvCache &) = delete;
    ~KvCache();
};

// attention looks at ceil(n/256)*256 cells, like llama.cpp
constexpr int kKvPad = 256;

// The cache types llama.cpp (llama-cpp-python 0.3.36) takes for type_k and
// type_v, with its refusals: a quantized V needs flash attention (the unfused
// path reads V transposed, one element per row), and with flash attention a
// quantized type's block must divide head_dim. Where llama.cpp would abort
// instead (a K-quant or a type without a quantizer; a block that does not
// divide head_dim without flash attention) this refuses as well: every
// refusal is std::invalid_argument naming the type.
void check_kv_types(ggml_type type_k, ggml_type type_v, bool flash_attn, int head_dim);

// v_trans: values transposed (llama.cpp's layout without flash attention)
void init_kv_cache(KvCache & kv, const Model & m, int n_ctx, bool v_trans, ggml_type type_k = GGML_TYPE_F16,
                   ggml_type type_v = GGML_TYPE_F16);

} // namespace sb
