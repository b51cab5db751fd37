// Token selection from the full model's logits.
//
// Greedy: first argmax. Sampling: top-k -> top-p -> min-p -> temperature ->
// one draw. The draw for the token at position p comes from its own random
// stream, seeded by (seed, p): a token's choice depends only on its logits and
// its position, never on how many draws came before. Plain decoding and
// speculative decoding therefore pick the same token wherever their logits are
// bitwise equal, which is what makes seeded sampling exact under speculation.
#pragma once

#include <llama.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>


namespace sb {

struct GrammarFree {
    void operator()(llama_sampler * s) const;
};

// Conditions of one generation on the full model's choice, applied to its
// logits in llama-cpp-python's sampler-chain order: the caller's logits
// processors, the logit bias, (penalties,) the grammar. They depend only on
// the logits and the tokens emitted before a position, and the grammar's state
// advances on emitted tokens only, so verification applies them exactly as
// plain decoding does: drafts are checked against the constrained choice.
struct Constraints {
    // llama-cpp-python's logits_processor: edits the row in place, given the
    // tokens generated before this position (the caller adds the prompt)
    std::function<void(float * logits, int n_vocab, const int32_t * generated, size_t n_generated)> processor;
    std::vector<std::pair<int32_t, float>> logit_bias;  // added to the logit of each token
    std::unique_ptr<llama_sampler, GrammarFree> grammar;  // libllama's grammar sampler (GBNF)
    float typical_p = 1.0f;  // locally typical sampling (temperature > 0 only)
    // mirostat (temperature > 0): 1 or 2, its target surprise and learning
    // rate; mu is its state, which each emitted token updates
    int mirostat = 0;
    float mirostat_tau = 5.0f, mirostat_eta = 0.1f, mirostat_mu = 10.0f;
    bool edits_logits() const { return processor || !logit_bias.empty() || grammar; }
};

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
    std::shared_ptr<Constraints> constraints;  // none: unconstrained
    bool penalties_on() const {
        return penalty_last_n > 0 && (penalty_repeat != 1.0f || penalty_freq != 0.0f || penalty_present != 0.0f);
    }
};

class Sampler {
  public:
    explicit Sampler(int n_vocab) : cand_(n_vocab) {}
    // The token for position `pos`. `generated`: every token generated before
    // it, oldest first (penalties look at the last penalty_last_n, logits
    // processors at all). The choice counts as emitted: a grammar advances.
    int32_t sample(const float * logits, int n_vocab, const SamplingParams & p, int64_t pos,
                   const int32_t * generated = nullptr, size_t n_generated = 0);

  private:
    struct Cand { int32_t id; float logit; };
    static bool by_logit(const Cand & a, const Cand & b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); }
    int32_t choose(const float * logits, int n_vocab, const SamplingParams & p, int64_t pos);
    // processors, bias, penalties, grammar: returns the logits to choose from
    const float * constrained(const float * logits, int n_vocab, const SamplingParams & p,
                              const int32_t * generated, size_t n_generated);
    void apply_penalties(float * logits, int n_vocab, const SamplingParams & p, const int32_t * recent, size_t n_recent);
    void apply_grammar(float * logits, int n_vocab, llama_sampler * grammar);
    size_t typical(size_t n, float typical_p);
    int32_t mirostat(size_t n, Constraints & c, int n_vocab, double u);
    std::vector<Cand> cand_;
    std::vector<float> prob_;
    std::vector<float> work_;  // the constrained logits
    std::vector<std::pair<int32_t, int>> counts_;
    std::vector<size_t> order_;
    std::vector<Cand> kept_;
    std::vector<llama_token_data> data_;
};

int32_t argmax(const float * logits, int n);

// uniform double in [0, 1) from (seed, position): splitmix64 of both
double position_uniform(uint64_t seed, int64_t pos);

} // namespace sb
