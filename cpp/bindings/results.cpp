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

// read-only, one attribute per field of SB_GENERATE_RESULT / SB_SPEC_STATS, and their names
void bind_results(nb::module_ & m) {
    nb::class_<sb::GenerateResult> result(m, "GenerateResult");
#define SB_BIND_RESULT_FIELD(type, name, doc) result.def_ro(#name, &sb::GenerateResult::name, doc);
    SB_GENERATE_RESULT(SB_BIND_RESULT_FIELD)
#undef SB_BIND_RESULT_FIELD
    result.def_prop_ro("n_tokens", [](const sb::GenerateResult & r) { return r.tokens.size(); }, "len(tokens)");
    result.attr("fields") = names_tuple({ SB_GENERATE_RESULT(SB_FIELD_NAME) "n_tokens" });
    nb::class_<sb::SpecStats> stats(m, "SpecStats");
#define SB_BIND_STATS_FIELD(type, name, doc) stats.def_ro(#name, &sb::SpecStats::name, doc);
    SB_SPEC_STATS(SB_BIND_STATS_FIELD)
#undef SB_BIND_STATS_FIELD
    stats.attr("fields") = names_tuple({ SB_SPEC_STATS(SB_FIELD_NAME) });
}
