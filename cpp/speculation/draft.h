// Drafting, the first part of a SpecBound round: free n-gram drafts where the
// text repeats what came before (speculation/ngram_pool.h), else the model's own shallow layers,
// each draft exiting at the first exit layer where the annealed confidence of
// the exit head reaches tau. Drafting stops at the first difficult token (no
// exit by d_max) or after w drafts.
#pragma once

#include "engine/engine.h"
#include "speculation/ngram_pool.h"
#include "speculation/params.h"

#include <cstdint>
#include <functional>
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
    // pool: the n-grams of the text seen so far (the decoding loop feeds it)
    Drafter(Engine & engine, const NgramPool & pool) : engine_(engine), pool_(pool) {}

    // Drafts after `last`, the newest emitted token, which follows the cached
    // tokens (`cached`, all in the KV cache): up to kMaxLookupDraft n-gram
    // drafts from the pool, as many as pay (lookup_length), else up to w_max
    // early exits; never more than `room` (what may still be emitted and fits
    // the context). Counts the drafts, their exit depths and why drafting
    // stopped in st.
    void draft(Draft & d, int32_t last, const std::vector<int32_t> & cached, const SpecParams & p, int room,
               SpecStats & st);

    // How the last lookup round went: n_accepted of its drafts, and how long
    // its deep pass (with acceptance) took. Updates this request's per-draft
    // acceptance by key length and the cost of a pass by width.
    void lookup_outcome(int n_accepted, double pass_ms, SpecStats & st);
    // How the last early-exit round went: n_accepted of n_drafted drafts, its
    // drafting (all exit checks, also those that found no draft) and deep pass
    // times. Updates this request's acceptance of exit drafts and their costs
    // (the early-exit draft length), and moves its exit threshold
    // (SpecParams::tau_step).
    void exit_outcome(int n_drafted, int n_accepted, double draft_ms, double pass_ms, const SpecParams & p);
    // Early-exit drafts per round, at most max_k: the k that maximises the
    // expected tokens per unit of time, (1 + p + ... + p^k) / (k c + cost(k +
    // 1)), with p this request's per-draft acceptance of exit drafts (a prior
    // of kPriorExitAccept), c the measured drafting time per draft and
    // cost(w) the measured time of an exit round's deep pass of w rows, both
    // over a single step (before any measurement: c = first exit layer / L).
    int exit_length(int max_k, const SpecParams & p) const;
    static constexpr double kPriorExitAccept = 0.8;  // calibrated exits are right on 0.8-0.95 of tokens
    // the exit threshold now: p.tau, moved by the request's outcomes so far
    float exit_tau(const SpecParams & p) const;
    // the time of one plain single-token step (the cost unit)
    void single_step(double ms) { lookup_cost_.record(1, ms), exit_.cost.record(1, ms); }
    // a new generation: acceptance and costs are learned again
    void reset() {
        lookup_cost_ = PassCost{}, by_key_ = KeyAcceptance{}, exit_ = SourceRecord(kPriorExitAccept);
        tau_shift_ = 0;
        exit_draft_ms_ = exit_drafts_ = 0;
    }

    // Lookup drafts per round: of a chain of drafts, each accepted (if all
    // before it were) with the probability of its key length (KeyAcceptance),
    // the first k, at least 1, that maximise the expected tokens per unit of
    // time, (1 + p_1 + p_1 p_2 + ... + p_1..p_k) / cost(k + 1), with cost(w)
    // the time of a pass of w rows over a single step (PassCost, from the
    // profile's batch factors and this request's passes). A copied span (long
    // keys, p near 1) is drafted whole where wide passes are cheap enough.
    int lookup_length(const std::vector<PoolDraft> & chain, const SpecParams & p) const;

    static constexpr int kMaxLookupDraft = 64;

    // Time of a deep pass by its width (rows), relative to a single step:
    // measured per width (running means), else the prior's excess over one
    // step, prior(w) - 1, scaled to fit the widths measured so far (least
    // squares), else the prior itself. The prior: batch factors (index w - 1,
    // SpecParams::batch_factors, a line past their end), or without them a
    // line of kPriorSlope per row; at least kMinSlope per row either way.
    struct PassCost {
        static constexpr int kWidths = kMaxLookupDraft + 2;
        double ms[kWidths] = {};
        int n[kWidths] = {};
        void record(int width, double t);
        double relative(int width, const std::vector<float> & prior = {}) const;
        static double prior_excess(int width, const std::vector<float> & prior);
        static constexpr double kPriorSlope = 0.5;  // the 1.5B model's batch factors: about 0.45 per row
        static constexpr double kMinSlope = 0.02;   // the least a row is priced at
    };

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

    // What one draft source (n-gram lookup or early exit) has shown in this
    // request: its per-draft acceptance, decaying, from a prior worth two
    // drafts, and the time of its deep passes by width (width 1: the single
    // step).
    struct SourceRecord {
        double hits, trials;
        PassCost cost;
        explicit SourceRecord(double prior) : hits(2 * prior), trials(2) {}
        // a round of n_drafted drafts, n_accepted of them accepted, whose deep pass took pass_ms
        void record(int n_drafted, int n_accepted, double pass_ms);
        double acceptance() const { return hits / trials; }
    };

  private:
    // n-gram lookup drafts, at most max_k (none where the text's end matches no key); how many
    int draft_lookup(Draft & d, const std::vector<int32_t> & cached, const SpecParams & p, int max_k, SpecStats & st);
    // early-exit drafts until a bound holds
    void draft_early_exit(Draft & d, const SpecParams & p, int w, SpecStats & st);
    // whether the exit head at layer l (logits in check_) is confident enough; its top-1 in *arg
    bool exits(const SpecParams & p, int l, int prev_arg, int * arg) const;
    // advance tokens [0..j] to depth l (earlier ones only as far as needed);
    // with check, leaves the exit-head logits of token j at l in check_
    void advance(Draft & d, size_t j, int l, bool check, SpecStats & st);

    Engine & engine_;
    const NgramPool & pool_;
    PassCost lookup_cost_;  // lookup rounds' passes (their acceptance: by_key_)
    KeyAcceptance by_key_;
    SourceRecord exit_{ kPriorExitAccept };
    std::vector<PoolDraft> chain_;   // the pool's chain of drafts, then the round's lookup drafts
    float tau_shift_ = 0;  // this request's move of the exit threshold
    double exit_draft_ms_ = 0, exit_drafts_ = 0;  // drafting time and drafts of exit rounds, decaying
    std::vector<float> hbuf_;   // scratch for forward()
    std::vector<float> check_;  // exit-head logits
};

