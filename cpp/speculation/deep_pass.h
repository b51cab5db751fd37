// The deep pass, the second part of a SpecBound round: every token of the
// round goes through its remaining layers in one batched forward, each
// entering at the depth drafting left it at, so that the full model's logits
// of every position come from one call.
#pragma once

#include "engine/engine.h"
#include "speculation/source.h"

#include <vector>

namespace sb {

// logits: [d.toks.size(), n_vocab], the full model's logits of each token.
// Leaves every token of the round at full depth with its KV in the cache.
void deep_pass(Engine & engine, Draft & d, std::vector<float> & logits, SpecStats & st);

} // namespace sb
