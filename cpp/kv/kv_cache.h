// KV cache: per layer, one F16 row per position ("cell" == position: a single
// sequence), for keys and for values; the cells (which token each position
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
    std::vector<ggml_tensor *> k;  // [head_dim * n_head_kv, n_cells] F16
    // [head_dim * n_head_kv, n_cells] F16, or with v_trans [n_cells, head_dim * n_head_kv]:
    // each channel's cells side by side, as llama.cpp keeps them without flash
    // attention, so that v.softmax reads them in place (no transposed copy per call)
    std::vector<ggml_tensor *> v;
    bool v_trans = false;
    ggml_context * ctx = nullptr;
    std::vector<ggml_backend_buffer_t> buffers;
    KvCells cells;

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

void init_kv_cache(KvCache & kv, const Model & m, int n_ctx, bool v_trans);

} // namespace sb
