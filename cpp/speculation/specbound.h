// SpecBound rounds (../shared/SPEC.md): the model drafts with its own shallow
// layers, exiting early where the annealed confidence of a cheap exit head
// reaches tau; drafting stops at the first difficult token (no exit by d_max)
// or after w_max drafts; then every token of the round goes through its
// remaining layers in one batched deep pass, each entering at its own depth,
// and the full model's choices decide what is kept.
#pragma once

#include "engine/engine.h"
#include "sample/sampler.h"

#include <cstdint>
#include <vector>

namespace sb {

struct SpecParams {
    float alpha = 0.5f;            // T_l = 1 + alpha * (1 - l / L)
    float tau = 0.6f;              // exit when max softmax(z_l / T_l) >= tau
    std::vector<int> exit_layers;  // depths where an exit may be checked (ascending, < n_layer)
    int d_max = 0;                 // a token not exited by this depth stops drafting
    int w_max = 6;                 // drafts per round
    int ngram = 0;                 // n-gram lookup drafts (speculation/ngram.h): longest n-gram tried, down to 2 (0: off)
};

struct SpecStats {
    int64_t rounds = 0;
    int64_t draft_tokens = 0;       // drafts proposed
    int64_t accepted_tokens = 0;    // drafts equal to the full model's choice
    int64_t emitted_tokens = 0;
    int64_t exit_checks = 0;
    int64_t layer_evals = 0;        // all token-layer evaluations
    int64_t layer_evals_committed = 0;  // of tokens that entered the cache for good
    int64_t layer_evals_rejected = 0;   // of rejected drafts (wasted work)
    int64_t stops_d_max = 0;        // rounds whose drafting hit a difficult token
    int64_t stops_w_max = 0;        // rounds that reached w_max drafts
    int64_t stops_limit = 0;        // rounds cut by max_tokens / context end
    int64_t rounds_all_accepted = 0;  // rounds with >= 1 draft, all accepted (bonus token emitted)
    std::vector<int64_t> exit_depth_hist;  // drafts per exit depth (index = layer; 0: n-gram lookup drafts)
    int64_t ngram_rounds = 0;       // rounds drafted by n-gram lookup
    int64_t ngram_accepted = 0;     // accepted drafts of those rounds
    double draft_ms = 0, verify_ms = 0;
};

class SpecBound {
  public:
    SpecBound(Engine & engine, Sampler & sampler) : engine_(engine), sampler_(sampler) {}

    // One round. `last` is the newest emitted token (not yet in the cache) at
    // position history.size(). Emits 1..max_new tokens into `out` (in order) and
    // appends the tokens whose KV is now final to `history`. `emitted`: the
    // tokens generated so far (ending with `last`), for the sampling penalties.
    // With keep_logits, the logits row of each emitted token is appended to it.
    void round(int32_t last, std::vector<int32_t> & history, const std::vector<int32_t> & emitted,
               const SamplingParams & sp, const SpecParams & p, int max_new, std::vector<int32_t> & out, SpecStats & st,
               std::vector<float> * keep_logits = nullptr);

  private:
    struct Tok {
        int32_t id;
        int32_t pos;
        int depth;      // layers computed so far
        int evals = 0;  // layer evaluations spent on this token (== depth unless recomputed)
    };
    // advance tokens [0..j] to depth l (earlier ones only as far as needed);
    // with check, returns the exit-head logits of token j at l
    void advance(std::vector<Tok> & toks, size_t j, int l, bool check, SpecStats & st);
    // early-exit drafting: appends drafts to toks until a bound holds
    void draft_early_exit(std::vector<Tok> & toks, const SpecParams & p, int w, SpecStats & st);

    Engine & engine_;
    Sampler & sampler_;
    std::vector<float> hidden_;   // [tokens of the round, n_embd] state at current depth
    std::vector<float> hbuf_;     // scratch for forward()
    std::vector<float> check_;    // exit-head logits
    std::vector<float> logits_;   // deep-pass logits
    std::vector<int32_t> recent_; // generated tokens before the verified position (sampler history)
};

// Defaults without a calibrated profile: a few exit layers in the first half.
SpecParams default_spec_params(const HParams & hp);

// max_v softmax(z / T)[v] and its argmax
float annealed_confidence(const float * z, int n, float temperature, int * arg);

} // namespace sb
