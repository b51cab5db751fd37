// The cache's cells: the token at each position whose keys and values are in
// the cache at every layer, in position order (one sequence, cell == position).
// Engine::forward keeps them as it writes the cache; prefix reuse reads them;
// rejected drafts are rolled back by remove_from().
// Rows past size() may still hold stale keys/values in the buffers: the
// attention mask hides every cell after a query's position, and the next
// token written at a position overwrites it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sb {

class KvCells {
  public:
    const std::vector<int32_t> & tokens() const { return tokens_; }
    // the next free position
    int size() const { return (int) tokens_.size(); }

    void append(int32_t token) { tokens_.push_back(token); }
    void append(const int32_t * tokens, size_t n) { tokens_.insert(tokens_.end(), tokens, tokens + n); }
    // forget positions pos.. (no-op when the cache holds fewer)
    void remove_from(int pos) {
        if (pos < size()) tokens_.resize(pos < 0 ? 0 : (size_t) pos);
    }
    void clear() { tokens_.clear(); }
    // a forward wrote `tokens` at positions pos..: they replace the cells from
    // pos on. Past the end (a gap of unknown cells) they are not recorded: the
    // cells stay a gap-free prefix.
    void write(int pos, const std::vector<int32_t> & tokens) {
        if (pos > size()) return;
        remove_from(pos);
        append(tokens.data(), tokens.size());
    }
    void write(int pos, int32_t token) {
        if (pos > size()) return;
        remove_from(pos);
        append(token);
    }

  private:
    std::vector<int32_t> tokens_;
};

} // namespace sb
