// Session's decoding: begin/step/generate, with the request's Python logits
// processor lent to each call, and what a generation left behind.
#include "bindings/bindings.h"

#include <algorithm>

// The logits processor of the begin()/step() call in progress on this thread,
// borrowed from the Python caller for the duration of that call. C++ never
// stores it: a processor whose closure reaches the Llama object (through its
// module's globals, say) would otherwise form a cycle through the engine that
// Python's garbage collector cannot see, and keep the model alive for good.
static thread_local PyObject * active_processor = nullptr;

struct ProcessorScope {
    PyObject * saved;
    explicit ProcessorScope(const nb::object & p) : saved(active_processor) { active_processor = p.is_none() ? nullptr : p.ptr(); }
    ~ProcessorScope() { active_processor = saved; }
};

static void call_active_processor(float * logits, int n, const int32_t * gen, size_t n_gen) {
    nb::gil_scoped_acquire gil;
    if (!active_processor) throw std::logic_error("the generation's logits processor was not passed to this call");
    size_t shape_l[1] = { (size_t) n }, shape_g[1] = { n_gen };
    nb::ndarray<nb::numpy, float, nb::ndim<1>> row(logits, 1, shape_l, nb::handle());
    nb::ndarray<nb::numpy, const int32_t, nb::ndim<1>> ids(gen, 1, shape_g, nb::handle());
    // views, not copies: the callback's edits must land in the engine's row
    nb::handle fn(active_processor);
    fn(nb::cast(ids, nb::rv_policy::reference), nb::cast(row, nb::rv_policy::reference));
}

// the engine's callback for a begin() call's processor argument (None: none)
static sb::ProcessorFn processor_fn(const nb::object & processor) {
    return processor.is_none() ? nullptr : call_active_processor;
}

// decoding: one GenerateParams per generation, begin() then step() until it returns False
void bind_session_decode(nb::class_<Session> & c) {
    c.def_prop_ro("default_spec", &Session::default_spec)
        .def("begin",
             [](Session & s, const std::vector<int32_t> & prompt, const sb::GenerateParams & params, nb::object processor) {
                 ProcessorScope scope(processor);  // borrowed for this call only, as in step()
                 nb::gil_scoped_release nogil;
                 s.begin(prompt, params, processor_fn(processor));
             },
             "prompt"_a, "params"_a, "processor"_a = nb::none())
        .def("step",
             [](Session & s, nb::object processor) {
                 // processor: the one passed to begin() (borrowed for this call only)
                 ProcessorScope scope(processor);
                 nb::gil_scoped_release nogil;
                 return s.gen.step();
             },
             "processor"_a = nb::none())
        .def("generate",
             [](Session & s, const std::vector<int32_t> & prompt, const sb::GenerateParams & params) {
                 sb::GenerateResult r;
                 {
                     nb::gil_scoped_release nogil;
                     // Ctrl-C: check for pending signals once per round
                     r = s.generate(prompt, params, [](const std::vector<int32_t> &) {
                         nb::gil_scoped_acquire gil;
                         return PyErr_CheckSignals() == 0;
                     });
                 }
                 if (PyErr_Occurred()) throw nb::python_error();
                 return r;
             },
             "prompt"_a, "params"_a)
        .def("result", [](Session & s) { return &s.gen.result(); }, nb::rv_policy::reference_internal)
        .def("new_tokens",  // tokens[since:] only: streaming asks every round, a full copy would be quadratic
             [](Session & s, size_t since) {
                 const std::vector<int32_t> & t = s.gen.result().tokens;
                 return std::vector<int32_t>(t.begin() + std::min(since, t.size()), t.end());
             },
             "since"_a = 0)
        .def("result_logits",
             [](Session & s, size_t since) {
                 size_t n_rows = 0;
                 std::vector<float> rows = s.kept_logits(since, n_rows);
                 return numpy_from(std::move(rows), { n_rows, (size_t) s.engine.hparams().n_vocab });
             },
             "since"_a = 0)
        .def("spec_stats", [](Session & s) { return s.gen.spec_stats(); })
        .def("gate_stats", [](Session & s) { return gate_stats_dict(s.gen.speculation()); })
        .def("history", [](Session & s) { return s.gen.history(); })
        .def("reset", [](Session & s) { s.gen.reset(); })  // the cached prefix (not the n-gram pool)
        .def_prop_ro("ngram_pool", [](Session & s) { return pool_dict(s.gen.pool()); })
        .def("reset_ngram_pool", [](Session & s) { s.gen.reset_pool(); })
        .def("set_ngram_pool_bytes", [](Session & s, size_t bytes) { s.gen.set_pool_bytes(bytes); }, "bytes"_a)
        .def("release_constraints", [](Session & s) { s.gen.release_constraints(); });
}
