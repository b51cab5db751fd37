// Free drafts from text seen before: a pool of n-grams and the token that last
// followed each, fed by the prompts and outputs of every request of one model
// object, so that a second turn or a second edit of the same file drafts from
// the first. The family of llama.cpp's n-gram lookup (ngram-mod: a hash of the
// last 24 tokens into one table of next tokens shared by all requests) and of
// llama-cpp-python's prompt lookup.
//
// Keys of several lengths (kKeyLengths, 2 to 24 tokens) go into one hashed
// table; a draft is a chain: the continuation of the longest key that matches
// the end of the text, appended, then the same again from the new end. The
// length of the key that proposed a draft says how much agreed before it:
// a 24-token match is a copied span, a 2-token match a guess. The drafter
// prices drafts by it (speculation/lookup_source.cpp).
//
// Memory is bounded: the table is a power-of-two number of 8-byte slots,
// allocated on the first feed; a key goes to one slot, and a newer key that
// hashes there takes the slot. Verification decides every draft, so a stale
// or colliding entry costs a rejected draft, never a wrong token.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sb {

// one drafted token and the length of the key that proposed it
struct PoolDraft {
    int32_t id;
    int key;
};

class NgramPool {
  public:
    static constexpr int kKeyLengths[] = { 2, 3, 4, 6, 8, 12, 16, 24 };
    static constexpr int kKeys = sizeof(kKeyLengths) / sizeof(kKeyLengths[0]);
    static constexpr int kMaxKey = 24;
    static constexpr size_t kDefaultBytes = size_t(16) << 20;  // 2^21 slots
    static constexpr size_t kMinBytes = size_t(64) << 10;
    // the index of a key length in kKeyLengths (-1: not one)
    static int key_index(int length) {
        for (int k = 0; k < kKeys; ++k)
            if (kKeyLengths[k] == length) return k;
        return -1;
    }

    // a pool of at most `bytes` (rounded down to a power of two of slots, at least kMinBytes)
    explicit NgramPool(size_t bytes = kDefaultBytes) { set_bytes(bytes); }
    // resize (and empty) the pool
    void set_bytes(size_t bytes);

    // Learns what followed each key in text[0, size): the token at every
    // position i in [from, size), after each key that ends at i. Text fed
    // before is fed again harmlessly (the same slots get the same tokens).
    void feed(const int32_t * text, size_t size, size_t from);
    // Up to max_draft tokens that would follow tail (the end of the text; only
    // its last kMaxKey tokens matter), each the continuation of the longest key
    // of at most `longest` tokens that matches the end of tail and the tokens
    // drafted before it; stops at the first position no key matches.
    void chain(const int32_t * tail, size_t size, int longest, int max_draft, std::vector<PoolDraft> & out) const;

    void clear();
    size_t slots() const { return mask_ + 1; }
    size_t bytes() const { return slots() * sizeof(Slot); }
    size_t used() const { return used_; }             // slots holding a key
    int64_t fed() const { return fed_; }              // positions fed since the last clear
    bool allocated() const { return !table_.empty(); }

  private:
    struct Slot {
        uint32_t check;  // high bits of the key's hash, never 0 (0: empty)
        int32_t next;
    };
    // The hashes of the keys of each length that end at text + end (as many as
    // the text holds), longest last; returns how many.
    static int key_hashes(const int32_t * text, size_t end, uint64_t * out);
    size_t slot_of(uint64_t h) const { return (size_t) h & mask_; }
    static uint32_t check_of(uint64_t h) { return (uint32_t) (h >> 32) | 1u; }

    std::vector<Slot> table_;  // empty until the first feed
    size_t mask_ = 0;
    size_t used_ = 0;
    int64_t fed_ = 0;
};

} // namespace sb
