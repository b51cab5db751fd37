#include "profile/cost.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <stdexcept>
#include <vector>

namespace sb {

double time_forward(Engine & engine, const CostProbe & p) {
    const HParams & hp = engine.hparams();
    if (p.n_tokens <= 0 || p.reps <= 0 || p.enter < 0 || p.exit <= p.enter || p.exit > hp.n_layer)
        throw std::invalid_argument("bad cost probe");
    if (p.n_past < 0 || p.n_past + p.n_tokens > engine.n_ctx()) throw std::invalid_argument("probe outside the context");
    std::vector<Row> rows;
    for (int i = 0; i < p.n_tokens; ++i)
        rows.push_back({ (int32_t) (i % hp.n_vocab), p.n_past + i, p.enter, p.exit, p.logits, p.check });
    std::vector<float> hidden((size_t) p.n_tokens * hp.n_embd, 0.01f);
    std::vector<float> logits(p.logits ? (size_t) p.n_tokens * hp.n_vocab : 0);
    std::vector<float> checks(p.check ? (size_t) p.n_tokens * engine.candidates().size() : 0);
    double best = std::numeric_limits<double>::infinity();
    for (int r = 0; r < p.reps; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        engine.forward(rows, hidden.data(), nullptr, p.logits ? logits.data() : nullptr, p.invariant,
                       p.check ? checks.data() : nullptr);
        best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

} // namespace sb
