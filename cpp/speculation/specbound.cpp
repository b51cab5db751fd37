#include "speculation/specbound.h"

#include <algorithm>
#include <chrono>

namespace sb {

static double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// what the round kept and what each of its tokens cost (kept tokens should
// cost exactly n_layer layer evaluations each)
static void count_acceptance(const Draft & d, int n_accepted, SpecStats & st) {
    const size_t n_keep = 1 + (size_t) n_accepted;  // the newest emitted token always stays
    st.accepted_tokens += n_accepted;
    for (size_t i = 0; i < d.toks.size(); ++i)
        (i < n_keep ? st.layer_evals_committed : st.layer_evals_rejected) += d.toks[i].evals;
    if (d.toks.size() > 1 && n_keep == d.toks.size()) st.rounds_all_accepted++;
}

RoundKind SpecBound::round(int32_t last, const std::vector<int32_t> & emitted, const SamplingParams & sp,
                           const SpecParams & p, int max_new, std::vector<int32_t> & out, SpecStats & st,
                           std::vector<float> * keep_logits) {
    const int n_layer = engine_.hparams().n_layer, n_vocab = engine_.hparams().n_vocab;
    const std::vector<int32_t> & cached = engine_.kv().cells.tokens();
    const int p0 = (int) cached.size();  // position of `last`
    // drafts are bounded by what may still be emitted, by the context, by the
    // rows one deep pass may hold (and, per source, by w_max or the lookup length)
    const int room = std::max(0, std::min({ max_new - 1, engine_.n_ctx() - 1 - p0, engine_.max_invariant_rows() - 1 }));
    if ((int) st.exit_depth_hist.size() < n_layer + 1) st.exit_depth_hist.assign(n_layer + 1, 0);
    st.rounds++;

    const double t0 = now_ms();
    const RoundKind kind = controller_.draft(draft_, last, { cached, p, room }, st);
    const double t1 = now_ms();

    deep_pass(engine_, draft_, logits_, st);  // every token of the round now has its KV at every layer (and its cell)
    drafts_.clear();
    for (size_t i = 1; i < draft_.toks.size(); ++i) drafts_.push_back(draft_.toks[i].id);
    const size_t n_out = out.size();
    const int n_accepted = accept_drafts(sampler_, sp, logits_.data(), n_vocab, drafts_, p0 + 1, emitted, out, generated_);
    engine_.kv().cells.remove_from(p0 + 1 + n_accepted);  // roll back the rejected drafts
    if (keep_logits)
        keep_logits->insert(keep_logits->end(), logits_.begin(), logits_.begin() + (out.size() - n_out) * (size_t) n_vocab);

    count_acceptance(draft_, n_accepted, st);
    controller_.outcome(kind, { (int) drafts_.size(), n_accepted, t1 - t0, now_ms() - t1 }, p, st);
    st.emitted_tokens += (int64_t) out.size();
    st.draft_ms += t1 - t0;
    st.verify_ms += now_ms() - t1;
    return kind;
}

} // namespace sb
