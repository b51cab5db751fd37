#include "speculation/controller.h"

namespace sb {

SpecController::SpecController(Engine & engine, const NgramPool & pool) : engine_(engine) {
    // the first source that drafts makes the round: free lookup drafts before early exits
    add_source(make_lookup_source(engine, pool));
    add_source(make_early_exit_source(engine));
}

void SpecController::add_source(std::unique_ptr<DraftSource> source) {
    ledgers_.emplace_back(source->prior_acceptance());
    sources_.push_back(std::move(source));
    reset(gate_enabled_);  // the gate prices every source
}

void SpecController::reset(bool gate_enabled) {
    gate_enabled_ = gate_enabled;
    gate_ = SpecGate(gate_enabled, 0.2, SpecGate::kMargin, n_sources());
    for (size_t i = 0; i < sources_.size(); ++i) {
        ledgers_[i] = SourceLedger(sources_[i]->prior_acceptance());
        sources_[i]->reset();
    }
}

RoundKind SpecController::draft(Draft & d, int32_t last, const DraftRequest & r, SpecStats & st) {
    const size_t n_embd = (size_t) engine_.hparams().n_embd;
    d.toks = { { last, (int32_t) r.cached.size(), 0 } };
    d.hidden.assign(n_embd, 0.0f);
    RoundKind kind = RoundKind::plain;
    for (int i = 0; i < n_sources() && kind == RoundKind::plain; ++i) {
        if (gate_enabled_ && !gate_.allows(drafted_by(i))) continue;  // paused: the gate judged it behind
        if (sources_[(size_t) i]->propose(d, r, ledgers_[(size_t) i], st)) kind = drafted_by(i);
    }
    // the deep pass reads a state row per token (zeros for tokens at depth 0)
    if (d.hidden.size() < d.toks.size() * n_embd) d.hidden.resize(d.toks.size() * n_embd, 0.0f);
    return kind;
}

void SpecController::outcome(RoundKind kind, const RoundOutcome & r, const SpecParams & p, SpecStats & st) {
    if (kind != RoundKind::plain) {
        const size_t i = (size_t) source_of(kind);
        ledgers_[i].record(r);
        sources_[i]->outcome(r, p, st);
    }
    for (const auto & s : sources_) s->stats(p, st);
}

void SpecController::single_step(double ms) {
    for (SourceLedger & l : ledgers_) l.cost.record(1, ms);
}

void SourceLedger::record(const RoundOutcome & r) {
    draft_ms = 0.9 * draft_ms + r.draft_ms;
    drafts = 0.9 * drafts + r.n_drafted;
    if (r.n_drafted <= 0) return;
    // draft i is tried only when drafts 1..i-1 were accepted
    hits = 0.9 * hits + r.n_accepted;
    trials = 0.9 * trials + std::min(r.n_accepted + 1, r.n_drafted);
    cost.record(r.n_drafted + 1, r.pass_ms);
}

} // namespace sb
