// Token selection from the full model's logits.
//
// Greedy: first argmax. Sampling: top-k -> top-p -> min-p -> temperature ->
// one draw. The draw for the token at position p comes from its own random
// stream, seeded by (seed, p): a token's choice depends only on its logits and
// its position, never on how many draws came before. Plain decoding and
// speculative decoding therefore pick the same token wherever their logits are
// bitwise equal, which is what makes seeded sampling exact under speculation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace sb {

struct SamplingParams {
    float temperature = 0.0f;  // <= 0: greedy
    int32_t top_k = 40;        // <= 0: whole vocabulary
    float top_p = 0.95f;
    float min_p = 0.05f;
    uint64_t seed = 0;
    // llama.cpp's penalties sampler, over the last `penalty_last_n` tokens
    // generated so far (not the prompt: llama-cpp-python's sampler only sees
    // the tokens it sampled). They depend on the tokens before a position
    // only, so verification applies them exactly as plain decoding does.
    int32_t penalty_last_n = 64;
    float penalty_repeat = 1.0f;
    float penalty_freq = 0.0f;
    float penalty_present = 0.0f;
    bool penalties_on() const {
        return penalty_last_n > 0 && (penalty_repeat != 1.0f || penalty_freq != 0.0f || penalty_present != 0.0f);
    }
};

class Sampler {
  public:
    explicit Sampler(int n_vocab) : cand_(n_vocab) {}
    // `recent`: the tokens generated before position `pos`, oldest first (only
    // the last penalty_last_n matter); empty when penalties are off
    int32_t sample(const float * logits, int n_vocab, const SamplingParams & p, int64_t pos,
                   const int32_t * recent = nullptr, size_t n_recent = 0);

  private:
    struct Cand { int32_t id; float logit; };
    std::vector<Cand> cand_;
    std::vector<float> prob_;
    std::vector<float> penalized_;
    std::vector<std::pair<int32_t, int>> counts_;
};

int32_t argmax(const float * logits, int n);

// uniform double in [0, 1) from (seed, position): splitmix64 of both
double position_uniform(uint64_t seed, int64_t pos);

} // namespace sb
