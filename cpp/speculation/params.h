// SpecBound's parameters and counters: how a round drafts
// (exit layers, the annealed-confidence threshold, the d_max / w_max bounds,
// n-gram lookup) and what the rounds did.
#pragma once

#include "model/model.h"

#include <cstdint>
#include <string>
#include <vector>

namespace sb {

// Each field of SpecParams, declared once, as
//   X(type, name, default, valid, rule, doc)
// The list makes the struct (below), its Python binding (bindings/params.cpp:
// a read-write attribute per field with `doc` as its docstring, and
// SpecParams.fields, the names in this order, which python/specbound_cpp/params.py
// builds and reads the struct by) and the model-independent part of the
// check (check_spec_fields, speculation/params.cpp): `valid` is a condition
// on the field's value `v` (written so that NaN fails it, or `true`) and
// `rule` the ValueError's text when it fails (both are compiled only in
// speculation/params.cpp, whose includes name what they use). What depends on
// the model (exit_layers and d_max against n_layer) is in check_spec_params.
// A new parameter is one line here, read by the code that uses it (and, if
// Llama() takes it as an argument, that keyword in llama.py).
//
// exit_decision: a learned exit decision (fitted at calibration): logistic
// weights over (1, the exit features of speculation/exit_decision.h); a draft
// exits where the predicted probability that the exit head is right reaches
// tau. Empty: the annealed confidence itself is compared with tau.
//
// tau_step: Draft & Verify's adaptive threshold: after each early-exit round
// the request's exit threshold moves up by tau_step where the round's drafts
// were accepted at a rate below tau, down where at or above, within tau +-
// kTauRange (0: tau fixed). tau reads as the precision an exit should have,
// which the learned decision's probability is fitted to be. Off by default: on
// Qwen2.5-Coder-0.5B's calibrated profile, step 0.01 ran at 0.98x of the fixed
// threshold (median of 8 paired generations; 3-20 early-exit rounds each, the
// rest lookup or plain).
//
// batch_factors: the time of a full-depth pass of w rows with logits over one
// row, at w = 1, 2, ... (index w - 1), as calibration measured it on this
// machine: the prior price of a lookup round's width (speculation/pricing.h,
// PassCost). Empty: a line of PassCost::kPriorSlope per row.
#define SB_SPEC_PARAMS(X)                                                                                          \
    X(float, alpha, 0.5f, v >= 0, "alpha >= 0", "T_l = 1 + alpha * (1 - l / L)")                                   \
    X(float, tau, 0.6f, v > 0 && v <= 1, "0 < tau <= 1", "exit when max softmax(z_l / T_l) >= tau")                \
    X(std::vector<int>, exit_layers, {}, true, "",                                                                 \
      "depths where an exit may be checked (ascending, < n_layer)")                                                \
    X(int, d_max, 0, v >= 0, "d_max >= 0", "a token not exited by this depth stops drafting")                      \
    X(int, w_max, 6, v >= 0, "w_max >= 0", "drafts per round")                                                     \
    X(int, ngram, 0, v >= 0 && v <= NgramPool::kMaxKey,                                                            \
      "ngram (the longest lookup key) >= 0 and at most " + std::to_string(NgramPool::kMaxKey),                     \
      "n-gram lookup drafts (speculation/ngram_pool.h): longest key tried, 2..24 (0: off)")                        \
    X(std::vector<float>, exit_decision, {}, (v.empty() || v.size() == 1 + kExitFeatures) && all_finite(v),        \
      "exit_decision empty or " + std::to_string(1 + kExitFeatures) +                                              \
          " finite weights (a bias, then one per exit feature)",                                                   \
      "logistic weights of a learned exit decision (empty: the annealed confidence)")                              \
    X(float, tau_step, 0.0f, v >= 0 && v <= 0.1f, "0 <= tau_step <= 0.1",                                          \
      "the adaptive exit threshold's step per early-exit round (0: tau fixed)")                                    \
    X(std::vector<float>, batch_factors, {}, all_finite(v) && all_positive(v), "batch_factors finite and positive", \
      "the time of a pass of w rows over one row, w = 1, 2, ... (empty: the prior line)")

struct SpecParams {
#define SB_SPEC_FIELD(type, name, init, valid, rule, doc) type name = init;
    SB_SPEC_PARAMS(SB_SPEC_FIELD)
#undef SB_SPEC_FIELD
    static constexpr float kTauRange = 0.1f;  // tau_step's threshold stays within tau +- this
};

// Throws std::invalid_argument naming the first field whose value breaks its
// rule in SB_SPEC_PARAMS (what holds whatever the model).
void check_spec_fields(const SpecParams & p);

// Each field of SpecStats, declared once, as X(type, name, doc): the struct,
// its read-only binding and SpecStats.fields (python/specbound_cpp/params.py's
// SPEC_STATS_FIELDS).
#define SB_SPEC_STATS(X)                                                                                           \
    X(int64_t, rounds, "rounds run")                                                                                         \
    X(int64_t, draft_tokens, "drafts proposed")                                                                    \
    X(int64_t, accepted_tokens, "drafts equal to the full model's choice")                                         \
    X(int64_t, emitted_tokens, "tokens emitted")                                                                                 \
    X(int64_t, exit_checks, "exit-head checks made while drafting")                                                                                    \
    X(int64_t, layer_evals, "all token-layer evaluations")                                                         \
    X(int64_t, layer_evals_committed, "of tokens that entered the cache for good")                                 \
    X(int64_t, layer_evals_rejected, "of rejected drafts (wasted work)")                                           \
    X(int64_t, stops_d_max, "rounds whose drafting hit a difficult token")                                         \
    X(int64_t, stops_w_max, "rounds that reached w_max drafts")                                                    \
    X(int64_t, stops_limit, "rounds cut by max_tokens / context end")                                              \
    X(int64_t, rounds_all_accepted, "rounds with >= 1 draft, all accepted (bonus token emitted)")                  \
    X(std::vector<int64_t>, exit_depth_hist, "drafts per exit depth (index = layer; 0: n-gram lookup drafts)")     \
    X(int64_t, ngram_rounds, "rounds drafted by n-gram lookup")                                                    \
    X(int64_t, ngram_accepted, "accepted drafts of those rounds")                                                  \
    X(std::vector<int64_t>, lookup_key_drafts, "lookup drafts by the length of the key that proposed them (index)") \
    X(std::vector<int64_t>, lookup_key_accepted, "those of them accepted")                                         \
    X(std::vector<int64_t>, lookup_key_rejected,                                                                   \
      "those of them that failed verification (one per round at most: accepted / (accepted + rejected) "          \
      "is the acceptance drafting prices)")                                                                        \
    X(int64_t, exit_vocab_added, "emitted tokens added to the exit-head vocabulary")                               \
    X(int64_t, exit_rounds, "rounds drafted by early exit")                                                        \
    X(int64_t, exit_accepted, "accepted drafts of those rounds")                                                   \
    X(float, exit_tau, "the exit threshold at the end of the generation (adaptive: tau_step)")                     \
    X(double, draft_ms, "time spent drafting")                                                                                        \
    X(double, verify_ms, "time spent in the deep passes that verify")

struct SpecStats {
#define SB_SPEC_STAT(type, name, doc) type name{};
    SB_SPEC_STATS(SB_SPEC_STAT)
#undef SB_SPEC_STAT
};

// Defaults without a calibrated profile: one exit just below the top.
SpecParams default_spec_params(const HParams & hp);

} // namespace sb
