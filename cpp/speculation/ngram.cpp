#include "speculation/ngram.h"

#include <algorithm>

namespace sb {

std::vector<int32_t> ngram_draft(const std::vector<int32_t> & ctx, int n_min, int n_max, int max_draft) {
    const int64_t size = (int64_t) ctx.size();
    for (int n = n_max; n >= std::max(1, n_min) && max_draft > 0; --n) {
        if (size < n + 1) continue;
        const int32_t * suffix = ctx.data() + size - n;
        // latest first: recent text predicts the next tokens best
        for (int64_t i = size - n - 1; i >= 0; --i) {
            if (!std::equal(suffix, suffix + n, ctx.data() + i)) continue;
            const int64_t from = i + n, to = std::min<int64_t>(from + max_draft, size);
            return std::vector<int32_t>(ctx.begin() + from, ctx.begin() + to);
        }
    }
    return {};
}

} // namespace sb
