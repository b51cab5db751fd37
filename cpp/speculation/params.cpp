#include "speculation/params.h"

#include "speculation/exit_decision.h"
#include "speculation/ngram_pool.h"

#include <cmath>
#include <stdexcept>

namespace sb {

namespace {

bool all_finite(const std::vector<float> & v) {
    for (float x : v)
        if (!std::isfinite(x)) return false;
    return true;
}

bool all_positive(const std::vector<float> & v) {
    for (float x : v)
        if (!(x > 0)) return false;
    return true;
}

} // namespace

void check_spec_fields(const SpecParams & p) {
#define SB_CHECK_SPEC_FIELD(type, name, init, valid, rule, doc)                                      \
    {                                                                                              \
        [[maybe_unused]] const type & v = p.name;                                                  \
        if (!(valid)) throw std::invalid_argument(std::string("SpecBound needs ") + rule);         \
    }
    SB_SPEC_PARAMS(SB_CHECK_SPEC_FIELD)
#undef SB_CHECK_SPEC_FIELD
}

SpecParams default_spec_params(const HParams & hp) {
    // Without a calibrated profile: what calibration chose on both models
    // measured here (SmolLM2-135M, Qwen2.5-Coder-0.5B): one exit just below the
    // top with a high threshold. On these models the LM head applied before
    // ~70% depth agrees with the full model on under 25% of tokens, so shallow
    // exits cost more than they save; the gain is sharing the LM head.
    SpecParams p;
    if (hp.n_layer > 1) p.exit_layers = { hp.n_layer - 1 };
    p.d_max = p.exit_layers.empty() ? 0 : p.exit_layers.back();
    p.alpha = 0.5f;
    p.tau = 0.9f;
    p.w_max = 6;
    return p;
}

} // namespace sb
