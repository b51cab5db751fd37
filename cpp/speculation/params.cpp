#include "speculation/params.h"

namespace sb {

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
