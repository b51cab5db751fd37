// Free drafts: the tokens that followed the newest n-gram's latest earlier
// occurrence in the text so far (prompt and output), the family of llama.cpp's
// n-gram lookup and llama-cpp-python's prompt lookup. They cost no layers:
// they enter the deep pass at layer 0, and verification decides as for any draft.
#pragma once

#include <cstdint>
#include <vector>

namespace sb {

// Up to max_draft tokens following the latest earlier occurrence of the last n
// tokens of ctx, trying n = n_max down to n_min; empty where none occurs.
std::vector<int32_t> ngram_draft(const std::vector<int32_t> & ctx, int n_min, int n_max, int max_draft);

} // namespace sb
