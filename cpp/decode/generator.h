// The decoding loop: prompt evaluation with prefix reuse, then rounds that
// each emit at least one token of the full model, until a stop condition.
// Plain decoding is one token per round; SpecBound (speculation/) plugs in as a
// round that drafts, verifies and emits one or more tokens.
#pragma once

#include "engine/engine.h"
#include "decode/params.h"
#include "sample/sampler.h"
#include "speculation/ngram_pool.h"
#include "speculation/specbound.h"
#include "vocab/vocab.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sb {

// Called after each round with all tokens emitted so far; return false to stop.
using TokenCallback = std::function<bool(const std::vector<int32_t> & emitted)>;

class Generator {
  public:
    Generator(Engine & engine, const Vocab & vocab, int n_batch);

    // Step-wise: begin() evaluates the prompt and picks the first token; each
    // step() runs one round; it returns false (and sets finish_reason) once a
    // stop condition holds. result().tokens grows by at least one per round.
    void begin(const std::vector<int32_t> & prompt, const GenerateParams & params);
    bool step();
    const GenerateResult & result() const { return result_; }
    const SpecStats & spec_stats() const { return spec_stats_; }
    // the draft sources, what they learned of this generation, and its gate
    const SpecController & speculation() const { return spec_.controller(); }
    // a draft source asked after the others (between generations)
    void add_draft_source(std::unique_ptr<DraftSource> source) { spec_.controller().add_source(std::move(source)); }

    // begin() then step() until done: on_round (may be empty) sees the tokens
    // after each round and may cut the generation short ("stop").
    const GenerateResult & generate(const std::vector<int32_t> & prompt, const GenerateParams & params,
                                    const TokenCallback & on_round);
    // forget the cached prompt prefix (the n-gram pool stays: see pool())
    void reset() { engine_.kv().cells.clear(); }
    // The n-grams of every speculative request's prompt and output (lookup
    // drafts come from it), kept across requests and reset() until
    // reset_pool(); set_pool_bytes bounds (and empties) it. Drafts never change
    // the text, so neither does the pool: only how fast the text comes.
    const NgramPool & pool() const { return pool_; }
    void reset_pool() { pool_.clear(); }
    void set_pool_bytes(size_t bytes) { pool_.set_bytes(bytes); }
    // drop the generation's constraints (a grammar, a Python logits processor
    // that may reference the caller's objects) once the caller is done with it
    void release_constraints() { params_.sampling.constraints.reset(); }
    // tokens whose keys/values are in the cache, in order (its cells)
    const std::vector<int32_t> & history() const { return engine_.kv().cells.tokens(); }
    // logits of the full model at each position of the batch (teacher forcing)
    void eval_logits(const std::vector<int32_t> & tokens, int n_past, bool invariant, std::vector<float> & logits);
    // Teacher forced, at each of `layers` (ascending, <= n_layer): each token's
    // exit-head logits, out[(layer_index * n_tokens + token) * n_candidates + c]
    // (layers < n_layer), and/or its hidden state, states[(layer_index * n_tokens
    // + token) * n_embd + i] (either may be null). Leaves all tokens at full depth.
    void teacher_forced(const std::vector<int32_t> & tokens, int n_past, const std::vector<int> & layers,
                        std::vector<float> * out, std::vector<float> * states);

  private:
    void teacher_forced_part(const std::vector<int32_t> & part, int n_past, const std::vector<int> & layers, size_t start,
                             size_t n, std::vector<float> * out, std::vector<float> * states);
    // evaluates prompt[n_keep..] and leaves the last token's logits in logits_
    void prefill(const std::vector<int32_t> & prompt, int n_keep);
    int32_t plain_round(int32_t last, const SamplingParams & sp, std::vector<int32_t> & emitted);
    // a SpecBound round (from the draft sources the gate allows); its kind
    RoundKind spec_round();
    bool finished();

    Engine & engine_;
    const Vocab & vocab_;
    int n_batch_;
    Sampler sampler_;
    NgramPool pool_;  // outlives the request: later requests draft from earlier ones
    SpecBound spec_;
    SpecStats spec_stats_;
    std::vector<float> logits_;
    // state of the generation in progress
    GenerateParams params_;
    GenerateResult result_;
    int32_t last_ = -1;        // last emitted token, not yet in the cache
    std::vector<int32_t> text_;  // with specbound: the prompt and the tokens emitted so far (what feeds pool_)
    size_t stop_window_ = 16;  // tokens of text scanned for stop strings
    double t_decode_ = 0;
};

} // namespace sb
