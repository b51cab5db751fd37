// The online gate: speculate only while it pays on the text at hand.
//
// A speculative round costs drafting plus a batched deep pass and may emit
// many tokens or one; a plain round costs one token's forward. Which is
// cheaper per emitted token depends on the machine's batch costs and on how
// predictable the text is, and it changes within a request. The two draft
// sources differ in both: n-gram lookup drafts cost no layers but are only
// as good as the text repeats; early-exit drafts cost shallow layers per
// draft. So the gate keeps a running average of milliseconds per emitted token
// for plain rounds and for the rounds of each source, lets a source draft only
// while its rounds beat plain decoding by a margin, and probes a paused source
// again after a backoff that doubles each time the probe loses. Every round
// emits the full model's tokens, so the output never depends on the gate.
//
// A source's price is the ratio of (decayed) sums, milliseconds over tokens,
// never an average of per-round ratios: a round that emits one token has a
// high ratio, and averaging ratios overprices speculation (Jensen). And it is
// judged only after kJudgeRounds rounds (from the start, or of a probe): one
// round's token count swings from 1 to w + 1, so one round decides nothing.
//
// The gate is one part of the speculation controller (speculation/controller.h),
// which owns one per generation; it knows its sources by number only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sb {

// What a round was: plain, or drafted by source i of the controller's list
// (RoundKind(i + 1)); the built-in sources' kinds are named. A speculative
// round whose drafting found nothing to propose and did no work is plain.
enum class RoundKind { plain = 0, lookup = 1, early_exit = 2 };
inline RoundKind drafted_by(int source) { return (RoundKind) (source + 1); }
inline int source_of(RoundKind k) { return (int) k - 1; }  // -1: plain

struct GateStats {
    int64_t spec_rounds = 0;   // speculative rounds run (any source)
    int64_t plain_rounds = 0;  // plain rounds (to price a token, while speculation was behind, or nothing to draft)
    int64_t switch_offs = 0;   // times a source was found behind and paused
    int64_t probes = 0;        // rounds of a source run after its pause
    std::vector<int64_t> source_rounds;  // of spec_rounds: drafted by each source
};

class SpecGate {
  public:
    // smoothing: weight of the newest round in each running price;
    // margin: how much cheaper per token a source's rounds must be than plain ones;
    // n_sources: the draft sources it prices (the built-in two by default)
    explicit SpecGate(bool enabled = true, double smoothing = 0.2, double margin = kMargin, int n_sources = 2)
        : enabled_(enabled), smoothing_(smoothing), margin_(margin), tracks_((size_t) n_sources) {
        stats_.source_rounds.assign((size_t) n_sources, 0);
    }

    // whether the next round may draft from this source
    bool allows(RoundKind source) const;
    // whether the next round may speculate at all
    bool want_spec() const;
    int n_sources() const { return (int) tracks_.size(); }
    // a finished round: its kind, wall time and tokens emitted
    void record(RoundKind kind, double ms, int n_emitted);

    double plain_ms_per_token() const { return plain_.price(); }  // < 0: not measured yet
    double ms_per_token(RoundKind source) const { return track(source).price.price(); }
    // the better source's price (what the earlier one-source gate reported)
    double spec_ms_per_token() const;
    const GateStats & stats() const { return stats_; }

    static constexpr int kWarmupPlain = 2;   // plain rounds that price a token before the first speculation
    static constexpr int kJudgeRounds = 3;   // a source's rounds (from the start, or of a probe) before a verdict
    static constexpr int kMinBackoff = 8;    // rounds without a source after it first loses
    static constexpr int kMaxBackoff = 256;
    static constexpr double kMargin = 0.03;  // noise in the prices must not keep a losing source on

  private:
    struct Price {  // decayed sums of milliseconds and tokens
        double ms = 0.0, tokens = 0.0;
        void add(double m, int n, double keep) { ms = keep * ms + m, tokens = keep * tokens + n; }
        double price() const { return tokens > 0 ? ms / tokens : -1.0; }
    };
    struct Track {  // one draft source
        Price price;
        int rounds = 0;           // rounds since the start or since its probe began
        int paused_for = 0;       // rounds left before it may draft again
        int backoff = kMinBackoff;
        bool probing = false;     // its rounds are being judged on their own
    };
    Track & track(RoundKind k) { return tracks_.at((size_t) source_of(k)); }
    const Track & track(RoundKind k) const { return tracks_.at((size_t) source_of(k)); }
    void judge(Track & t, double ms, int n_emitted);

    bool enabled_;
    double smoothing_, margin_;
    Price plain_;
    int warmup_left_ = kWarmupPlain;
    std::vector<Track> tracks_;  // per source
    GateStats stats_;
};

} // namespace sb
