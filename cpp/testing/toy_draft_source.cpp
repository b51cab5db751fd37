// A toy draft source, for the tests only: it proposes the tokens of a fixed
// text, text[j] as the token at position first_pos + j, up to per_round drafts
// a round. It shows what a new source takes: this one file (a class over
// speculation/source.h, and the hook that hands one to the controller), and
// in bindings/ the hook's declaration (bindings.h) and call (module.cpp). Whatever it proposes,
// SpecBound must still emit plain decoding's tokens (tests/test_draft_source.py).
#include "session.h"
#include "speculation/source.h"

#include <algorithm>

#include <nanobind/nanobind.h>
#include <nanobind/stl/vector.h>

namespace nb = nanobind;
using namespace nb::literals;

namespace sb {

class FixedTextSource : public DraftSource {
  public:
    FixedTextSource(std::vector<int32_t> text, int first_pos, int per_round)
        : text_(std::move(text)), first_pos_(first_pos), per_round_(per_round) {}
    const char * name() const override { return "fixed_text"; }
    double prior_acceptance() const override { return 0.5; }

    bool propose(Draft & d, const DraftRequest & r, const SourceLedger &, SpecStats & st) override {
        const int next = d.toks[0].pos + 1 - first_pos_;  // index in text_ of the first draft's position
        const int n = std::min({ per_round_, r.room, (int) text_.size() - next });
        if (next < 0 || n <= 0) return false;
        for (int i = 0; i < n; ++i) d.toks.push_back({ text_[(size_t) (next + i)], d.toks[0].pos + 1 + i, 0 });
        st.draft_tokens += n;
        return true;
    }
    void outcome(const RoundOutcome &, const SpecParams &, SpecStats &) override {}

  private:
    std::vector<int32_t> text_;
    int first_pos_, per_round_;
};

} // namespace sb

void bind_toy_draft_source(nb::module_ & m) {
    m.def("add_fixed_text_source",
          [](sb::Session & s, std::vector<int32_t> text, int first_pos, int per_round) {
              s.gen.add_draft_source(std::make_unique<sb::FixedTextSource>(std::move(text), first_pos, per_round));
          },
          "session"_a, "text"_a, "first_pos"_a, "per_round"_a = 4);
}
