// Embeddings as llama.cpp's embedding mode gives them: every token's hidden
// state after the final norm (what the LM head reads), pooled per input by
// the model's (or the caller's) pooling type.
#pragma once

#include "engine/engine.h"

#include <cstdint>
#include <vector>

namespace sb {

// llama_pooling_type's values
enum class Pooling { none = 0, mean = 1, cls = 2, last = 3 };

// The final-normed hidden state of each of `tokens`, read as one sequence
// from position 0 in batches of n_batch ([tokens.size(), n_embd]). The KV
// cache is emptied first and left holding `tokens` (a cached prefix as after
// a prompt), as llama.cpp's cache after an embedding call.
std::vector<float> token_embeddings(Engine & engine, const std::vector<int32_t> & tokens, int n_batch);

// The pooled embedding of one input from its token embeddings ([n, n_embd]):
// the mean, the first (CLS) or the last token's; Pooling::none returns them as they are.
std::vector<float> pool_embeddings(std::vector<float> tokens, int n_embd, Pooling pooling);

} // namespace sb
