// A draft source: what proposes the drafts of a SpecBound round. The
// speculation controller (speculation/controller.h) asks its sources in
// order; the first that drafts makes the round, and hears how it went.
//
// A source is one .cpp file: a class over this interface and a make_ function
// declared at the end of this header, added to the controller's list with
// one line (SpecController's constructor). What every source is judged by -
// its per-draft acceptance, the time of its drafting and of its deep passes,
// its price per token against plain decoding - the controller keeps in the
// source's ledger (SourceLedger) and its gate (speculation/gate.h); a source
// keeps only what is its own (the lookup's acceptance by key length, the
// early exit's threshold).
#pragma once

#include "engine/engine.h"
#include "speculation/ngram_pool.h"
#include "speculation/params.h"
#include "speculation/pricing.h"

#include <cstdint>
#include <memory>
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
    std::vector<float> hidden;  // [toks.size() or more, n_embd]: each token's state at its depth
};

// What a source may draft from and how much.
struct DraftRequest {
    const std::vector<int32_t> & cached;  // the tokens in the KV cache, before d.toks[0]
    const SpecParams & p;
    int room;  // the most drafts the round may hold (what may still be emitted and fits the context)
};

// How a drafted round went.
struct RoundOutcome {
    int n_drafted = 0, n_accepted = 0;
    double draft_ms = 0, pass_ms = 0;  // its drafting, and its deep pass with acceptance
};

// What the controller learned of one source in this request (the speculation
// controller's, handed to the source to price its drafts).
struct SourceLedger {
    double hits, trials;  // per-draft acceptance, decaying, from a prior worth two drafts
    PassCost cost;        // its deep passes by width (width 1: the plain single step)
    double draft_ms = 0, drafts = 0;  // drafting time and drafts of its rounds, decaying
    explicit SourceLedger(double prior) : hits(2 * prior), trials(2) {}
    double acceptance() const { return hits / trials; }
    // a round it drafted: n_drafted drafts, the first n_accepted of them accepted
    void record(const RoundOutcome & r);
};

class DraftSource {
  public:
    virtual ~DraftSource() = default;
    // its name in the statistics ("gate_<name>_rounds", ...)
    virtual const char * name() const = 0;
    // the per-draft acceptance its ledger starts from
    virtual double prior_acceptance() const = 0;
    // Drafts after d.toks[0] (the newest emitted token, at depth 0, with a
    // zero state row in d.hidden): appends the drafts to d.toks, each at the
    // depth drafting left it, and counts them in st. A source that computes
    // layers sizes d.hidden for its tokens' states; the controller pads it
    // with zero rows for tokens at depth 0. Returns whether it did anything:
    // false (nothing appended, no layer computed) lets the next source try.
    virtual bool propose(Draft & d, const DraftRequest & r, const SourceLedger & ledger, SpecStats & st) = 0;
    // how its round went (its ledger has already recorded it)
    virtual void outcome(const RoundOutcome & r, const SpecParams & p, SpecStats & st) = 0;
    // its state as a statistic, after every speculative round
    virtual void stats(const SpecParams &, SpecStats &) const {}
    // a new generation: forget what it learned of the last one
    virtual void reset() {}
};

// The built-in sources, in the order the controller asks them.
// n-gram lookup (speculation/lookup_source.cpp): free drafts where the text repeats
std::unique_ptr<DraftSource> make_lookup_source(Engine & engine, const NgramPool & pool);
// early exit (speculation/exit_source.cpp): the model's own shallow layers
std::unique_ptr<DraftSource> make_early_exit_source(Engine & engine);

} // namespace sb
