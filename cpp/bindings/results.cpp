// The result structs a generation fills (GenerateResult, SpecStats) and the
// online gate's statistics as a dict.
#include "bindings/bindings.h"
#include "speculation/controller.h"
#include "speculation/gate.h"

// the gate's statistics, per source by the sources' names
nb::dict gate_stats_dict(const sb::SpecGate & g, const std::vector<std::string> & names) {
    nb::dict d;
    d["gate_spec_rounds"] = g.stats().spec_rounds;
    d["gate_plain_rounds"] = g.stats().plain_rounds;
    d["gate_switch_offs"] = g.stats().switch_offs;
    d["gate_probes"] = g.stats().probes;
    for (size_t i = 0; i < names.size(); ++i) d[("gate_" + names[i] + "_rounds").c_str()] = g.stats().source_rounds[i];
    d["gate_spec_ms_per_token"] = g.spec_ms_per_token();
    d["gate_plain_ms_per_token"] = g.plain_ms_per_token();
    for (size_t i = 0; i < names.size(); ++i)
        d[("gate_" + names[i] + "_ms_per_token").c_str()] = g.ms_per_token(sb::drafted_by((int) i));
    return d;
}

nb::dict gate_stats_dict(const sb::SpecController & c) {
    std::vector<std::string> names;
    for (int i = 0; i < c.n_sources(); ++i) names.push_back(c.source_name(i));
    return gate_stats_dict(c.gate(), names);
}

void bind_results(nb::module_ & m) {
    nb::class_<sb::GenerateResult>(m, "GenerateResult")
        .def_ro("tokens", &sb::GenerateResult::tokens)
        .def_prop_ro("n_tokens", [](const sb::GenerateResult & r) { return r.tokens.size(); })
        .def_ro("finish_reason", &sb::GenerateResult::finish_reason)
        .def_ro("n_prompt", &sb::GenerateResult::n_prompt)
        .def_ro("n_prompt_reused", &sb::GenerateResult::n_prompt_reused)
        .def_ro("prompt_ms", &sb::GenerateResult::prompt_ms)
        .def_ro("decode_ms", &sb::GenerateResult::decode_ms)
        .def_ro("rounds", &sb::GenerateResult::rounds);
    nb::class_<sb::SpecStats>(m, "SpecStats")
        .def_ro("rounds", &sb::SpecStats::rounds)
        .def_ro("draft_tokens", &sb::SpecStats::draft_tokens)
        .def_ro("accepted_tokens", &sb::SpecStats::accepted_tokens)
        .def_ro("emitted_tokens", &sb::SpecStats::emitted_tokens)
        .def_ro("exit_checks", &sb::SpecStats::exit_checks)
        .def_ro("layer_evals", &sb::SpecStats::layer_evals)
        .def_ro("layer_evals_committed", &sb::SpecStats::layer_evals_committed)
        .def_ro("layer_evals_rejected", &sb::SpecStats::layer_evals_rejected)
        .def_ro("stops_d_max", &sb::SpecStats::stops_d_max)
        .def_ro("stops_w_max", &sb::SpecStats::stops_w_max)
        .def_ro("stops_limit", &sb::SpecStats::stops_limit)
        .def_ro("rounds_all_accepted", &sb::SpecStats::rounds_all_accepted)
        .def_ro("exit_depth_hist", &sb::SpecStats::exit_depth_hist)
        .def_ro("ngram_rounds", &sb::SpecStats::ngram_rounds)
        .def_ro("ngram_accepted", &sb::SpecStats::ngram_accepted)
        .def_ro("lookup_key_drafts", &sb::SpecStats::lookup_key_drafts)
        .def_ro("lookup_key_accepted", &sb::SpecStats::lookup_key_accepted)
        .def_ro("lookup_key_rejected", &sb::SpecStats::lookup_key_rejected)
        .def_ro("exit_vocab_added", &sb::SpecStats::exit_vocab_added)
        .def_ro("exit_rounds", &sb::SpecStats::exit_rounds)
        .def_ro("exit_accepted", &sb::SpecStats::exit_accepted)
        .def_ro("exit_tau", &sb::SpecStats::exit_tau)
        .def_ro("draft_ms", &sb::SpecStats::draft_ms)
        .def_ro("verify_ms", &sb::SpecStats::verify_ms);
}
