#include "speculation/specbound.h"

#include "speculation/ngram.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

namespace sb {

static double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

float annealed_confidence(const float * z, int n, float temperature, int * arg) {
    int best = 0;
    for (int i = 1; i < n; ++i)
        if (z[i] > z[best]) best = i;
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += std::exp((double) (z[i] - z[best]) / temperature);
    *arg = best;
    return (float) (1.0 / sum);
}

SpecParams default_spec_params(const HParams & hp) {
    // Without a calibrated profile: what calibration chose on both models
    // measured here (SmolLM2-135M, Qwen2.5-Coder-0.5B): one exit just below the
    // top with a high threshold. On these models the LM head applied before
    // ~70% depth agrees with the full model on under 25% of tokens, so shallow
    // exits cost more than they save; the gain is sharing the LM head.
    SpecParams p;
    if (hp.n_layer > 1) p.exit_layers = { hp.n_layer - 1 };
    p.d_max = p.exit_layers.empty() ? 0 : p.exit_layers.back();
    p.alpha = 0.5f;
    p.tau = 0.9f;
    p.w_max = 6;
    return p;
}

void SpecBound::advance(std::vector<Tok> & toks, size_t j, int l, bool check, SpecStats & st) {
    const int n_embd = engine_.hparams().n_embd;
    std::vector<Row> rows;
    std::vector<size_t> which;
    // attention at layer k needs every earlier token's KV at k: advance them too
    for (size_t i = 0; i <= j; ++i) {
        if (toks[i].depth >= l) continue;
        rows.push_back({ toks[i].id, toks[i].pos, toks[i].depth, l, false, check && i == j });
        which.push_back(i);
    }
    if (rows.empty()) return;
    hbuf_.resize(rows.size() * (size_t) n_embd);
    for (size_t r = 0; r < rows.size(); ++r)
        memcpy(&hbuf_[r * n_embd], &hidden_[which[r] * n_embd], sizeof(float) * n_embd);
    check_.resize(engine_.candidates().size());
    engine_.forward(rows, hbuf_.data(), hbuf_.data(), nullptr, true, check ? check_.data() : nullptr);
    for (size_t r = 0; r < rows.size(); ++r) {
        memcpy(&hidden_[which[r] * n_embd], &hbuf_[r * n_embd], sizeof(float) * n_embd);
        st.layer_evals += l - toks[which[r]].depth;
        toks[which[r]].evals += l - toks[which[r]].depth;
        toks[which[r]].depth = l;
    }
    st.exit_checks += check;
}

void SpecBound::draft_early_exit(std::vector<Tok> & toks, const SpecParams & p, int w, SpecStats & st) {
    const int L = engine_.hparams().n_layer;
    while ((int) toks.size() - 1 < w) {
        const size_t j = toks.size() - 1;
        int exit_at = -1, arg = 0;
        for (int l : p.exit_layers) {
            if (l > p.d_max) break;
            advance(toks, j, l, true, st);
            const float T = 1.0f + p.alpha * (1.0f - (float) l / (float) L);
            if (annealed_confidence(check_.data(), (int) check_.size(), T, &arg) >= p.tau) { exit_at = l; break; }
        }
        if (exit_at < 0) {  // difficult token: stop drafting at once
            st.stops_d_max++;
            return;
        }
        st.exit_depth_hist[exit_at]++;
        st.draft_tokens++;
        toks.push_back({ engine_.candidates()[arg], toks[j].pos + 1, 0 });
    }
}

void SpecBound::round(int32_t last, std::vector<int32_t> & history, const std::vector<int32_t> & emitted,
                      const SamplingParams & sp, const SpecParams & p, int max_new, std::vector<int32_t> & out,
                      SpecStats & st, std::vector<float> * keep_logits) {
    const HParams & hp = engine_.hparams();
    const int L = hp.n_layer, n_embd = hp.n_embd, n_vocab = hp.n_vocab;
    const int p0 = (int) history.size();
    // drafts are bounded by w_max, by what may still be emitted, and by the context
    const int w = std::max(0, std::min({ p.w_max, max_new - 1, engine_.n_ctx() - 1 - p0 }));
    if ((int) st.exit_depth_hist.size() < L + 1) st.exit_depth_hist.assign(L + 1, 0);
    st.rounds++;

    // ---- drafting: free n-gram drafts where the text repeats, else early exit --
    const double t0 = now_ms();
    std::vector<Tok> toks = { { last, p0, 0 } };
    hidden_.assign((size_t) (w + 1) * n_embd, 0.0f);
    const bool cut_by_limit = w < p.w_max;  // bounded by max_new / context, not by w_max
    std::vector<int32_t> lookup;
    if (p.ngram > 0 && w > 0) {
        std::vector<int32_t> ctx(history);
        ctx.push_back(last);
        lookup = ngram_draft(ctx, 2, p.ngram, w);
    }
    for (int32_t id : lookup) {  // at depth 0: the deep pass computes all their layers
        toks.push_back({ id, toks.back().pos + 1, 0 });
        st.exit_depth_hist[0]++;
        st.draft_tokens++;
    }
    if (!lookup.empty()) st.ngram_rounds++;
    else draft_early_exit(toks, p, w, st);
    if ((int) toks.size() - 1 == w && w > 0) (cut_by_limit ? st.stops_limit : st.stops_w_max)++;
    const double t1 = now_ms();

    // ---- one deep pass: every token from its own depth to the top -----------
    std::vector<Row> rows;
    for (const Tok & t : toks) rows.push_back({ t.id, t.pos, t.depth, L, true, false });
    logits_.resize(toks.size() * (size_t) n_vocab);
    engine_.forward(rows, hidden_.data(), nullptr, logits_.data(), true);
    for (Tok & t : toks) {
        st.layer_evals += L - t.depth;
        t.evals += L - t.depth;
    }

    // ---- verification: the full model's choice at each position -------------
    // token i's logits predict position pos_i + 1; draft i + 1 stands iff equal
    // (penalties, logits processors, bias and grammar see the same generated
    // tokens plain decoding would have seen; each choice is emitted, so a
    // grammar's state follows exactly the emitted text)
    size_t n_keep = 1;  // tokens of the round that stay in the cache (toks[0] always)
    const bool needs_history = sp.penalties_on() || sp.constraints;
    recent_.clear();
    if (needs_history) recent_.assign(emitted.begin(), emitted.end());
    for (size_t i = 0; i < toks.size(); ++i) {
        const int32_t y = sampler_.sample(&logits_[i * (size_t) n_vocab], n_vocab, sp, toks[i].pos + 1,
                                          recent_.data(), recent_.size());
        out.push_back(y);
        if (keep_logits) keep_logits->insert(keep_logits->end(), &logits_[i * (size_t) n_vocab], &logits_[(i + 1) * (size_t) n_vocab]);
        if (needs_history) recent_.push_back(y);
        if (i + 1 < toks.size() && toks[i + 1].id == y) {
            st.accepted_tokens++;
            st.ngram_accepted += !lookup.empty();
            n_keep++;
            continue;
        }
        break;
    }
    // what each token actually cost: kept tokens should cost exactly L each
    for (size_t i = 0; i < toks.size(); ++i) (i < n_keep ? st.layer_evals_committed : st.layer_evals_rejected) += toks[i].evals;
    if (toks.size() > 1 && n_keep == toks.size()) st.rounds_all_accepted++;
    for (size_t i = 0; i < n_keep; ++i) history.push_back(toks[i].id);
    st.emitted_tokens += (int64_t) out.size();
    st.draft_ms += t1 - t0;
    st.verify_ms += now_ms() - t1;
}

} // namespace sb
