#include "sample/sampler.h"

#include <algorithm>
#include <cmath>

namespace sb {

int32_t argmax(const float * logits, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; ++i)
        if (logits[i] > logits[best]) best = i;
    return best;
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

double position_uniform(uint64_t seed, int64_t pos) {
    uint64_t r = splitmix64(splitmix64(seed) ^ (uint64_t) pos);
    return (double) (r >> 11) * (1.0 / 9007199254740992.0);
}

int32_t Sampler::sample(const float * logits, int n_vocab, const SamplingParams & p, int64_t pos,
                        const int32_t * recent, size_t n_recent) {
    if (p.penalties_on() && n_recent > 0) {
        // count each token of the window, then penalize it once, as llama.cpp does
        const size_t n = std::min(n_recent, (size_t) p.penalty_last_n);
        counts_.clear();
        for (size_t i = n_recent - n; i < n_recent; ++i) {
            auto it = std::find_if(counts_.begin(), counts_.end(), [&](const auto & c) { return c.first == recent[i]; });
            if (it == counts_.end()) counts_.push_back({ recent[i], 1 });
            else it->second++;
        }
        penalized_.assign(logits, logits + n_vocab);
        for (const auto & [id, count] : counts_) {
            if (id < 0 || id >= n_vocab) continue;
            float & l = penalized_[id];
            l = l <= 0 ? l * p.penalty_repeat : l / p.penalty_repeat;
            l -= float(count) * p.penalty_freq + float(count > 0) * p.penalty_present;
        }
        logits = penalized_.data();
    }
    if (p.temperature <= 0.0f) return argmax(logits, n_vocab);

    cand_.resize(n_vocab);
    for (int i = 0; i < n_vocab; ++i) cand_[i] = { i, logits[i] };
    auto by_logit = [](const Cand & a, const Cand & b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
    size_t n = cand_.size();
    if (p.top_k > 0 && (size_t) p.top_k < n) {
        std::partial_sort(cand_.begin(), cand_.begin() + p.top_k, cand_.end(), by_logit);
        n = p.top_k;
    } else {
        std::sort(cand_.begin(), cand_.end(), by_logit);
    }
    // softmax of the raw logits for top-p / min-p, as llama.cpp's chain does
    prob_.resize(n);
    const float max_l = cand_[0].logit;
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += prob_[i] = expf(cand_[i].logit - max_l);
    if (p.top_p < 1.0f) {
        double cum = 0;
        size_t keep = n;
        for (size_t i = 0; i < n; ++i) {
            cum += prob_[i] / sum;
            if (cum >= p.top_p) { keep = i + 1; break; }
        }
        n = keep;
    }
    if (p.min_p > 0.0f) {
        const float floor_p = p.min_p * prob_[0];  // relative to the best candidate
        size_t keep = 1;
        while (keep < n && prob_[keep] >= floor_p) ++keep;
        n = keep;
    }
    // temperature, then one draw from this position's stream
    sum = 0;
    for (size_t i = 0; i < n; ++i) sum += prob_[i] = expf((cand_[i].logit - max_l) / p.temperature);
    double u = position_uniform(p.seed, pos) * sum;
    for (size_t i = 0; i < n; ++i) {
        u -= prob_[i];
        if (u < 0) return cand_[i].id;
    }
    return cand_[n - 1].id;
}

} // namespace sb
