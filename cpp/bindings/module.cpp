// The nanobind module specbound_cpp._core: a thin layer over sb::Session.
// Logic lives in C++ or Python; each concern's bindings are in their own
// file here (bindings.h lists them). What only the tests, tools/ and the cost
// probe call is in the submodule _core.testing, apart from the API.
#include "bindings/bindings.h"

NB_MODULE(_core, m) {
    m.doc() = "specbound_cpp engine (C++ over llama-cpp-python's ggml)";
    bind_params(m);
    bind_results(m);
    bind_rope(m);
    bind_kv_override(m);
    bind_vocab(m);
    bind_rpc(m);
    nb::class_<Session> session(m, "Session");
    bind_session_model(session);
    bind_session_decode(session);
    bind_session_engine(session);
    bind_session_probes(session);
    bind_session_calibration(session);
    bind_session_embeddings(session);

    nb::module_ testing = m.def_submodule("testing", "entry points for the tests and tools, not the API");
    bind_kernel_tests(testing);
    bind_acceptance_tests(testing);
    bind_segment_plan_tests(testing);
    bind_lookup_length_tests(testing);
    bind_pool_tests(testing);
    bind_exit_feature_tests(testing);
    bind_toy_draft_source(testing);
    bind_gate_tests(testing);
    bind_session_testing(testing);
}
