#include "sample/sampler.h"

#include <llama.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace sb {

void GrammarFree::operator()(llama_sampler * s) const { llama_sampler_free(s); }

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

void Sampler::apply_penalties(float * logits, int n_vocab, const SamplingParams & p, const int32_t * recent,
                              size_t n_recent) {
    // count each token of the window, then penalize it once, as llama.cpp does
    const size_t n = std::min(n_recent, (size_t) p.penalty_last_n);
    counts_.clear();
    for (size_t i = n_recent - n; i < n_recent; ++i) {
        auto it = std::find_if(counts_.begin(), counts_.end(), [&](const auto & c) { return c.first == recent[i]; });
        if (it == counts_.end()) counts_.push_back({ recent[i], 1 });
        else it->second++;
    }
    for (const auto & [id, count] : counts_) {
        if (id < 0 || id >= n_vocab) continue;
        float & l = logits[id];
        l = l <= 0 ? l * p.penalty_repeat : l / p.penalty_repeat;
        l -= float(count) * p.penalty_freq + float(count > 0) * p.penalty_present;
    }
}

void Sampler::apply_grammar(float * logits, int n_vocab, llama_sampler * grammar) {
    // libllama's grammar sampler over the whole vocabulary, in id order (as
    // llama_sampler_sample hands it): tokens the grammar rejects get -inf
    data_.resize(n_vocab);
    for (int i = 0; i < n_vocab; ++i) data_[i] = { i, logits[i], 0.0f };
    llama_token_data_array arr = { data_.data(), data_.size(), -1, false };
    llama_sampler_apply(grammar, &arr);
    for (size_t i = 0; i < arr.size; ++i) logits[arr.data[i].id] = arr.data[i].logit;
}

const float * Sampler::constrained(const float * logits, int n_vocab, const SamplingParams & p,
                                   const int32_t * generated, size_t n_generated) {
    Constraints * c = p.constraints.get();
    const bool penalties = p.penalties_on() && n_generated > 0;
    if (!penalties && !(c && c->edits_logits())) return logits;
    work_.assign(logits, logits + n_vocab);
    if (c && c->processor) c->processor(work_.data(), n_vocab, generated, n_generated);
    if (c)
        for (const auto & [id, bias] : c->logit_bias) work_[id] += bias;
    if (penalties) apply_penalties(work_.data(), n_vocab, p, generated, n_generated);
    if (c && c->grammar) apply_grammar(work_.data(), n_vocab, c->grammar.get());
    return work_.data();
}

size_t Sampler::typical(size_t n, float typical_p) {
    // locally typical sampling (llama.cpp's typical sampler): keep the tokens
    // whose surprise is closest to the entropy until their mass passes typical_p
    const float max_l = cand_[0].logit;
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += prob_[i] = expf(cand_[i].logit - max_l);
    double entropy = 0;
    for (size_t i = 0; i < n; ++i) {
        prob_[i] = (float) (prob_[i] / sum);
        if (prob_[i] > 0) entropy -= prob_[i] * logf(prob_[i]);
    }
    order_.resize(n);
    std::iota(order_.begin(), order_.end(), 0);
    auto shift = [&](size_t i) { return fabsf(-logf(prob_[i]) - (float) entropy); };
    std::stable_sort(order_.begin(), order_.end(), [&](size_t a, size_t b) { return shift(a) < shift(b); });
    size_t keep = n;
    double cum = 0;
    for (size_t i = 0; i < n; ++i) {
        cum += prob_[order_[i]];
        if (cum > typical_p) { keep = i + 1; break; }
    }
    kept_.clear();
    for (size_t i = 0; i < keep; ++i) kept_.push_back(cand_[order_[i]]);
    std::sort(kept_.begin(), kept_.end(), by_logit);
    std::copy(kept_.begin(), kept_.end(), cand_.begin());
    return keep;
}

int32_t Sampler::mirostat(size_t n, Constraints & c, int n_vocab, double u) {
    // cand_[0..n) sorted by logit. Mirostat (v1: Zipf estimate of the top-k
    // that gives surprise mu; v2: drop tokens more surprising than mu), one
    // draw, then mu moves toward the target surprise tau by the observed one.
    auto softmax = [&](size_t m) {
        double sum = 0;
        for (size_t i = 0; i < m; ++i) sum += prob_[i] = expf(cand_[i].logit - cand_[0].logit);
        for (size_t i = 0; i < m; ++i) prob_[i] = (float) (prob_[i] / sum);
    };
    prob_.resize(n);
    softmax(n);
    if (c.mirostat == 1) {
        double s_num = 0, s_den = 0;
        for (size_t i = 0; i + 1 < n && i < 99; ++i) {
            const double t = log((double) (i + 2) / (double) (i + 1));
            s_num += t * log((double) prob_[i] / (double) prob_[i + 1]);
            s_den += t * t;
        }
        const double s_hat = s_den > 0 ? s_num / s_den : 1.0, eps = s_hat - 1;
        const double k = pow(eps * pow(2.0, c.mirostat_mu) / (1 - pow((double) n_vocab, -eps)), 1 / s_hat);
        n = std::min(n, (size_t) std::max(1.0, std::isfinite(k) ? k : 1.0));
    } else {
        size_t keep = 0;
        while (keep < n && -log2f(prob_[keep]) <= c.mirostat_mu) ++keep;
        n = std::max<size_t>(keep, 1);
    }
    softmax(n);
    size_t pick = n - 1;
    for (size_t i = 0; i < n; ++i) {
        u -= prob_[i];
        if (u < 0) { pick = i; break; }
    }
    c.mirostat_mu -= c.mirostat_eta * (-log2f(prob_[pick]) - c.mirostat_tau);
    return cand_[pick].id;
}

int32_t Sampler::sample(const float * logits, int n_vocab, const SamplingParams & p, int64_t pos,
                        const int32_t * generated, size_t n_generated) {
    logits = constrained(logits, n_vocab, p, generated, n_generated);
    const int32_t token = choose(logits, n_vocab, p, pos);
    // the choice is emitted: the grammar follows it (throws if it cannot)
    if (p.constraints && p.constraints->grammar) llama_sampler_accept(p.constraints->grammar.get(), token);
    return token;
}

int32_t Sampler::choose(const float * logits, int n_vocab, const SamplingParams & p, int64_t pos) {
    if (p.temperature <= 0.0f) return argmax(logits, n_vocab);
    Constraints * c = p.constraints.get();

    cand_.resize(n_vocab);
    for (int i = 0; i < n_vocab; ++i) cand_[i] = { i, logits[i] };
    size_t n = cand_.size();
    if (c && c->mirostat) {  // its own truncation, no temperature (as llama-cpp-python's chain)
        std::sort(cand_.begin(), cand_.end(), by_logit);
        return mirostat(n, *c, n_vocab, position_uniform(p.seed, pos));
    }
    if (p.top_k > 0 && (size_t) p.top_k < n) {
        std::partial_sort(cand_.begin(), cand_.begin() + p.top_k, cand_.end(), by_logit);
        n = p.top_k;
    } else {
        std::sort(cand_.begin(), cand_.end(), by_logit);
    }
    if (std::isinf(cand_[0].logit) && cand_[0].logit < 0) return cand_[0].id;  // everything masked
    prob_.resize(n);
    if (c && c->typical_p < 1.0f) n = typical(n, c->typical_p);
    // softmax of the raw logits for top-p / min-p, as llama.cpp's chain does
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
