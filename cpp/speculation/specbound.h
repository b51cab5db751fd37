// SpecBound rounds (exact self-speculative decoding): the model drafts with its own shallow
// layers (speculation/draft.h), every token of the round then goes through its
// remaining layers in one batched deep pass (speculation/deep_pass.h), and the
// full model's choices decide what is kept (speculation/accept.h).
#pragma once

#include "decode/gate.h"
#include "engine/engine.h"
#include "sample/sampler.h"
#include "speculation/accept.h"
#include "speculation/deep_pass.h"
#include "speculation/draft.h"
#include "speculation/params.h"

#include <cstdint>
#include <vector>

namespace sb {

class SpecBound {
  public:
    // pool: the n-grams lookup drafts come from (the decoding loop feeds it)
    SpecBound(Engine & engine, Sampler & sampler, const NgramPool & pool)
        : engine_(engine), sampler_(sampler), drafter_(engine, pool) {}

    // One round. `last` is the newest emitted token, not yet in the KV cache
    // (it goes at the position after the cache's cells). Emits 1..max_new
    // tokens into `out` (in order); the cache's cells end with the tokens whose
    // KV is now final. `emitted`: the tokens generated so far (ending with
    // `last`), for the sampling penalties. With keep_logits, the logits row of
    // each emitted token is appended to it. Returns what kind of round it was:
    // drafted by lookup or early exit, or plain where nothing was drafted or checked.
    RoundKind round(int32_t last, const std::vector<int32_t> & emitted, const SamplingParams & sp, const SpecParams & p,
               int max_new, std::vector<int32_t> & out, SpecStats & st, std::vector<float> * keep_logits = nullptr);

    // a new generation: drafting forgets what it learned about the last one
    void reset() { drafter_.reset(); }
    // a plain single-token step took ms: the unit of the drafter's pass costs
    void single_step(double ms) { drafter_.single_step(ms); }

  private:
    Engine & engine_;
    Sampler & sampler_;
    Drafter drafter_;
    Draft draft_;                     // the round's tokens and states
    std::vector<float> logits_;       // deep-pass logits
    std::vector<int32_t> drafts_;     // the round's draft tokens
    std::vector<int32_t> generated_;  // acceptance scratch
};

} // namespace sb
