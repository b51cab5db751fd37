#include "speculation/deep_pass.h"

namespace sb {

void deep_pass(Engine & engine, Draft & d, std::vector<float> & logits, SpecStats & st) {
    const int L = engine.hparams().n_layer;
    std::vector<Row> rows;
    for (const RoundToken & t : d.toks) rows.push_back({ t.id, t.pos, t.depth, L, true, false });
    logits.resize(d.toks.size() * (size_t) engine.hparams().n_vocab);
    engine.forward(rows, d.hidden.data(), nullptr, logits.data(), true);
    for (RoundToken & t : d.toks) {
        st.layer_evals += L - t.depth;
        t.evals += L - t.depth;
        t.depth = L;
    }
}

} // namespace sb
