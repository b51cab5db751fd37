#include "decode/gate.h"

#include <algorithm>

namespace sb {

bool SpecGate::allows(RoundKind source) const {
    if (!enabled_) return true;
    return source != RoundKind::plain && warmup_left_ <= 0 && track(source).paused_for <= 0;
}

double SpecGate::spec_ms_per_token() const {
    const double a = lookup_.price.price(), b = early_exit_.price.price();
    if (a < 0) return b;
    if (b < 0) return a;
    return std::min(a, b);
}

void SpecGate::record(RoundKind kind, double ms, int n_emitted) {
    if (n_emitted <= 0) return;
    // a paused source's pause counts the rounds of any other kind
    Track * own = kind == RoundKind::plain ? nullptr : &track(kind);
    for (Track * t : { &lookup_, &early_exit_ })
        if (t != own && t->paused_for > 0 && --t->paused_for == 0) t->probing = true;
    if (kind == RoundKind::plain) {
        plain_.add(ms, n_emitted, 1.0 - smoothing_);
        stats_.plain_rounds++;
        if (warmup_left_ > 0) --warmup_left_;
        return;
    }
    stats_.spec_rounds++;
    (kind == RoundKind::lookup ? stats_.lookup_rounds : stats_.early_exit_rounds)++;
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