// The k in [1, accept.size()] that maximises the expected tokens per unit of
// time of a round of the first k drafts, (1 + p_1 + p_1 p_2 + ... + p_1..p_k) /
// (k per_draft + relative_cost(k + 1)), where draft i is accepted with
// probability p_i = accept[i - 1] if all before it were, per_draft is the cost
// of making one draft and relative_cost(w) the time of a pass of w rows, both
// over a single step. 1 where accept is empty.
int best_chain_length(const std::vector<double> & accept, double per_draft,
                      const std::function<double(int)> & relative_cost);
// The same for max_k drafts of one acceptance p.
int best_draft_length(double p, int max_k, double per_draft, const std::function<double(int)> & relative_cost);

// max_v softmax(z / T)[v] and its argmax
float annealed_confidence(const float * z, int n, float temperature, int * arg);

// What the learned exit decision (SpecParams::exit_decision) reads of one exit
// check, z the exit-head logits over the candidates:
//   0: log of the annealed confidence at temperature T
//   1: top-1 minus top-2 logit
//   2: entropy of softmax(z) (nats)
//   3: 1 if the top-1 equals prev_arg, the top-1 of the token's previous check (-1: none)
//   4: depth, l / n_layer
// calibrate.py computes the same features in numpy to fit the weights.
constexpr size_t kExitFeatures = 5;
void exit_features(const float * z, int n, float temperature, int prev_arg, float depth, float * f, int * arg);
// sigmoid(w[0] + w[1..] . f)
float exit_probability(const std::vector<float> & w, const float * f);

} // namespace sb
