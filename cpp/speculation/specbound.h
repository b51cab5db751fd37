// SpecBound rounds (exact self-speculative decoding): a draft source proposes
// drafts (speculation/controller.h picks which), every token of the round
// then goes through its remaining layers in one batched deep pass
// (speculation/deep_pass.h), and the full model's choices decide what is kept
// (speculation/accept.h).
#pragma once

#include "engine/engine.h"
#include "sample/sampler.h"
#include "speculation/accept.h"
#include "speculation/controller.h"
#include "speculation/deep_pass.h"
#include "speculation/params.h"

#include <cstdint>
#include <vector>

namespace sb {

class SpecBound {
  public:
    // pool: the n-grams lookup drafts come from (the decoding loop feeds it)
    SpecBound(Engine & engine, Sampler & sampler, const NgramPool & pool)
        : engine_(engine), sampler_(sampler), controller_(engine, pool) {}

    // One round. `last` is the newest emitted token, not yet in the KV cache
    // (it goes at the position after the cache's cells). Emits 1..max_new
    // tokens into `out` (in order); the cache's cells end with the tokens whose
    // KV is now final. `emitted`: the tokens generated so far (ending with
    // `last`), for the sampling penalties. With keep_logits, the logits row of
    // each emitted token is appended to it. Returns what kind of round it was:
    // drafted by a source, or plain where no source drafted or did any work.
    RoundKind round(int32_t last, const std::vector<int32_t> & emitted, const SamplingParams & sp, const SpecParams & p,
                    int max_new, std::vector<int32_t> & out, SpecStats & st, std::vector<float> * keep_logits = nullptr);

    // the draft sources, what they learned and the gate
    SpecController & controller() { return controller_; }
    const SpecController & controller() const { return controller_; }

  private:
    Engine & engine_;
    Sampler & sampler_;
    SpecController controller_;
    Draft draft_;                     // the round's tokens and states
    std::vector<float> logits_;       // deep-pass logits
    std::vector<int32_t> drafts_;     // the round's draft tokens
    std::vector<int32_t> generated_;  // acceptance scratch
};

} // namespace sb
