#include "speculation/accept.h"

namespace sb {

int accept_drafts(Sampler & sampler, const SamplingParams & sp, const float * logits, int n_vocab,
                  const std::vector<int32_t> & drafts, int64_t first_pos, const std::vector<int32_t> & emitted,
                  std::vector<int32_t> & out, std::vector<int32_t> & generated) {
    // the sampler sees the generated tokens only where something reads them
    const bool needs_history = sp.penalties_on() || sp.constraints;
    generated.clear();
    if (needs_history) generated.assign(emitted.begin(), emitted.end());
    int n_accepted = 0;
    for (size_t i = 0; i <= drafts.size(); ++i) {
        const int32_t y = sampler.sample(logits + i * (size_t) n_vocab, n_vocab, sp, first_pos + (int64_t) i,
                                         generated.data(), generated.size());
        out.push_back(y);
        if (needs_history) generated.push_back(y);
        if (i == drafts.size() || drafts[i] != y) break;
        n_accepted++;
    }
    return n_accepted;
}

} // namespace sb
