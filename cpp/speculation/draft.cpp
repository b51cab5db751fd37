#include "speculation/draft.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace sb {

float annealed_confidence(const float * z, int n, float temperature, int * arg) {
    int best = 0;
    for (int i = 1; i < n; ++i)
        if (z[i] > z[best]) best = i;
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += std::exp((double) (z[i] - z[best]) / temperature);
    *arg = best;
    return (float) (1.0 / sum);
}

void exit_features(const float * z, int n, float temperature, int prev_arg, float depth, float * f, int * arg) {
    int best = 0, second = -1;
    for (int i = 1; i < n; ++i) {
        if (z[i] > z[best]) second = best, best = i;
        else if (second < 0 || z[i] > z[second]) second = i;
    }
    double sum_t = 0, sum = 0, sum_pz = 0;
    for (int i = 0; i < n; ++i) {
        const double d = (double) z[i] - z[best], e = std::exp(d);
        sum_t += std::exp(d / temperature);
        sum += e;
        sum_pz += e * d;
    }
    *arg = best;
    f[0] = (float) -std::log(sum_t);
    f[1] = second < 0 ? 0.0f : z[best] - z[second];
    f[2] = (float) (std::log(sum) - sum_pz / sum);
    f[3] = best == prev_arg ? 1.0f : 0.0f;
    f[4] = depth;
}

float exit_probability(const std::vector<float> & w, const float * f) {
    double s = w[0];
    for (size_t i = 0; i < kExitFeatures; ++i) s += (double) w[i + 1] * f[i];
    return (float) (1.0 / (1.0 + std::exp(-s)));
}

bool Drafter::exits(const SpecParams & p, int l, int prev_arg, int * arg) const {
    const int L = engine_.hparams().n_layer;
    const float T = 1.0f + p.alpha * (1.0f - (float) l / (float) L);
    const float tau = exit_tau(p);
    if (p.exit_decision.empty()) return annealed_confidence(check_.data(), (int) check_.size(), T, arg) >= tau;
    float f[kExitFeatures];
    exit_features(check_.data(), (int) check_.size(), T, prev_arg, (float) l / (float) L, f, arg);
    return exit_probability(p.exit_decision, f) >= tau;
}

void Drafter::exit_outcome(int n_drafted, int n_accepted, double draft_ms, double pass_ms, const SpecParams & p) {
    exit_draft_ms_ = 0.9 * exit_draft_ms_ + draft_ms;
    exit_drafts_ = 0.9 * exit_drafts_ + n_drafted;
    if (n_drafted <= 0) return;
    exit_.record(n_drafted, n_accepted, pass_ms);
    if (p.tau_step <= 0) return;
    // below the precision tau asks for: exit less readily; at or above: more
    const float rate = (float) n_accepted / (float) n_drafted;
    tau_shift_ = std::clamp(tau_shift_ + (rate < p.tau ? p.tau_step : -p.tau_step), -SpecParams::kTauRange,
                            SpecParams::kTauRange);
}

float Drafter::exit_tau(const SpecParams & p) const {
    return std::clamp(p.tau + tau_shift_, 0.01f, 1.0f);
}

void Drafter::draft(Draft & d, int32_t last, const std::vector<int32_t> & cached, const SpecParams & p, int room,
                    SpecStats & st) {
    const int max_lookup = std::min(kMaxLookupDraft, room);
    const int w_exit = exit_length(std::min(p.w_max, room), p);
    d.toks = { { last, (int32_t) cached.size(), 0 } };
    const int w_lookup = p.ngram > 0 && max_lookup > 0 ? draft_lookup(d, cached, p, max_lookup, st) : 0;
    d.from_lookup = w_lookup > 0;
    d.hidden.assign((size_t) (std::max(w_lookup, w_exit) + 1) * engine_.hparams().n_embd, 0.0f);
    if (d.from_lookup || p.exit_layers.empty()) return;
    draft_early_exit(d, p, w_exit, st);
    if ((int) d.toks.size() - 1 == w_exit && w_exit > 0) (room < p.w_max ? st.stops_limit : st.stops_w_max)++;
}

void Drafter::lookup_outcome(int n_accepted, double pass_ms, SpecStats & st) {
    by_key_.record(chain_, n_accepted);
    lookup_cost_.record((int) chain_.size() + 1, pass_ms);
    if ((int) st.lookup_key_drafts.size() < NgramPool::kMaxKey + 1)
        for (auto * v : { &st.lookup_key_drafts, &st.lookup_key_accepted, &st.lookup_key_rejected })
            v->assign(NgramPool::kMaxKey + 1, 0);
    for (size_t i = 0; i < chain_.size(); ++i) {
        st.lookup_key_drafts[chain_[i].key]++;
        st.lookup_key_accepted[chain_[i].key] += (int) i < n_accepted;
        st.lookup_key_rejected[chain_[i].key] += (int) i == n_accepted;
    }
}

void Drafter::SourceRecord::record(int n_drafted, int n_accepted, double pass_ms) {
    // draft i is tried only when drafts 1..i-1 were accepted
    hits = 0.9 * hits + n_accepted;
    trials = 0.9 * trials + std::min(n_accepted + 1, n_drafted);
    cost.record(n_drafted + 1, pass_ms);
}

