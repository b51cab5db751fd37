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
    // one attribute per field of SB_SPEC_PARAMS (speculation/params.h), and their names
    nb::class_<sb::SpecParams> spec(m, "SpecParams");
    spec.def(nb::init<>());
#define SB_BIND_SPEC_FIELD(type, name, init, valid, rule, doc) spec.def_rw(#name, &sb::SpecParams::name, doc);
    SB_SPEC_PARAMS(SB_BIND_SPEC_FIELD)
#undef SB_BIND_SPEC_FIELD
    spec.attr("fields") = names_tuple({ SB_SPEC_PARAMS(SB_FIELD_NAME) });
    // each field's C++ type as written in the list: params.py converts values by it
    nb::dict types;
#define SB_SPEC_FIELD_TYPE(type, name, ...) types[#name] = #type;
    SB_SPEC_PARAMS(SB_SPEC_FIELD_TYPE)
#undef SB_SPEC_FIELD_TYPE
    spec.attr("field_types") = types;
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

// llama-cpp-python's kv_overrides, one entry per key (model/kv_override.h)
void bind_kv_override(nb::module_ & m) {
    nb::class_<sb::KvOverride>(m, "KvOverride")
        .def(nb::init<>())
        .def_rw("key", &sb::KvOverride::key)
        .def_prop_rw("tag", [](const sb::KvOverride & o) { return (int) o.tag; },
                     [](sb::KvOverride & o, int t) {
                         if (t < 0 || t > 3) throw std::invalid_argument("tag must be 0-3 (int, float, bool, str)");
                         o.tag = (sb::KvOverride::Tag) t;
                     })
        .def_rw("i", &sb::KvOverride::i)
        .def_rw("f", &sb::KvOverride::f)
        .def_rw("b", &sb::KvOverride::b)
        .def_rw("s", &sb::KvOverride::s);
}
