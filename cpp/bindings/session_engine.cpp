// Session's view of the engine underneath: exit-head vocabulary, kernels and
// devices, teacher-forced passes, exit maps, timing.
#include "bindings/bindings.h"
#include "profile/cost.h"

// the engine underneath: exit-head vocabulary, kernels and devices, teacher-forced passes, probes
void bind_session_engine(nb::class_<Session> & c) {
    c.def("set_candidates", [](Session & s, const std::vector<int32_t> & ids) { s.engine.set_candidates(ids); })
        .def_prop_ro("candidates", [](Session & s) { return s.engine.candidates(); })
        .def("kernels", [](Session & s) { return s.engine.kernel_report(); })
        .def("devices", [](Session & s) { return s.engine.device_report(); })
        .def_prop_ro("debug_noninvariant", [](Session & s) { return s.engine.debug_noninvariant(); })
        .def_prop_ro("debug_device_path", [](Session & s) { return s.engine.debug_device_path(); })
        .def_prop_ro("decodes_off_cpu", [](Session & s) { return s.engine.decodes_off_cpu(); })
        .def_prop_rw("device_columns", [](Session & s) { return s.engine.device_columns(); },
                     [](Session & s, int n) { s.engine.set_device_columns(n); })
        .def_prop_ro("max_invariant_rows", [](Session & s) { return s.engine.max_invariant_rows(); })
        .def_prop_ro("decode_weight_bytes", [](Session & s) { return s.engine.decode_weight_bytes(); })
        .def_prop_rw("graph_reuse", [](Session & s) { return s.engine.graph_reuse(); },
                     [](Session & s, bool on) { s.engine.set_graph_reuse(on); })
        .def("set_op_timing", [](Session & s, bool on) { s.engine.set_op_timing(on); }, "on"_a)
        .def("op_timing",  // kind -> (count, ms) since set_op_timing(True)
             [](Session & s) {
                 nb::dict d;
                 for (const auto & [kind, k] : s.engine.op_timing().by_kind) d[kind.c_str()] = nb::make_tuple(k.count, k.ms);
                 return d;
             })
        .def("forward_timing",  // where forward()'s time went, summed since the session was made
             [](Session & s) {
                 const sb::Timing & t = s.engine.timing;
                 nb::dict d;
                 d["plan_ms"] = t.plan_ms, d["build_ms"] = t.build_ms, d["compute_ms"] = t.compute_ms;
                 d["read_ms"] = t.read_ms, d["n_calls"] = t.n_calls, d["n_reused"] = t.n_reused;
                 return d;
             });
}

// what calibration, the profile and the tests read through the engine: one
// matmul by a chosen path, teacher-forced exit-head logits and hidden states
void bind_session_probes(nb::class_<Session> & c) {
    c.def("probe_matmul",
             [](Session & s, const std::string & name, nb::ndarray<const float, nb::ndim<2>, nb::c_contig> x,
                const std::string & path, int n_threads, int64_t n_rows) {
                 const int64_t n = (int64_t) x.shape(0);
                 std::vector<float> out;
                 {
                     nb::gil_scoped_release nogil;
                     out = s.engine.probe_matmul(name, x.data(), n, (int64_t) x.shape(1), path, n_threads, n_rows);
                 }
                 const size_t rows = out.size() / (size_t) n;
                 return numpy_from(std::move(out), { (size_t) n, rows });
             },
             "name"_a, "x"_a, "path"_a, "n_threads"_a = 2, "n_rows"_a = 0)
        .def("exit_logits",
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

// exit translators as calibration fits them, teacher-forced logits, timed forwards
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
             "tokens"_a, "n_past"_a, "invariant"_a)
        .def("time_forward",
             [](Session & s, int n_tokens, int n_past, int enter, int exit, bool logits, bool check, int reps, bool invariant) {
                 nb::gil_scoped_release nogil;
                 return sb::time_forward(s.engine, { n_tokens, n_past, enter, exit, logits, check, reps, invariant });
             },
             "n_tokens"_a, "n_past"_a, "enter"_a, "exit"_a, "logits"_a = false, "check"_a = false, "reps"_a = 5,
             "invariant"_a = true);
}
