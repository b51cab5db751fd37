// The speculation controller: the one place that learns from a round. It
// keeps the draft sources (speculation/source.h) in the order it asks them,
// what each has shown in this request (its SourceLedger: acceptance, drafting
// and pass times) and the gate (speculation/gate.h) that lets a source draft
// only while its rounds beat plain decoding. SpecBound (speculation/specbound.h)
// asks it for a round's drafts and tells it how the round went; the decoding
// loop asks it whether to speculate and tells it what each round cost.
#pragma once

#include "engine/engine.h"
#include "speculation/gate.h"
#include "speculation/ngram_pool.h"
#include "speculation/params.h"
#include "speculation/source.h"

#include <memory>
#include <string>
#include <vector>

namespace sb {

class SpecController {
  public:
    // the built-in sources: n-gram lookup from `pool`, then early exit
    SpecController(Engine & engine, const NgramPool & pool);

    // A new generation: what was learned of the last one is forgotten; with
    // gate_enabled the gate picks each round's kind (else every round speculates).
    void reset(bool gate_enabled);
    // Appends a source (asked after the others). Between generations: like
    // reset(), it forgets what was learned.
    void add_source(std::unique_ptr<DraftSource> source);

    // whether the next round may speculate (from a source the gate allows)
    bool want_spec() const { return !gate_enabled_ || gate_.want_spec(); }
    // Drafts after `last` (the newest emitted token, at position cached.size()):
    // the first source the parameters and the gate allow that proposes
    // anything makes the round. Returns which it was (plain: none).
    RoundKind draft(Draft & d, int32_t last, const DraftRequest & r, SpecStats & st);
    // How the round `kind` (what draft() returned) went: its source's ledger
    // and the source learn from it; every source reports its state in st.
    void outcome(RoundKind kind, const RoundOutcome & r, const SpecParams & p, SpecStats & st);
    // a plain single-token step took ms: the unit of every source's pass costs
    void single_step(double ms);
    // a finished round of the decoding loop (plain or speculative): its wall time and tokens emitted
    void record(RoundKind kind, double ms, int n_emitted) {
        if (gate_enabled_) gate_.record(kind, ms, n_emitted);
    }

    const SpecGate & gate() const { return gate_; }
    int n_sources() const { return (int) sources_.size(); }
    std::string source_name(int i) const { return sources_.at((size_t) i)->name(); }

  private:
    Engine & engine_;
    std::vector<std::unique_ptr<DraftSource>> sources_;  // in the order they are asked
    std::vector<SourceLedger> ledgers_;                  // per source
    SpecGate gate_;
    bool gate_enabled_ = false;
};

} // namespace sb
