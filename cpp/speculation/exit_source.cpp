// Early-exit drafts: the model's own shallow layers, each draft exiting at
// the first exit layer where the exit head is confident enough (the annealed
// confidence, or the learned decision, reaching the threshold; speculation/
// exit_decision.h). Drafting stops at the first difficult token (no exit by
// d_max) or after as many drafts as pay (exit_length).
#include "speculation/exit_decision.h"
#include "speculation/source.h"

#include <algorithm>
#include <cstring>

namespace sb {

class EarlyExitSource : public DraftSource {
  public:
    explicit EarlyExitSource(Engine & engine) : engine_(engine) {}
    const char * name() const override { return "early_exit"; }
    // calibrated exits are right on 0.8-0.95 of tokens
    double prior_acceptance() const override { return 0.8; }
    bool propose(Draft & d, const DraftRequest & r, const SourceLedger & ledger, SpecStats & st) override;
    // moves the exit threshold (SpecParams::tau_step)
    void outcome(const RoundOutcome & r, const SpecParams & p, SpecStats & st) override;
    void stats(const SpecParams & p, SpecStats & st) const override { st.exit_tau = exit_tau(p); }
    void reset() override { tau_shift_ = 0; }

  private:
    // Early-exit drafts per round, at most max_k: the k that maximises the
    // expected tokens per unit of time, (1 + p + ... + p^k) / (k c + cost(k +
    // 1)), with p this request's per-draft acceptance of exit drafts (the
    // ledger's, from prior_acceptance), c the measured drafting time per
    // draft and cost(w) the measured time of an exit round's deep pass of w
    // rows, both over a single step (before any measurement: c = first exit layer / L).
    int exit_length(int max_k, const SourceLedger & ledger, const SpecParams & p) const;
    // the exit threshold now: p.tau, moved by the request's outcomes so far
    float exit_tau(const SpecParams & p) const { return std::clamp(p.tau + tau_shift_, 0.01f, 1.0f); }
    // drafts until a bound holds; whether it checked any exit
    void draft(Draft & d, const SpecParams & p, int w, SpecStats & st);
    // whether the exit head at layer l (logits in check_) is confident enough; its top-1 in *arg
    bool exits(const SpecParams & p, int l, int prev_arg, int * arg) const;
    // advance tokens [0..j] to depth l (earlier ones only as far as needed);
    // with check, leaves the exit-head logits of token j at l in check_
    void advance(Draft & d, size_t j, int l, bool check, SpecStats & st);

    Engine & engine_;
    float tau_shift_ = 0;       // this request's move of the exit threshold
    std::vector<float> hbuf_;   // scratch for forward()
    std::vector<float> check_;  // exit-head logits
};

std::unique_ptr<DraftSource> make_early_exit_source(Engine & engine) {
    return std::make_unique<EarlyExitSource>(engine);
}

bool EarlyExitSource::propose(Draft & d, const DraftRequest & r, const SourceLedger & ledger, SpecStats & st) {
    const int w = exit_length(std::min(r.p.w_max, r.room), ledger, r.p);
    if (w <= 0) return false;
    d.hidden.assign((size_t) (w + 1) * engine_.hparams().n_embd, 0.0f);
    const int64_t checks_before = st.exit_checks;
    draft(d, r.p, w, st);
    if ((int) d.toks.size() - 1 == w) (r.room < r.p.w_max ? st.stops_limit : st.stops_w_max)++;
    return st.exit_checks > checks_before;
}

int EarlyExitSource::exit_length(int max_k, const SourceLedger & ledger, const SpecParams & p) const {
    if (max_k <= 0 || p.exit_layers.empty()) return 0;
    const double prior = (double) p.exit_layers.front() / engine_.hparams().n_layer;
    const PassCost & cost = ledger.cost;
    const double per_draft = ledger.drafts >= 1 && cost.n[1] > 0 ? ledger.draft_ms / ledger.drafts / cost.ms[1] : prior;
    return best_draft_length(ledger.acceptance(), max_k, per_draft, [&cost](int w) { return cost.relative(w); });
}

void EarlyExitSource::outcome(const RoundOutcome & r, const SpecParams & p, SpecStats & st) {
    if (r.n_drafted <= 0) return;
    st.exit_rounds++;
    st.exit_accepted += r.n_accepted;
    if (p.tau_step <= 0) return;
    // below the precision tau asks for: exit less readily; at or above: more
    const float rate = (float) r.n_accepted / (float) r.n_drafted;
    tau_shift_ = std::clamp(tau_shift_ + (rate < p.tau ? p.tau_step : -p.tau_step), -SpecParams::kTauRange,
                            SpecParams::kTauRange);
}

void EarlyExitSource::draft(Draft & d, const SpecParams & p, int w, SpecStats & st) {
    while ((int) d.toks.size() - 1 < w) {
        const size_t j = d.toks.size() - 1;
        int exit_at = -1, arg = 0, prev_arg = -1;
        for (int l : p.exit_layers) {
            if (l > p.d_max) break;
            advance(d, j, l, true, st);
            if (exits(p, l, prev_arg, &arg)) { exit_at = l; break; }
            prev_arg = arg;
        }
        if (exit_at < 0) {  // difficult token: stop drafting at once
            st.stops_d_max++;
            return;
        }
        st.exit_depth_hist[exit_at]++;
        st.draft_tokens++;
        d.toks.push_back({ engine_.candidates()[arg], d.toks[j].pos + 1, 0 });
    }
}

bool EarlyExitSource::exits(const SpecParams & p, int l, int prev_arg, int * arg) const {
    const int L = engine_.hparams().n_layer;
    const float T = 1.0f + p.alpha * (1.0f - (float) l / (float) L);
    const float tau = exit_tau(p);
    if (p.exit_decision.empty()) return annealed_confidence(check_.data(), (int) check_.size(), T, arg) >= tau;
    float f[kExitFeatures];
    exit_features(check_.data(), (int) check_.size(), T, prev_arg, (float) l / (float) L, f, arg);
    return exit_probability(p.exit_decision, f) >= tau;
}

void EarlyExitSource::advance(Draft & d, size_t j, int l, bool check, SpecStats & st) {
    const int n_embd = engine_.hparams().n_embd;
    std::vector<Row> rows;
    std::vector<size_t> which;
    // attention at layer k needs every earlier token's KV at k: advance them too
    for (size_t i = 0; i <= j; ++i) {
        if (d.toks[i].depth >= l) continue;
        rows.push_back({ d.toks[i].id, d.toks[i].pos, d.toks[i].depth, l, false, check && i == j });
        which.push_back(i);
    }
    if (rows.empty()) return;
    hbuf_.resize(rows.size() * (size_t) n_embd);
    for (size_t r = 0; r < rows.size(); ++r)
        memcpy(&hbuf_[r * n_embd], &d.hidden[which[r] * n_embd], sizeof(float) * n_embd);
    check_.resize(engine_.candidates().size());
    engine_.forward(rows, hbuf_.data(), hbuf_.data(), nullptr, true, check ? check_.data() : nullptr);
    for (size_t r = 0; r < rows.size(); ++r) {
        RoundToken & t = d.toks[which[r]];
        memcpy(&d.hidden[which[r] * n_embd], &hbuf_[r * n_embd], sizeof(float) * n_embd);
        st.layer_evals += l - t.depth;
        t.evals += l - t.depth;
        t.depth = l;
    }
    st.exit_checks += check;
}

} // namespace sb
