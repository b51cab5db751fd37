// KV cache: per layer, one F16 row per position ("cell" == position: a single
// sequence), for keys and for values. Rows past the valid length are never
// read: the attention mask hides them, so removing entries from a position on
// (rejected drafts) is only bookkeeping.
#pragma once

#include "model/model.h"

#include <vector>

namespace sb {

struct KvCache {
    int n_ctx = 0;   // usable positions
    int n_cells = 0; // allocated rows (n_ctx rounded up for the attention padding)
    std::vector<ggml_tensor *> k, v;  // [head_dim * n_head_kv, n_cells] F16
    ggml_context * ctx = nullptr;
    std::vector<ggml_backend_buffer_t> buffers;

    KvCache() = default;
    KvCache(const KvCache &) = delete;
    KvCache & operator=(const KvCache &) = delete;
    ~KvCache();
};

// attention looks at ceil(n/256)*256 cells, like llama.cpp
constexpr int kKvPad = 256;

void init_kv_cache(KvCache & kv, const Model & m, int n_ctx);

} // namespace sb
