// SpecBound's parameters and counters: how a round drafts
// (exit layers, the annealed-confidence threshold, the d_max / w_max bounds,
// n-gram lookup) and what the rounds did.
#pragma once

#include "model/model.h"

#include <cstdint>
#include <vector>

namespace sb {

struct SpecParams {
    float alpha = 0.5f;            // T_l = 1 + alpha * (1 - l / L)
    float tau = 0.6f;              // exit when max softmax(z_l / T_l) >= tau
    std::vector<int> exit_layers;  // depths where an exit may be checked (ascending, < n_layer)
    int d_max = 0;                 // a token not exited by this depth stops drafting
    int w_max = 6;                 // drafts per round
    int ngram = 0;                 // n-gram lookup drafts (speculation/ngram_pool.h): longest key tried, 2..24 (0: off)
    // A learned exit decision (fitted at calibration): logistic weights over
    // (1, the exit features of speculation/exit_decision.h); a draft exits where the
    // predicted probability that the exit head is right reaches tau. Empty: the
    // annealed confidence itself is compared with tau.
    std::vector<float> exit_decision;
    // Draft & Verify's adaptive threshold: after each early-exit round the
    // request's exit threshold moves up by tau_step where the round's drafts
    // were accepted at a rate below tau, down where at or above, within
    // tau +- kTauRange (0: tau fixed). tau reads as the precision an exit
    // should have, which the learned decision's probability is fitted to be.
    // Off by default: on Qwen2.5-Coder-0.5B's calibrated profile, step 0.01
    // ran at 0.98x of the fixed threshold (median of 8 paired generations;
    // 3-20 early-exit rounds each, the rest lookup or plain).
    float tau_step = 0.0f;
    static constexpr float kTauRange = 0.1f;
    // The time of a full-depth pass of w rows with logits over one row, at
    // w = 1, 2, ... (index w - 1), as calibration measured it on this machine:
    // the prior price of a lookup round's width (speculation/pricing.h,
    // PassCost). Empty: a line of PassCost::kPriorSlope per row.
    std::vector<float> batch_factors;
};

struct SpecStats {
    int64_t rounds = 0;
    int64_t draft_tokens = 0;       // drafts proposed
    int64_t accepted_tokens = 0;    // drafts equal to the full model's choice
    int64_t emitted_tokens = 0;
    int64_t exit_checks = 0;
    int64_t layer_evals = 0;        // all token-layer evaluations
    int64_t layer_evals_committed = 0;  // of tokens that entered the cache for good
    int64_t layer_evals_rejected = 0;   // of rejected drafts (wasted work)
    int64_t stops_d_max = 0;        // rounds whose drafting hit a difficult token
    int64_t stops_w_max = 0;        // rounds that reached w_max drafts
    int64_t stops_limit = 0;        // rounds cut by max_tokens / context end
    int64_t rounds_all_accepted = 0;  // rounds with >= 1 draft, all accepted (bonus token emitted)
    std::vector<int64_t> exit_depth_hist;  // drafts per exit depth (index = layer; 0: n-gram lookup drafts)
    int64_t ngram_rounds = 0;       // rounds drafted by n-gram lookup
    int64_t ngram_accepted = 0;     // accepted drafts of those rounds
    std::vector<int64_t> lookup_key_drafts;    // lookup drafts by the length of the key that proposed them (index)
    std::vector<int64_t> lookup_key_accepted;  // those of them accepted
    std::vector<int64_t> lookup_key_rejected;  // those of them that failed verification (one per round at most:
                                               // accepted / (accepted + rejected) is the acceptance drafting prices)
    int64_t exit_vocab_added = 0;   // emitted tokens added to the exit-head vocabulary
    int64_t exit_rounds = 0;        // rounds drafted by early exit
    int64_t exit_accepted = 0;      // accepted drafts of those rounds
    float exit_tau = 0;             // the exit threshold at the end of the generation (adaptive: tau_step)
    double draft_ms = 0, verify_ms = 0;
};

// Defaults without a calibrated profile: one exit just below the top.
SpecParams default_spec_params(const HParams & hp);

} // namespace sb
