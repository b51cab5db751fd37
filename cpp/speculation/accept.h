// Acceptance, the last part of a SpecBound round: the full model's choice at
// each position decides what is kept. Row i of the deep pass's logits chooses
// the token at position first_pos + i, with the sampler of plain decoding
// (penalties, logits processors, bias and grammar see the tokens generated
// before that position, accepted drafts included); draft i proposed that
// token and stands iff it equals the choice. Every choice is emitted: the
// accepted drafts, then the first differing choice (the correction) or, when
// every draft stood, the last row's choice (the bonus token). A grammar thus
// follows exactly the emitted text, and seeded sampling draws each position
// from its own stream (sample/sampler.h): the tokens are plain decoding's.
#pragma once

#include "sample/sampler.h"

#include <cstdint>
#include <vector>

namespace sb {

// logits: [drafts.size() + 1, n_vocab]. emitted: the tokens generated before
// first_pos. Appends the chosen tokens to out (1 + the return value of them);
// returns the number of drafts accepted. generated: scratch (its storage is
// reused across rounds).
int accept_drafts(Sampler & sampler, const SamplingParams & sp, const float * logits, int n_vocab,
                  const std::vector<int32_t> & drafts, int64_t first_pos, const std::vector<int32_t> & emitted,
                  std::vector<int32_t> & out, std::vector<int32_t> & generated);

} // namespace sb
