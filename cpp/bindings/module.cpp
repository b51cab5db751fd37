// The nanobind module specbound_cpp._core: a thin layer over sb::Session.
// Logic lives in C++ or Python; each concern's bindings are in their own
// file here (bindings.h lists them).
#include "bindings/bindings.h"

NB_MODULE(_core, m) {
    m.doc() = "specbound_cpp engine (C++ over llama-cpp-python's ggml)";
    bind_params(m);
    bind_results(m);
    bind_kernel_tests(m);
    bind_acceptance_tests(m);
    bind_segment_plan_tests(m);
    bind_lookup_length_tests(m);
    bind_pool_tests(m);
    bind_rope(m);
    bind_exit_feature_tests(m);
    bind_toy_draft_source(m);
    bind_gate_tests(m);
    nb::class_<Session> session(m, "Session");
    bind_session_model(session);
    bind_session_decode(session);
    bind_session_engine(session);
    bind_session_probes(session);
    bind_session_calibration(session);
    bind_session_embeddings(session);
}
