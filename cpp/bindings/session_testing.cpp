// What the tests, tools/ and the cost probe (costs.py, profile.py) read or
// switch in a Session's engine, and no generation needs: one matmul by a
// chosen path, timed forwards, where forward()'s time went, graph reuse and
// the debug builds' flags. Functions of _core.testing taking the session, so
// that Session itself carries only the API.
#include "bindings/bindings.h"
#include "profile/cost.h"

// one matmul of the model's weight `name` by a chosen path
static void bind_probe_matmul(nb::module_ & t) {
    t.def("probe_matmul",
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
          "session"_a, "name"_a, "x"_a, "path"_a, "n_threads"_a = 2, "n_rows"_a = 0);
}

// timed forwards and the engine's accounts of its time
static void bind_forward_timing(nb::module_ & t) {
    t.def("time_forward",
          [](Session & s, int n_tokens, int n_past, int enter, int exit, bool logits, bool check, int reps, bool invariant) {
              nb::gil_scoped_release nogil;
              return sb::time_forward(s.engine, { n_tokens, n_past, enter, exit, logits, check, reps, invariant });
          },
          "session"_a, "n_tokens"_a, "n_past"_a, "enter"_a, "exit"_a, "logits"_a = false, "check"_a = false,
          "reps"_a = 5, "invariant"_a = true);
    t.def("forward_timing",  // where forward()'s time went, summed since the session was made
          [](Session & s) {
              const sb::Timing & tm = s.engine.timing;
              nb::dict d;
              d["plan_ms"] = tm.plan_ms, d["build_ms"] = tm.build_ms, d["compute_ms"] = tm.compute_ms;
              d["read_ms"] = tm.read_ms, d["n_calls"] = tm.n_calls, d["n_reused"] = tm.n_reused;
              return d;
          },
          "session"_a);
    t.def("set_op_timing", [](Session & s, bool on) { s.engine.set_op_timing(on); }, "session"_a, "on"_a);
    t.def("op_timing",  // kind -> (count, ms) since set_op_timing(session, True)
          [](Session & s) {
              nb::dict d;
              for (const auto & [kind, k] : s.engine.op_timing().by_kind) d[kind.c_str()] = nb::make_tuple(k.count, k.ms);
              return d;
          },
          "session"_a);
}

// graph reuse (on by default; off builds each forward's graph anew) and what the build is
static void bind_engine_switches(nb::module_ & t) {
    t.def("graph_reuse", [](Session & s) { return s.engine.graph_reuse(); }, "session"_a);
    t.def("set_graph_reuse", [](Session & s, bool on) { s.engine.set_graph_reuse(on); }, "session"_a, "on"_a);
    t.def("debug_noninvariant", [](Session & s) { return s.engine.debug_noninvariant(); }, "session"_a);
    t.def("debug_device_path", [](Session & s) { return s.engine.debug_device_path(); }, "session"_a);
    t.def("decode_weight_bytes", [](Session & s) { return s.engine.decode_weight_bytes(); }, "session"_a);
}

void bind_session_testing(nb::module_ & t) {
    bind_probe_matmul(t);
    bind_forward_timing(t);
    bind_engine_switches(t);
}
