// The cache's side of attention: where each row's keys and values go and
// which cells each row may see.
#include "kv/kv_cache.h"

#include <algorithm>
#include <cmath>

namespace sb {

KvInputs KvCache::inputs(const std::vector<int32_t> & pos, int n_swa) const {
    KvInputs in;
    int max_pos = 0;
    for (int32_t p : pos) {
        in.cells.push_back(p);
        max_pos = std::max(max_pos, (int) p);
    }
    in.n_kv = std::min(n_cells, (int) GGML_PAD(max_pos + 1, kKvPad));
    if (v_trans) {  // value j of row i goes to channel j's cell pos[i]
        const int64_t row = v.front()->ne[1];
        for (int32_t p : pos)
            for (int64_t j = 0; j < row; ++j) in.v_cells.push_back(j * n_cells + p);
    }
    for (int32_t p : pos) in.n_kv_row.push_back(std::min(n_cells, (int) GGML_PAD(p + 1, kKvPad)));
    const int m = (int) pos.size();
    // causal mask; the sliding-window one also hides cells n_swa or more
    // positions back (llama.cpp's standard SWA: masked when pos_q - pos_k >= n_swa)
    const bool swa = n_swa > 0;
    in.mask.resize((size_t) in.n_kv * m);
    in.mask_swa.resize(swa ? in.mask.size() : 0);
    const ggml_fp16_t zero = ggml_fp32_to_fp16(0.0f), ninf = ggml_fp32_to_fp16(-INFINITY);
    for (int i = 0; i < m; ++i)
        for (int c = 0; c < in.n_kv; ++c) {
            const size_t e = (size_t) i * in.n_kv + c;
            in.mask[e] = c <= pos[i] ? zero : ninf;
            if (swa) in.mask_swa[e] = c <= pos[i] && pos[i] - c < n_swa ? zero : ninf;
        }
    return in;
}

} // namespace sb
