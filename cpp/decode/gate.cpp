#include "decode/gate.h"

#include <algorithm>

namespace sb {

bool SpecGate::want_spec() const { return !enabled_ || plain_left_ <= 0; }

void SpecGate::record(bool spec, double ms, int n_emitted) {
    if (n_emitted <= 0) return;
    const double per_token = ms / n_emitted;
    double & avg = spec ? spec_ : plain_;
    avg = avg < 0 ? per_token : smoothing_ * per_token + (1.0 - smoothing_) * avg;
    if (!spec) {
        stats_.plain_rounds++;
        if (plain_left_ > 0 && --plain_left_ == 0) probing_ = spec_ >= 0;  // the next speculative round is a probe
        return;
    }
    stats_.spec_rounds++;
    if (probing_) {
        stats_.probes++;
        probing_ = false;
        // a probe is judged on its own round: the average still remembers why we paused
        spec_ = per_token;
    }
    if (!enabled_ || plain_ < 0) return;
    if (spec_ > plain_) {  // behind: pause, longer each time in a row
        stats_.switch_offs++;
        plain_left_ = backoff_;
        backoff_ = std::min(backoff_ * 2, kMaxBackoff);
    } else {
        backoff_ = kMinBackoff;
    }
}

} // namespace sb
