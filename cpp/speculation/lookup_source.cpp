// n-gram lookup drafts: where the end of the text matches a key in the pool
// of n-grams seen so far (speculation/ngram_pool.h), what followed it, as
// many as pay. They cost no layers: the deep pass computes all of theirs.
#include "speculation/source.h"

#include <algorithm>

namespace sb {

// Per-draft acceptance of lookup drafts in this request by the length of
// the key that proposed them: hits over trials, decaying by round, shrunk
// towards a prior that trusts longer keys more (kPriorWeight drafts' worth).
struct KeyAcceptance {
    double hits[NgramPool::kKeys] = {}, trials[NgramPool::kKeys] = {};
    // a round: drafts proposed by keys of these lengths, the first n_accepted accepted
    void record(const std::vector<PoolDraft> & drafts, int n_accepted);
    double acceptance(int key_length) const;
    static double prior(int key_length);
    static constexpr double kPriorWeight = 4.0;
};

class LookupSource : public DraftSource {
  public:
    explicit LookupSource(const NgramPool & pool) : pool_(pool) {}
    const char * name() const override { return "lookup"; }
    // per key length instead (KeyAcceptance): this prior is the ledger's only
    double prior_acceptance() const override { return 0.8; }
    bool propose(Draft & d, const DraftRequest & r, const SourceLedger & ledger, SpecStats & st) override;
    void outcome(const RoundOutcome & r, const SpecParams & p, SpecStats & st) override;
    void reset() override { by_key_ = KeyAcceptance{}; }

    // Lookup drafts per round: of a chain of drafts, each accepted (if all
    // before it were) with the probability of its key length (KeyAcceptance),
    // the first k, at least 1, that maximise the expected tokens per unit of
    // time, (1 + p_1 + p_1 p_2 + ... + p_1..p_k) / cost(k + 1), with cost(w)
    // the time of a pass of w rows over a single step (the ledger's PassCost,
    // from the profile's batch factors and this request's passes). A copied
    // span (long keys, p near 1) is drafted whole where wide passes are cheap enough.
    int lookup_length(const SourceLedger & ledger, const SpecParams & p) const;

  private:
    const NgramPool & pool_;
    KeyAcceptance by_key_;
    std::vector<PoolDraft> chain_;  // the pool's chain of drafts, then the round's drafts
};

std::unique_ptr<DraftSource> make_lookup_source(Engine &, const NgramPool & pool) {
    return std::make_unique<LookupSource>(pool);
}

bool LookupSource::propose(Draft & d, const DraftRequest & r, const SourceLedger & ledger, SpecStats & st) {
    const int max_k = std::min(kMaxDraft, r.room);
    if (r.p.ngram <= 0 || max_k <= 0) return false;
    // the end of the text: the newest emitted token after the cached ones
    int32_t tail[NgramPool::kMaxKey];
    const size_t n_cached = std::min(r.cached.size(), (size_t) NgramPool::kMaxKey - 1);
    std::copy(r.cached.end() - (ptrdiff_t) n_cached, r.cached.end(), tail);
    tail[n_cached] = d.toks[0].id;
    pool_.chain(tail, n_cached + 1, r.p.ngram, max_k, chain_);
    if (chain_.empty()) return false;
    const size_t found = chain_.size();
    chain_.resize((size_t) lookup_length(ledger, r.p));
    // a round cut by its price counts as one stopped by w_max; by the room left, by the limit
    if (chain_.size() < found) st.stops_w_max++;
    else if ((int) found == max_k && max_k < kMaxDraft) st.stops_limit++;
    for (const PoolDraft & t : chain_) {  // at depth 0: the deep pass computes all their layers
        d.toks.push_back({ t.id, d.toks.back().pos + 1, 0 });
        st.exit_depth_hist[0]++;
        st.draft_tokens++;
    }
    st.ngram_rounds++;
    return true;
}

int LookupSource::lookup_length(const SourceLedger & ledger, const SpecParams & p) const {
    std::vector<double> accept(chain_.size());
    for (size_t i = 0; i < chain_.size(); ++i) accept[i] = by_key_.acceptance(chain_[i].key);
    return best_chain_length(accept, 0.0, [&](int w) { return ledger.cost.relative(w, p.batch_factors); });
}

void LookupSource::outcome(const RoundOutcome & r, const SpecParams &, SpecStats & st) {
    by_key_.record(chain_, r.n_accepted);
    st.ngram_accepted += r.n_accepted;
    if ((int) st.lookup_key_drafts.size() < NgramPool::kMaxKey + 1)
        for (auto * v : { &st.lookup_key_drafts, &st.lookup_key_accepted, &st.lookup_key_rejected })
            v->assign(NgramPool::kMaxKey + 1, 0);
    for (size_t i = 0; i < chain_.size(); ++i) {
        st.lookup_key_drafts[chain_[i].key]++;
        st.lookup_key_accepted[chain_[i].key] += (int) i < r.n_accepted;
        st.lookup_key_rejected[chain_[i].key] += (int) i == r.n_accepted;
    }
}

void KeyAcceptance::record(const std::vector<PoolDraft> & drafts, int n_accepted) {
    for (int k = 0; k < NgramPool::kKeys; ++k) hits[k] *= 0.9, trials[k] *= 0.9;
    // draft i is tried only when drafts 1..i-1 were accepted
    for (int i = 0; i < (int) drafts.size() && i <= n_accepted; ++i) {
        const int k = NgramPool::key_index(drafts[i].key);
        trials[k] += 1;
        hits[k] += i < n_accepted;
    }
}

double KeyAcceptance::prior(int key_length) {
    // a 24-token match is a copied span, a 2-token match a guess: per draft
    // tried, Qwen2.5-Coder-0.5B accepted 0.45 of those from 2-token keys, 0.77-0.85
    // from 3-6, 0.90-0.96 from 8-24 (8 bench prompts of 4 workloads, greedy
    // and seeded, tools/pool_check.py); a request's own outcomes move it
    switch (key_length) {
        case 2: return 0.45;
        case 3: return 0.65;
        case 4: return 0.7;
        case 6: return 0.8;
        case 8: return 0.85;
        case 12: return 0.9;
        case 16: return 0.93;
        default: return 0.95;
    }
}

double KeyAcceptance::acceptance(int key_length) const {
    const int k = NgramPool::key_index(key_length);
    return (hits[k] + kPriorWeight * prior(key_length)) / (trials[k] + kPriorWeight);
}

} // namespace sb
