// The online gate: speculate only while it pays on the text at hand.
//
// A speculative round costs drafting plus a batched deep pass and may emit
// many tokens or one; a plain round costs one token's forward. Which is
// cheaper per emitted token depends on the machine's batch costs and on how
// predictable the text is, and it changes within a request. The gate keeps a
// running average of milliseconds per emitted token for each kind of round,
// runs plain rounds while speculation is behind, and probes speculation again
// after a backoff that doubles each time the probe loses. Both kinds of round
// emit the full model's tokens, so the output never depends on the gate.
#pragma once

#include <cstdint>

namespace sb {

struct GateStats {
    int64_t spec_rounds = 0;   // speculative rounds run
    int64_t plain_rounds = 0;  // plain rounds run instead (while speculation was behind, or to measure)
    int64_t switch_offs = 0;   // times speculation was found behind and paused
    int64_t probes = 0;        // speculative rounds run after a pause
};

class SpecGate {
  public:
    // smoothing: weight of the newest round in each running average
    explicit SpecGate(bool enabled = true, double smoothing = 0.3) : enabled_(enabled), smoothing_(smoothing) {}

    // whether the next round should speculate
    bool want_spec() const;
    // a finished round: its kind, wall time and tokens emitted
    void record(bool spec, double ms, int n_emitted);

    double spec_ms_per_token() const { return spec_; }    // < 0: not measured yet
    double plain_ms_per_token() const { return plain_; }
    const GateStats & stats() const { return stats_; }

    static constexpr int kWarmupPlain = 2;   // plain rounds that price a token before the first speculation
    static constexpr int kMinBackoff = 8;    // plain rounds after speculation first loses
    static constexpr int kMaxBackoff = 256;

  private:
    bool enabled_;
    double smoothing_;
    double spec_ = -1.0, plain_ = -1.0;
    int plain_left_ = kWarmupPlain;
    int backoff_ = kMinBackoff;
    bool probing_ = false;
    GateStats stats_;
};

} // namespace sb
