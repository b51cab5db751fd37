#include "speculation/gate.h"

#include <algorithm>

namespace sb {

bool SpecGate::allows(RoundKind source) const {
    if (!enabled_) return true;
    return source != RoundKind::plain && warmup_left_ <= 0 && track(source).paused_for <= 0;
}

bool SpecGate::want_spec() const {
    for (int i = 0; i < n_sources(); ++i)
        if (allows(drafted_by(i))) return true;
    return false;
}

double SpecGate::spec_ms_per_token() const {
    double best = -1.0;
    for (const Track & t : tracks_) {
        const double p = t.price.price();
        if (p >= 0 && (best < 0 || p < best)) best = p;
    }
    return best;
}

void SpecGate::record(RoundKind kind, double ms, int n_emitted) {
    if (n_emitted <= 0) return;
    // a paused source's pause counts the rounds of any other kind
    Track * own = kind == RoundKind::plain ? nullptr : &track(kind);
    for (Track & t : tracks_)
        if (&t != own && t.paused_for > 0 && --t.paused_for == 0) t.probing = true;
    if (kind == RoundKind::plain) {
        plain_.add(ms, n_emitted, 1.0 - smoothing_);
        stats_.plain_rounds++;
        if (warmup_left_ > 0) --warmup_left_;
        return;
    }
    stats_.spec_rounds++;
    stats_.source_rounds[(size_t) source_of(kind)]++;
    judge(*own, ms, n_emitted);
}

void SpecGate::judge(Track & t, double ms, int n_emitted) {
    if (t.probing && t.rounds == 0) {
        // a probe is priced on its own rounds: the old price still remembers why we paused
        stats_.probes++;
        t.price = Price{};
    }
    t.price.add(ms, n_emitted, 1.0 - smoothing_);
    if (++t.rounds < kJudgeRounds) return;
    t.probing = false;
    if (!enabled_ || plain_.price() < 0) return;
    if (t.price.price() > plain_.price() * (1.0 - margin_)) {  // behind: pause, longer each time in a row
        stats_.switch_offs++;
        t.paused_for = t.backoff;
        t.backoff = std::min(t.backoff * 2, kMaxBackoff);
        t.rounds = 0;
    } else {
        t.backoff = kMinBackoff;
    }
}

} // namespace sb
