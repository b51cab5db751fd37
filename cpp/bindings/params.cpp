// The parameter structs Python builds, one GenerateParams per request, and
// the rope / YaRN overrides a Session is made with.
#include "bindings/bindings.h"

void bind_params(nb::module_ & m) {
    nb::class_<sb::SamplingParams>(m, "SamplingParams")
        .def(nb::init<>())
        .def_rw("temperature", &sb::SamplingParams::temperature)
        .def_rw("top_k", &sb::SamplingParams::top_k)
        .def_rw("top_p", &sb::SamplingParams::top_p)
        .def_rw("min_p", &sb::SamplingParams::min_p)
        .def_rw("seed", &sb::SamplingParams::seed)
        .def_rw("penalty_last_n", &sb::SamplingParams::penalty_last_n)
        .def_rw("penalty_repeat", &sb::SamplingParams::penalty_repeat)
        .def_rw("penalty_freq", &sb::SamplingParams::penalty_freq)
        .def_rw("penalty_present", &sb::SamplingParams::penalty_present);
    nb::class_<sb::SpecParams>(m, "SpecParams")
        .def(nb::init<>())
        .def_rw("alpha", &sb::SpecParams::alpha)
        .def_rw("tau", &sb::SpecParams::tau)
        .def_rw("exit_layers", &sb::SpecParams::exit_layers)
        .def_rw("d_max", &sb::SpecParams::d_max)
        .def_rw("w_max", &sb::SpecParams::w_max)
        .def_rw("ngram", &sb::SpecParams::ngram)
        .def_rw("exit_decision", &sb::SpecParams::exit_decision)
        .def_rw("tau_step", &sb::SpecParams::tau_step)
        .def_rw("batch_factors", &sb::SpecParams::batch_factors);
    m.def("check_spec_params", &sb::check_spec_params, "spec"_a, "n_layer"_a);  // ValueError unless valid
    nb::class_<sb::ConstraintParams>(m, "ConstraintParams")
        .def(nb::init<>())
        .def_rw("grammar", &sb::ConstraintParams::grammar)
        .def_rw("grammar_root", &sb::ConstraintParams::grammar_root)
        .def_rw("logit_bias", &sb::ConstraintParams::logit_bias)
        .def_rw("typical_p", &sb::ConstraintParams::typical_p)
        .def_rw("mirostat", &sb::ConstraintParams::mirostat)
        .def_rw("mirostat_tau", &sb::ConstraintParams::mirostat_tau)
        .def_rw("mirostat_eta", &sb::ConstraintParams::mirostat_eta);
    nb::class_<sb::GenerateParams>(m, "GenerateParams")
        .def(nb::init<>())
        .def_rw("max_tokens", &sb::GenerateParams::max_tokens)
        .def_rw("sampling", &sb::GenerateParams::sampling)
        .def_rw("stop", &sb::GenerateParams::stop)
        .def_rw("specbound", &sb::GenerateParams::specbound)
        .def_rw("spec", &sb::GenerateParams::spec)
        .def_rw("keep_logits", &sb::GenerateParams::keep_logits)
        .def_rw("spec_gate", &sb::GenerateParams::spec_gate)
        .def_rw("constraints", &sb::GenerateParams::constraints);
}

// llama-cpp-python's rope / YaRN options, as the engine takes them
void bind_rope(nb::module_ & m) {
    nb::class_<sb::RopeOverrides>(m, "RopeOverrides")
        .def(nb::init<>())
        .def_rw("scaling_type", &sb::RopeOverrides::scaling_type)
        .def_rw("freq_base", &sb::RopeOverrides::freq_base)
        .def_rw("freq_scale", &sb::RopeOverrides::freq_scale)
        .def_rw("ext_factor", &sb::RopeOverrides::ext_factor)
        .def_rw("attn_factor", &sb::RopeOverrides::attn_factor)
        .def_rw("beta_fast", &sb::RopeOverrides::beta_fast)
        .def_rw("beta_slow", &sb::RopeOverrides::beta_slow)
        .def_rw("orig_ctx", &sb::RopeOverrides::orig_ctx);
}
