#include "speculation/ngram_pool.h"

#include <algorithm>

namespace sb {

void NgramPool::set_bytes(size_t bytes) {
    size_t slots = 1;
    while (slots * 2 * sizeof(Slot) <= std::max(bytes, kMinBytes)) slots *= 2;
    mask_ = slots - 1;
    table_.clear();
    table_.shrink_to_fit();
    used_ = 0;
    fed_ = 0;
}

void NgramPool::clear() {
    std::fill(table_.begin(), table_.end(), Slot{ 0, 0 });
    used_ = 0;
    fed_ = 0;
}

// 64-bit mixing (splitmix64's finaliser): every input bit moves every output bit
static uint64_t mix(uint64_t h) {
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

int NgramPool::key_hashes(const int32_t * text, size_t end, uint64_t * out) {
    // newest token first, so that each key's hash extends the shorter key's
    uint64_t h = 0;
    int n = 0, k = 0;
    while (k < kKeys && (size_t) kKeyLengths[k] <= end) {
        for (; n < kKeyLengths[k]; ++n) h = mix(h + (uint32_t) text[end - 1 - n] + 1);
        out[k++] = mix(h ^ ((uint64_t) n << 56));  // the length is part of the key
    }
    return k;
}

void NgramPool::feed(const int32_t * text, size_t size, size_t from) {
    if (table_.empty()) table_.assign(mask_ + 1, Slot{ 0, 0 });
    uint64_t h[kKeys];
    for (size_t i = std::max<size_t>(from, 1); i < size; ++i) {
        const int n = key_hashes(text, i, h);
        for (int k = 0; k < n; ++k) {
            Slot & s = table_[slot_of(h[k])];
            used_ += s.check == 0;
            s = { check_of(h[k]), text[i] };
        }
        fed_++;
    }
}

void NgramPool::chain(const int32_t * tail, size_t size, int longest, int max_draft,
                      std::vector<PoolDraft> & out) const {
    out.clear();
    if (table_.empty()) return;
    const size_t keep = std::min<size_t>(size, kMaxKey);
    std::vector<int32_t> text(tail + size - keep, tail + size);  // the end of the text, then the drafts
    uint64_t h[kKeys];
    while ((int) out.size() < max_draft) {
        const int n = key_hashes(text.data(), text.size(), h);
        int hit = -1;
        for (int k = n - 1; k >= 0 && hit < 0; --k)  // the longest key first
            if (kKeyLengths[k] <= longest && table_[slot_of(h[k])].check == check_of(h[k])) hit = k;
        if (hit < 0) return;
        const int32_t next = table_[slot_of(h[hit])].next;
        out.push_back({ next, kKeyLengths[hit] });
        text.push_back(next);
    }
}

} // namespace sb