void Drafter::KeyAcceptance::record(const std::vector<PoolDraft> & drafts, int n_accepted) {
    for (int k = 0; k < NgramPool::kKeys; ++k) hits[k] *= 0.9, trials[k] *= 0.9;
    // draft i is tried only when drafts 1..i-1 were accepted
    for (int i = 0; i < (int) drafts.size() && i <= n_accepted; ++i) {
        const int k = NgramPool::key_index(drafts[i].key);
        trials[k] += 1;
        hits[k] += i < n_accepted;
    }
}

double Drafter::KeyAcceptance::prior(int key_length) {
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

double Drafter::KeyAcceptance::acceptance(int key_length) const {
    const int k = NgramPool::key_index(key_length);
    return (hits[k] + kPriorWeight * prior(key_length)) / (trials[k] + kPriorWeight);
}

int Drafter::lookup_length(const std::vector<PoolDraft> & chain, const SpecParams & p) const {
    std::vector<double> accept(chain.size());
    for (size_t i = 0; i < chain.size(); ++i) accept[i] = by_key_.acceptance(chain[i].key);
    return best_chain_length(accept, 0.0, [&](int w) { return lookup_cost_.relative(w, p.batch_factors); });
}

int Drafter::exit_length(int max_k, const SpecParams & p) const {
    if (max_k <= 0 || p.exit_layers.empty()) return 0;
    const double prior = (double) p.exit_layers.front() / engine_.hparams().n_layer;
    const PassCost & cost = exit_.cost;
    const double per_draft = exit_drafts_ >= 1 && cost.n[1] > 0 ? exit_draft_ms_ / exit_drafts_ / cost.ms[1] : prior;
    return best_draft_length(exit_.acceptance(), max_k, per_draft, [&cost](int w) { return cost.relative(w); });
}

int best_draft_length(double p, int max_k, double per_draft, const std::function<double(int)> & relative_cost) {
    return best_chain_length(std::vector<double>((size_t) std::max(max_k, 1), p), per_draft, relative_cost);
}

int best_chain_length(const std::vector<double> & accept, double per_draft,
                      const std::function<double(int)> & relative_cost) {
    double gain = 1.0, reach = 1.0, best_rate = 0.0;  // reach: the chance that draft k is tried and accepted
    int best = 1;
    for (int k = 1; k <= (int) accept.size(); ++k) {
        reach *= std::clamp(accept[k - 1], 0.0, 1.0);
        gain += reach;
        const double rate = gain / (k * per_draft + relative_cost(k + 1));
        if (rate > best_rate) best_rate = rate, best = k;
    }
    return best;
}

void Drafter::PassCost::record(int width, double t) {
    if (width < 1 || width >= kWidths || !(t > 0)) return;
    n[width]++;
    ms[width] += (t - ms[width]) / std::min(n[width], 8);  // a running mean of the recent passes
}

double Drafter::PassCost::prior_excess(int width, const std::vector<float> & prior) {
    const int n = (int) prior.size();
    if (n < 2) return kPriorSlope * (width - 1);
    // past the measured widths: the line through the last two
    const double e = width <= n ? prior[width - 1] - 1.0
                                : prior[n - 1] - 1.0 + (double) (prior[n - 1] - prior[n - 2]) * (width - n);
    // never free: a profile measured on a busy machine can say so, and a
    // zero excess could not be scaled to what this request measures
    return std::max(e, kMinSlope * (width - 1));
}

double Drafter::PassCost::relative(int width, const std::vector<float> & prior) const {
    if (width <= 1) return 1.0;
    const double expect = prior_excess(width, prior);
    if (n[1] == 0) return 1.0 + expect;
    if (width < kWidths && n[width] > 0) return ms[width] / ms[1];
    double sxy = 0, sxx = 0;  // the prior's excess scaled to the widths measured (least squares through 0)
    for (int w = 2; w < kWidths; ++w) {
        if (n[w] == 0) continue;
        const double e = prior_excess(w, prior);
        sxy += e * (ms[w] / ms[1] - 1.0), sxx += e * e;
    }
    const double scale = sxx > 0 ? std::max(0.0, sxy / sxx) : 1.0;
    return 1.0 + scale * expect;
}

int Drafter::draft_lookup(Draft & d, const std::vector<int32_t> & cached, const SpecParams & p, int max_k,
                          SpecStats & st) {
    // the end of the text: the newest emitted token after the cached ones
    int32_t tail[NgramPool::kMaxKey];
    const size_t n_cached = std::min(cached.size(), (size_t) NgramPool::kMaxKey - 1);
    std::copy(cached.end() - (ptrdiff_t) n_cached, cached.end(), tail);
    tail[n_cached] = d.toks[0].id;
    pool_.chain(tail, n_cached + 1, p.ngram, max_k, chain_);
    if (chain_.empty()) return 0;
    const size_t found = chain_.size();
    chain_.resize((size_t) lookup_length(chain_, p));
    // a round cut by its price counts as one stopped by w_max; by the room left, by the limit
    if (chain_.size() < found) st.stops_w_max++;
    else if ((int) found == max_k && max_k < kMaxLookupDraft) st.stops_limit++;
    for (const PoolDraft & t : chain_) {  // at depth 0: the deep pass computes all their layers
        d.toks.push_back({ t.id, d.toks.back().pos + 1, 0 });
        st.exit_depth_hist[0]++;
        st.draft_tokens++;
    }
    st.ngram_rounds++;
    return (int) chain_.size();
}

void Drafter::draft_early_exit(Draft & d, const SpecParams & p, int w, SpecStats & st) {
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

void Drafter::advance(Draft & d, size_t j, int l, bool check, SpecStats & st) {
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
