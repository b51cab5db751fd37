// Session's view of the engine underneath: exit-head vocabulary, kernels and
// devices, teacher-forced passes, exit maps (its probes and timers for the
// tests and tools: session_testing.cpp).
#include "bindings/bindings.h"

// the engine underneath: exit-head vocabulary, kernels and devices
void bind_session_engine(nb::class_<Session> & c) {
    c.def("set_candidates", [](Session & s, const std::vector<int32_t> & ids) { s.engine.set_candidates(ids); })
        .def_prop_ro("candidates", [](Session & s) { return s.engine.candidates(); })
        .def("kernels", [](Session & s) { return s.engine.kernel_report(); })
        .def("devices", [](Session & s) { return s.engine.device_report(); })
        .def_prop_ro("decodes_off_cpu", [](Session & s) { return s.engine.decodes_off_cpu(); })
        .def_prop_ro("broken", [](Session & s) { return s.engine.broken(); })
        .def("release_devices", [](Session & s) { s.engine.release_devices(); })
        .def_prop_rw("device_columns", [](Session & s) { return s.engine.device_columns(); },
                     [](Session & s, int n) { s.engine.set_device_columns(n); })
        .def_prop_ro("max_invariant_rows", [](Session & s) { return s.engine.max_invariant_rows(); });
}

// what calibration and the tests read through the engine: teacher-forced
// exit-head logits and hidden states
void bind_session_probes(nb::class_<Session> & c) {
    c.def("exit_logits",
             [](Session & s, const std::vector<int32_t> & tokens, int n_past, const std::vector<int> & layers) {
                 // teacher-forced exit-head logits [layer, token, candidate] (calibration)
                 std::vector<float> v;
                 {
                     nb::gil_scoped_release nogil;
                     s.gen.teacher_forced(tokens, n_past, layers, &v, nullptr);
                 }
                 return numpy_from(std::move(v), { layers.size(), tokens.size(), s.engine.candidates().size() });
             },
             "tokens"_a, "n_past"_a, "layers"_a)
        .def("hidden_states",
             [](Session & s, const std::vector<int32_t> & tokens, int n_past, const std::vector<int> & layers) {
                 // teacher-forced hidden states [layer, token, n_embd] (fitting exit maps)
                 std::vector<float> v;
                 {
                     nb::gil_scoped_release nogil;
                     s.gen.teacher_forced(tokens, n_past, layers, nullptr, &v);
                 }
                 return numpy_from(std::move(v), { layers.size(), tokens.size(), (size_t) s.engine.hparams().n_embd });
             },
             "tokens"_a, "n_past"_a, "layers"_a);
}

// exit translators as calibration fits them, teacher-forced logits
void bind_session_calibration(nb::class_<Session> & c) {
    c.def("set_exit_map",
             [](Session & s, int layer, nb::ndarray<const float, nb::ndim<2>, nb::c_contig> down,
                nb::ndarray<const float, nb::ndim<2>, nb::c_contig> up, nb::ndarray<const float, nb::ndim<1>, nb::c_contig> bias) {
                 const size_t n_embd = (size_t) s.engine.hparams().n_embd, rank = down.shape(0);
                 if (layer <= 0 || layer >= s.engine.hparams().n_layer) throw std::invalid_argument("exit map layer out of range");
                 if (down.shape(1) != n_embd || up.shape(0) != n_embd || up.shape(1) != rank || bias.shape(0) != n_embd)
                     throw std::invalid_argument("exit map needs down [rank, n_embd], up [n_embd, rank], bias [n_embd]");
                 s.engine.exit_maps().set(layer, (int) n_embd, (int) rank, down.data(), up.data(), bias.data());
             },
             "layer"_a, "down"_a, "up"_a, "bias"_a)
        .def("clear_exit_maps", [](Session & s) { s.engine.exit_maps().clear(); })
        .def_prop_ro("exit_maps", [](Session & s) { return s.engine.exit_maps().ranks(); })  // layer -> rank
        .def("eval_logits",
             [](Session & s, const std::vector<int32_t> & tokens, int n_past, bool invariant) {
                 std::vector<float> v;
                 {
                     nb::gil_scoped_release nogil;
                     s.gen.eval_logits(tokens, n_past, invariant, v);
                 }
                 return numpy_from(std::move(v), { tokens.size(), (size_t) s.engine.hparams().n_vocab });
             },
             "tokens"_a, "n_past"_a, "invariant"_a);
}
