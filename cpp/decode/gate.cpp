#include "decode/gate.h"

#include <algorithm>

namespace sb {

bool SpecGate::allows(RoundKind source) const {
    if (!enabled_) return true;
    return source != RoundKind::plain && warmup_left_ <= 0 && track(source).paused_for <= 0;
}

double SpecGate::spec_ms_per_token() const {
    if (lookup_.avg < 0) return early_exit_.avg;
    if (early_exit_.avg < 0) return lookup_.avg;
    return std::min(lookup_.avg, early_exit_.avg);
}

void SpecGate::record(RoundKind kind, double ms, int n_emitted) {
    if (n_emitted <= 0) return;
    const double per_token = ms / n_emitted;
    // a paused source's pause counts the rounds of any other kind
    const Track * own = kind == RoundKind::plain ? nullptr : &track(kind);
    for (Track * t : { &lookup_, &early_exit_ })
        if (t != own && t->paused_for > 0 && --t->paused_for == 0) t->probing = true;
    if (kind == RoundKind::plain) {
        plain_ = plain_ < 0 ? per_token : smoothing_ * per_token + (1.0 - smoothing_) * plain_;
        stats_.plain_rounds++;
        if (warmup_left_ > 0) --warmup_left_;
        return;
    }
    stats_.spec_rounds++;
    (kind == RoundKind::lookup ? stats_.lookup_rounds : stats_.early_exit_rounds)++;
    judge(track(kind), per_token);
}

void SpecGate::judge(Track & t, double per_token) {
    if (t.probing) {
        // a probe is judged on its own round: the average still remembers why we paused
        stats_.probes++;
        t.probing = false;
        t.avg = per_token;
    } else {
        t.avg = t.avg < 0 ? per_token : smoothing_ * per_token + (1.0 - smoothing_) * t.avg;
    }
    if (!enabled_ || plain_ < 0) return;
    if (t.avg > plain_ * (1.0 - margin_)) {  // behind: pause this source, longer each time in a row
        stats_.switch_offs++;
        t.paused_for = t.backoff;
        t.backoff = std::min(t.backoff * 2, kMaxBackoff);
    } else {
        t.backoff = kMinBackoff;
    }
}

} // namespace sb
