// Pricing a round's drafts: how many to draft, from their chance of being
// accepted and the time of the deep pass that verifies them. Shared by the
// draft sources (speculation/source.h); the controller keeps each source's
// measured pass times (PassCost) in its ledger.
#pragma once

#include <functional>
#include <vector>

namespace sb {

// The most drafts one round holds (and so the widest deep pass priced).
constexpr int kMaxDraft = 64;

// Time of a deep pass by its width (rows), relative to a single step:
// measured per width (running means), else the prior's excess over one
// step, prior(w) - 1, scaled to fit the widths measured so far (least
// squares), else the prior itself. The prior: batch factors (index w - 1,
// SpecParams::batch_factors, a line past their end), or without them a
// line of kPriorSlope per row; at least kMinSlope per row either way.
struct PassCost {
    static constexpr int kWidths = kMaxDraft + 2;
    double ms[kWidths] = {};
    int n[kWidths] = {};
    void record(int width, double t);
    double relative(int width, const std::vector<float> & prior = {}) const;
    static double prior_excess(int width, const std::vector<float> & prior);
    static constexpr double kPriorSlope = 0.5;  // the 1.5B model's batch factors: about 0.45 per row
    static constexpr double kMinSlope = 0.02;   // the least a row is priced at
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

} // namespace sb
