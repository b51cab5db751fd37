// Drafting, the first part of a SpecBound round: free n-gram drafts where the
// text repeats (speculation/ngram.h), else the model's own shallow layers,
// each draft exiting at the first exit layer where the annealed confidence of
// the exit head reaches tau. Drafting stops at the first difficult token (no
// exit by d_max) or after w drafts.
#pragma once

#include "engine/engine.h"
#include "speculation/params.h"

#include <cstdint>
#include <vector>

namespace sb {

struct RoundToken {
    int32_t id;
    int32_t pos;
    int depth;      // layers computed so far
    int evals = 0;  // layer evaluations spent on this token (== depth unless recomputed)
};

// A round's tokens after drafting: the newest emitted token, then the drafts.
struct Draft {
    std::vector<RoundToken> toks;
    std::vector<float> hidden;  // [w + 1, n_embd]: each token's state at its depth
    bool from_lookup = false;   // n-gram drafts (at depth 0), not early exits
};

class Drafter {
  public:
    explicit Drafter(Engine & engine) : engine_(engine) {}

    // Drafts after `last`, the newest emitted token, which follows the cached
    // tokens (`cached`, all in the KV cache): up to w_max early exits, or up to
    // the lookup length n-gram drafts, never more than `room` (what may still
    // be emitted and fits the context). Counts the drafts, their exit depths
    // and why drafting stopped in st.
    void draft(Draft & d, int32_t last, const std::vector<int32_t> & cached, const SpecParams & p, int room,
               SpecStats & st);

    // How the last lookup round went: the lookup length doubles (up to
    // kMaxLookupDraft) while every lookup draft is accepted and falls back to
    // one past the accepted ones on a rejection. Where the text is being
    // copied, long runs are right and a long draft costs one batched pass;
    // elsewhere a wrong long draft would cost a wide batch for nothing.
    void lookup_outcome(int n_drafted, int n_accepted);
    // a new generation: the lookup length starts again from w_max
    void reset() { lookup_len_ = -1; }

    static constexpr int kMaxLookupDraft = 16;

  private:
    // n-gram lookup drafts (none where the last n-gram does not recur)
    bool draft_lookup(Draft & d, const std::vector<int32_t> & cached, int n_max, int w, SpecStats & st);
    // early-exit drafts until a bound holds
    void draft_early_exit(Draft & d, const SpecParams & p, int w, SpecStats & st);
    // advance tokens [0..j] to depth l (earlier ones only as far as needed);
    // with check, leaves the exit-head logits of token j at l in check_
    void advance(Draft & d, size_t j, int l, bool check, SpecStats & st);

    Engine & engine_;
    int lookup_len_ = -1;       // n-gram drafts per lookup round (-1: w_max at the next round)
    std::vector<float> hbuf_;   // scratch for forward()
    std::vector<float> check_;  // exit-head logits
};

// max_v softmax(z / T)[v] and its argmax
float annealed_confidence(const float * z, int n, float temperature, int * arg);

} // namespace sb
