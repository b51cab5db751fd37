#include "decode/params.h"

#include "vocab/vocab.h"

#include <cmath>
#include <stdexcept>

namespace sb {

void check_spec_params(const SpecParams & p, int n_layer) {
    check_spec_fields(p);  // each field's own rule (speculation/params.h)
    bool ok = p.d_max >= 0 && p.d_max < n_layer;
    for (size_t i = 0; i < p.exit_layers.size(); ++i)
        ok = ok && p.exit_layers[i] > 0 && p.exit_layers[i] < n_layer && (i == 0 || p.exit_layers[i] > p.exit_layers[i - 1]);
    if (!ok) {
        const std::string L = std::to_string(n_layer);
        throw std::invalid_argument("exit_layers must be ascending layers in (0, " + L + ") and d_max in [0, " + L + ")");
    }
}

std::shared_ptr<Constraints> make_constraints(const ConstraintParams & c, const Vocab & vocab, int n_vocab,
                                              ProcessorFn processor) {
    if (!c.grammar && c.logit_bias.empty() && !processor && c.typical_p >= 1.0f && c.mirostat == 0) return nullptr;
    for (const auto & [id, bias] : c.logit_bias)
        if (id < 0 || id >= n_vocab) throw std::invalid_argument("logit_bias token id out of range: " + std::to_string(id));
    auto out = std::make_shared<Constraints>();
    out->logit_bias = c.logit_bias;
    if (c.grammar) {
        out->grammar.reset(llama_sampler_init_grammar(vocab.handle(), c.grammar->c_str(), c.grammar_root.c_str()));
        if (!out->grammar)
            throw std::invalid_argument("libllama could not parse the grammar (root rule '" + c.grammar_root + "')");
    }
    if (processor) out->processor = processor;
    out->typical_p = c.typical_p;
    out->mirostat = c.mirostat;
    out->mirostat_tau = c.mirostat_tau;
    out->mirostat_eta = c.mirostat_eta;
    out->mirostat_mu = 2.0f * c.mirostat_tau;  // llama.cpp's starting value
    return out;
}

} // namespace sb
