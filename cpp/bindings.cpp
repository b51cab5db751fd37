// Python bindings: a thin layer over sb::Session. Logic lives in C++ or Python.
#include "kernels/testing.h"
#include "profile/bandwidth.h"
#include "profile/cost.h"
#include "session.h"
#include "speculation/ngram.h"

#include <algorithm>
#include <sys/stat.h>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

namespace nb = nanobind;
using namespace nb::literals;
using sb::Session;

static nb::dict result_dict(const sb::GenerateResult & r, size_t since = 0) {
    nb::dict d;
    // tokens[since:] only: streaming asks every round, a full copy would be quadratic
    since = std::min(since, r.tokens.size());
    d["tokens"] = std::vector<int32_t>(r.tokens.begin() + since, r.tokens.end());
    d["n_tokens"] = r.tokens.size();
    d["finish_reason"] = r.finish_reason;
    d["n_prompt"] = r.n_prompt;
    d["n_prompt_reused"] = r.n_prompt_reused;
    d["prompt_ms"] = r.prompt_ms;
    d["decode_ms"] = r.decode_ms;
    d["rounds"] = r.rounds;
    return d;
}

static nb::dict gate_stats_dict(const sb::SpecGate & g) {
    nb::dict d;
    d["gate_spec_rounds"] = g.stats().spec_rounds;
    d["gate_plain_rounds"] = g.stats().plain_rounds;
    d["gate_switch_offs"] = g.stats().switch_offs;
    d["gate_probes"] = g.stats().probes;
    d["gate_spec_ms_per_token"] = g.spec_ms_per_token();
    d["gate_plain_ms_per_token"] = g.plain_ms_per_token();
    return d;
}

static nb::dict spec_stats_dict(const sb::SpecStats & st) {
    nb::dict d;
    d["rounds"] = st.rounds;
    d["draft_tokens"] = st.draft_tokens;
    d["accepted_tokens"] = st.accepted_tokens;
    d["emitted_tokens"] = st.emitted_tokens;
    d["exit_checks"] = st.exit_checks;
    d["layer_evals"] = st.layer_evals;
    d["layer_evals_committed"] = st.layer_evals_committed;
    d["layer_evals_rejected"] = st.layer_evals_rejected;
    d["stops_d_max"] = st.stops_d_max;
    d["stops_w_max"] = st.stops_w_max;
    d["stops_limit"] = st.stops_limit;
    d["rounds_all_accepted"] = st.rounds_all_accepted;
    d["exit_depth_hist"] = st.exit_depth_hist;
    d["ngram_rounds"] = st.ngram_rounds;
    d["ngram_accepted"] = st.ngram_accepted;
    d["draft_ms"] = st.draft_ms;
    d["verify_ms"] = st.verify_ms;
    return d;
}

static sb::GenerateParams gen_params(const Session & s, int max_tokens, float temperature, int top_k, float top_p, float min_p,
                                     uint64_t seed, std::vector<std::string> stop, bool specbound,
                                     int penalty_last_n, float repeat_penalty, float frequency_penalty,
                                     float presence_penalty, bool keep_logits = false) {
    sb::GenerateParams g;
    g.keep_logits = keep_logits;
    g.max_tokens = max_tokens;
    g.sampling = { temperature, top_k, top_p, min_p, seed, penalty_last_n, repeat_penalty, frequency_penalty,
                   presence_penalty };
    g.stop = std::move(stop);
    g.specbound = specbound;
    g.spec = s.spec;
    return g;
}

// a float vector as a 2-d numpy array that owns it
static nb::ndarray<nb::numpy, float, nb::ndim<2>> numpy_2d(std::vector<float> && data, size_t rows, size_t cols) {
    auto * v = new std::vector<float>(std::move(data));
    nb::capsule owner(v, [](void * p) noexcept { delete (std::vector<float> *) p; });
    size_t shape[2] = { rows, cols };
    return nb::ndarray<nb::numpy, float, nb::ndim<2>>(v->data(), 2, shape, owner);
}

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

// The constraints of one generation (sample/sampler.h), built with the GIL held.
static std::shared_ptr<sb::Constraints> make_constraints(const Session & s, const std::optional<std::string> & grammar,
                                                         const std::string & grammar_root,
                                                         const std::vector<std::pair<int32_t, float>> & logit_bias,
                                                         const nb::object & processor, float typical_p, int mirostat,
                                                         float mirostat_tau, float mirostat_eta) {
    if (!grammar && logit_bias.empty() && processor.is_none() && typical_p >= 1.0f && mirostat == 0) return nullptr;
    auto c = std::make_shared<sb::Constraints>();
    const int n_vocab = s.engine.hparams().n_vocab;
    for (const auto & [id, bias] : logit_bias)
        if (id < 0 || id >= n_vocab) throw std::invalid_argument("logit_bias token id out of range: " + std::to_string(id));
    c->logit_bias = logit_bias;
    if (grammar) {
        c->grammar.reset(llama_sampler_init_grammar(s.vocab.handle(), grammar->c_str(), grammar_root.c_str()));
        if (!c->grammar) throw std::invalid_argument("libllama could not parse the grammar (root rule '" + grammar_root + "')");
    }
    if (!processor.is_none()) c->processor = call_active_processor;  // the callable comes with each call
    c->typical_p = typical_p;
    c->mirostat = mirostat;
    c->mirostat_tau = mirostat_tau;
    c->mirostat_eta = mirostat_eta;
    c->mirostat_mu = 2.0f * mirostat_tau;  // llama.cpp's starting value
    return c;
}

NB_MODULE(_core, m) {
    m.doc() = "specbound_cpp engine (C++ over llama-cpp-python's ggml)";

    m.def("read_bandwidth_gbs",
          [](size_t bytes, int n_threads, int reps) {
              nb::gil_scoped_release nogil;
              return sb::read_bandwidth_gbs(bytes, n_threads, reps);
          },
          "bytes"_a, "n_threads"_a = 2, "reps"_a = 3);

    // kernel tests: synthetic weights quantized by ggml, one matmul through a path
    m.def("kernel_quantize",
          [](const std::string & type, nb::ndarray<const float, nb::ndim<2>, nb::c_contig> w) {
              std::vector<uint8_t> q = sb::kernels::quantize_rows(sb::kernels::type_from_name(type), w.data(),
                                                                  (int64_t) w.shape(0), (int64_t) w.shape(1));
              return nb::bytes((const char *) q.data(), q.size());
          },
          "type"_a, "w"_a);
    m.def("kernel_matmul",
          [](const std::string & type, nb::bytes w, int64_t rows, nb::ndarray<const float, nb::ndim<2>, nb::c_contig> x,
             const std::string & path, int n_threads) {
              const ggml_type t = sb::kernels::type_from_name(type);
              const int64_t n = (int64_t) x.shape(0), k = (int64_t) x.shape(1);
              if (w.size() != ggml_row_size(t, k) * (size_t) rows) throw std::invalid_argument("weight bytes do not match rows x k");
              std::vector<float> out = sb::kernels::matmul(t, (const uint8_t *) w.c_str(), rows, k, x.data(), n, path, n_threads);
              return numpy_2d(std::move(out), (size_t) n, (size_t) rows);
          },
          "type"_a, "w"_a, "rows"_a, "x"_a, "path"_a, "n_threads"_a = 1);

    m.def("ngram_draft", &sb::ngram_draft, "ctx"_a, "n_min"_a, "n_max"_a, "max_draft"_a);

    // the online gate alone, for its tests (the decoder owns one per generation)
    nb::class_<sb::SpecGate>(m, "SpecGate")
        .def(nb::init<bool, double>(), "enabled"_a = true, "smoothing"_a = 0.3)
        .def("want_spec", &sb::SpecGate::want_spec)
        .def("record", &sb::SpecGate::record, "spec"_a, "ms"_a, "n_emitted"_a)
        .def_prop_ro("spec_ms_per_token", &sb::SpecGate::spec_ms_per_token)
        .def_prop_ro("plain_ms_per_token", &sb::SpecGate::plain_ms_per_token)
        .def_prop_ro("stats", [](const sb::SpecGate & g) { return gate_stats_dict(g); });

    nb::class_<Session>(m, "Session")
        .def("__init__",
             [](Session * s, const std::string & path, int n_ctx, int n_batch, int n_threads, int n_threads_batch,
                int n_gpu_layers, bool verbose) {
                 struct stat st;
                 if (::stat(path.c_str(), &st) != 0) {
                     PyErr_SetString(PyExc_FileNotFoundError, ("model file not found: " + path).c_str());
                     throw nb::python_error();
                 }
                 if (S_ISDIR(st.st_mode)) throw std::invalid_argument("model path is a directory, not a GGUF file: " + path);
                 sb::SessionParams p;
                 p.engine = { n_ctx, n_threads, n_threads_batch, n_gpu_layers };
                 p.n_batch = n_batch;
                 p.verbose = verbose;
                 nb::gil_scoped_release nogil;
                 new (s) Session(path, p);
             },
             "path"_a, "n_ctx"_a, "n_batch"_a, "n_threads"_a, "n_threads_batch"_a, "n_gpu_layers"_a, "verbose"_a)
        .def("tokenize",
             [](Session & s, nb::bytes text, bool add_special, bool parse_special) {
                 return s.vocab.tokenize(std::string(text.c_str(), text.size()), add_special, parse_special);
             })
        .def("detokenize",
             [](Session & s, const std::vector<int32_t> & toks, bool special) {
                 std::string t = s.vocab.detokenize(toks, special);
                 return nb::bytes(t.data(), t.size());
             })
        .def("token_piece",
             [](Session & s, int32_t tok, bool special) {
                 std::string t = s.vocab.piece(tok, special);
                 return nb::bytes(t.data(), t.size());
             })
        .def_prop_ro("n_vocab", [](Session & s) { return s.engine.hparams().n_vocab; })
        .def_prop_ro("n_ctx", [](Session & s) { return s.engine.n_ctx(); })
        .def_prop_ro("n_layer", [](Session & s) { return s.engine.hparams().n_layer; })
        .def_prop_ro("n_embd", [](Session & s) { return s.engine.hparams().n_embd; })
        .def_prop_ro("n_ff", [](Session & s) { return s.engine.hparams().n_ff; })
        .def_prop_ro("n_head", [](Session & s) { return s.engine.hparams().n_head; })
        .def_prop_ro("n_head_kv", [](Session & s) { return s.engine.hparams().n_head_kv; })
        .def_prop_ro("head_dim", [](Session & s) { return s.engine.hparams().head_dim; })
        .def_prop_ro("arch", [](Session & s) { return s.engine.hparams().arch_name; })
        .def_prop_ro("token_bos", [](Session & s) { return s.vocab.bos(); })
        .def_prop_ro("token_eos", [](Session & s) { return s.vocab.eos(); })
        .def_prop_ro("add_bos", [](Session & s) { return s.vocab.add_bos(); })
        .def("is_eog", [](Session & s, int32_t t) { return s.vocab.is_eog(t); })
        .def_prop_ro("chat_template", [](Session & s) { return s.vocab.chat_template(); })
        .def("metadata", [](Session & s) { return s.vocab.metadata(); })
        .def("history", [](Session & s) { return s.gen.history(); })
        .def("reset", [](Session & s) { s.gen.reset(); })
        .def("release_constraints", [](Session & s) { s.gen.release_constraints(); })
        .def("generate",
             [](Session & s, const std::vector<int32_t> & prompt, int max_tokens, float temperature, int top_k,
                float top_p, float min_p, uint64_t seed, std::vector<std::string> stop, bool specbound,
                int penalty_last_n, float repeat_penalty, float frequency_penalty, float presence_penalty) {
                 auto g = gen_params(s, max_tokens, temperature, top_k, top_p, min_p, seed, std::move(stop), specbound,
                                     penalty_last_n, repeat_penalty, frequency_penalty, presence_penalty);
                 sb::GenerateResult r;
                 {
                     nb::gil_scoped_release nogil;
                     // Ctrl-C: check for pending signals once per round
                     r = s.gen.generate(prompt, g, [](const std::vector<int32_t> &) {
                         nb::gil_scoped_acquire gil;
                         return PyErr_CheckSignals() == 0;
                     });
                 }
                 if (PyErr_Occurred()) throw nb::python_error();
                 return result_dict(r);
             },
             "prompt"_a, "max_tokens"_a, "temperature"_a, "top_k"_a, "top_p"_a, "min_p"_a, "seed"_a, "stop"_a,
             "specbound"_a, "penalty_last_n"_a = 64, "repeat_penalty"_a = 1.0f, "frequency_penalty"_a = 0.0f,
             "presence_penalty"_a = 0.0f)
        .def("begin",
             [](Session & s, const std::vector<int32_t> & prompt, int max_tokens, float temperature, int top_k,
                float top_p, float min_p, uint64_t seed, std::vector<std::string> stop, bool specbound,
                int penalty_last_n, float repeat_penalty, float frequency_penalty, float presence_penalty,
                bool keep_logits, const std::optional<std::string> & grammar, const std::string & grammar_root,
                const std::vector<std::pair<int32_t, float>> & logit_bias, nb::object processor, float typical_p,
                int mirostat, float mirostat_tau, float mirostat_eta, bool spec_gate) {
                 auto g = gen_params(s, max_tokens, temperature, top_k, top_p, min_p, seed, std::move(stop), specbound,
                                     penalty_last_n, repeat_penalty, frequency_penalty, presence_penalty, keep_logits);
                 g.spec_gate = spec_gate;
                 g.sampling.constraints = make_constraints(s, grammar, grammar_root, logit_bias, processor,
                                                           typical_p, mirostat, mirostat_tau, mirostat_eta);
                 ProcessorScope scope(processor);
                 nb::gil_scoped_release nogil;
                 s.gen.begin(prompt, g);
             },
             "prompt"_a, "max_tokens"_a, "temperature"_a, "top_k"_a, "top_p"_a, "min_p"_a, "seed"_a, "stop"_a,
             "specbound"_a, "penalty_last_n"_a = 64, "repeat_penalty"_a = 1.0f, "frequency_penalty"_a = 0.0f,
             "presence_penalty"_a = 0.0f, "keep_logits"_a = false, "grammar"_a = nb::none(),
             "grammar_root"_a = "root", "logit_bias"_a = std::vector<std::pair<int32_t, float>>(),
             "processor"_a = nb::none(), "typical_p"_a = 1.0f, "mirostat"_a = 0, "mirostat_tau"_a = 5.0f,
             "mirostat_eta"_a = 0.1f, "spec_gate"_a = false)
        .def("step",
             [](Session & s, nb::object processor) {
                 // processor: the one passed to begin() (borrowed for this call only)
                 ProcessorScope scope(processor);
                 nb::gil_scoped_release nogil;
                 return s.gen.step();
             },
             "processor"_a = nb::none())
        .def("result", [](Session & s, size_t since) { return result_dict(s.gen.result(), since); }, "since"_a = 0)
        .def("result_logits",
             [](Session & s, size_t since) {
                 // [emitted tokens, n_vocab]: the rows kept by a generation begun with keep_logits,
                 // from row `since` on (a stream reads the new ones only)
                 const sb::GenerateResult & r = s.gen.result();
                 const size_t n_vocab = (size_t) s.engine.hparams().n_vocab;
                 const size_t n = std::min(r.tokens.size(), r.logits.size() / n_vocab);  // a dropped EOG keeps its row
                 since = std::min(since, n);
                 return numpy_2d(std::vector<float>(r.logits.begin() + since * n_vocab, r.logits.begin() + n * n_vocab),
                                 n - since, n_vocab);
             },
             "since"_a = 0)
        .def("spec_stats", [](Session & s) {
            nb::dict d = spec_stats_dict(s.gen.spec_stats());
            d.update(gate_stats_dict(s.gen.gate()));
            return d;
        })
        .def("set_spec",
             [](Session & s, float alpha, float tau, std::vector<int> exit_layers, int d_max, int w_max, int ngram) {
                 s.spec = { alpha, tau, std::move(exit_layers), d_max, w_max, ngram };
             },
             "alpha"_a, "tau"_a, "exit_layers"_a, "d_max"_a, "w_max"_a, "ngram"_a = 0)
        .def("get_spec",
             [](Session & s) {
                 nb::dict d;
                 d["alpha"] = s.spec.alpha;
                 d["tau"] = s.spec.tau;
                 d["exit_layers"] = s.spec.exit_layers;
                 d["d_max"] = s.spec.d_max;
                 d["w_max"] = s.spec.w_max;
                 d["ngram"] = s.spec.ngram;
                 return d;
             })
        .def("set_candidates", [](Session & s, const std::vector<int32_t> & ids) { s.engine.set_candidates(ids); })
        .def("candidates", [](Session & s) { return s.engine.candidates(); })
        .def("kernels", [](Session & s) { return s.engine.kernel_report(); })
        .def("devices", [](Session & s) { return s.engine.device_report(); })
        .def_prop_ro("debug_noninvariant", [](Session & s) { return s.engine.debug_noninvariant(); })
        .def_prop_ro("decode_weight_bytes", [](Session & s) { return s.engine.decode_weight_bytes(); })
        .def("probe_matmul",
             [](Session & s, const std::string & name, nb::ndarray<const float, nb::ndim<2>, nb::c_contig> x,
                const std::string & path, int n_threads, int64_t n_rows) {
                 const int64_t n = (int64_t) x.shape(0);
                 std::vector<float> out;
                 {
                     nb::gil_scoped_release nogil;
                     out = s.engine.probe_matmul(name, x.data(), n, (int64_t) x.shape(1), path, n_threads, n_rows);
                 }
                 const size_t rows = out.size() / (size_t) n;
                 return numpy_2d(std::move(out), (size_t) n, rows);
             },
             "name"_a, "x"_a, "path"_a, "n_threads"_a = 2, "n_rows"_a = 0)
        .def("exit_logits",
             [](Session & s, const std::vector<int32_t> & tokens, int n_past, const std::vector<int> & layers) {
                 // teacher-forced exit-head logits [layer, token, candidate] (calibration)
                 auto * v = new std::vector<float>();
                 {
                     nb::gil_scoped_release nogil;
                     s.gen.exit_logits(tokens, n_past, layers, *v);
                 }
                 nb::capsule owner(v, [](void * p) noexcept { delete (std::vector<float> *) p; });
                 size_t shape[3] = { layers.size(), tokens.size(), s.engine.candidates().size() };
                 return nb::ndarray<nb::numpy, float, nb::ndim<3>>(v->data(), 3, shape, owner);
             },
             "tokens"_a, "n_past"_a, "layers"_a)
        .def("eval_logits",
             [](Session & s, const std::vector<int32_t> & tokens, int n_past, bool invariant) {
                 std::vector<float> v;
                 {
                     nb::gil_scoped_release nogil;
                     s.gen.eval_logits(tokens, n_past, invariant, v);
                 }
                 return numpy_2d(std::move(v), tokens.size(), (size_t) s.engine.hparams().n_vocab);
             },
             "tokens"_a, "n_past"_a, "invariant"_a)
        .def("time_forward",
             [](Session & s, int n_tokens, int n_past, int enter, int exit, bool logits, bool check, int reps, bool invariant) {
                 nb::gil_scoped_release nogil;
                 return sb::time_forward(s.engine, { n_tokens, n_past, enter, exit, logits, check, reps, invariant });
             },
             "n_tokens"_a, "n_past"_a, "enter"_a, "exit"_a, "logits"_a = false, "check"_a = false, "reps"_a = 5,
             "invariant"_a = true)
        .def("timing", [](Session & s) {
            nb::dict d;
            d["graph_build_ms"] = s.engine.timing.graph_build_ms;
            d["compute_ms"] = s.engine.timing.compute_ms;
            d["n_calls"] = s.engine.timing.n_calls;
            return d;
        });

    // test entry points: speculation and segment planning
    auto sampling = [](float temperature, int top_k, float top_p, float min_p, uint64_t seed, int penalty_last_n,
                       float repeat_penalty, float frequency_penalty, float presence_penalty) {
        return sb::SamplingParams{ temperature, top_k, top_p, min_p, seed, penalty_last_n, repeat_penalty,
                                   frequency_penalty, presence_penalty };
    };
    m.def("accept_drafts",
          [sampling](nb::ndarray<const float, nb::ndim<2>, nb::c_contig> logits, const std::vector<int32_t> & drafts,
                     int64_t first_pos, const std::vector<int32_t> & emitted, float temperature, int top_k, float top_p,
                     float min_p, uint64_t seed, int penalty_last_n, float repeat_penalty, float frequency_penalty,
                     float presence_penalty) {
              if (logits.shape(0) != drafts.size() + 1) throw std::invalid_argument("logits need one row per draft, plus one");
              const int n_vocab = (int) logits.shape(1);
              sb::Sampler sampler(n_vocab);
              std::vector<int32_t> out, scratch;
              const int n_accepted = sb::accept_drafts(sampler, sampling(temperature, top_k, top_p, min_p, seed, penalty_last_n,
                                                                         repeat_penalty, frequency_penalty, presence_penalty),
                                                       logits.data(), n_vocab, drafts, first_pos, emitted, out, scratch);
              nb::dict d;
              d["tokens"] = out;
              d["n_accepted"] = n_accepted;
              return d;
          },
          "logits"_a, "drafts"_a, "first_pos"_a, "emitted"_a, "temperature"_a = 0.0f, "top_k"_a = 40, "top_p"_a = 0.95f,
          "min_p"_a = 0.05f, "seed"_a = 0, "penalty_last_n"_a = 64, "repeat_penalty"_a = 1.0f,
          "frequency_penalty"_a = 0.0f, "presence_penalty"_a = 0.0f);
    m.def("sample_token",
          [sampling](nb::ndarray<const float, nb::ndim<1>, nb::c_contig> logits, int64_t pos,
                     const std::vector<int32_t> & generated, float temperature, int top_k, float top_p, float min_p,
                     uint64_t seed, int penalty_last_n, float repeat_penalty, float frequency_penalty,
                     float presence_penalty) {
              const int n_vocab = (int) logits.shape(0);
              sb::Sampler sampler(n_vocab);
              return sampler.sample(logits.data(), n_vocab,
                                    sampling(temperature, top_k, top_p, min_p, seed, penalty_last_n, repeat_penalty,
                                             frequency_penalty, presence_penalty),
                                    pos, generated.data(), generated.size());
          },
          "logits"_a, "pos"_a, "generated"_a, "temperature"_a = 0.0f, "top_k"_a = 40, "top_p"_a = 0.95f,
          "min_p"_a = 0.05f, "seed"_a = 0, "penalty_last_n"_a = 64, "repeat_penalty"_a = 1.0f,
          "frequency_penalty"_a = 0.0f, "presence_penalty"_a = 0.0f);
    m.def("plan_forward",
          [](const std::vector<std::vector<int>> & rows, int n_layer, int n_ctx, int n_vocab, bool has_candidates,
             bool has_hidden_in) {
              std::vector<sb::Row> in;
              for (const auto & r : rows) {
                  if (r.size() != 6) throw std::invalid_argument("a row is (token, pos, enter, exit, logits, check)");
                  in.push_back({ r[0], r[1], r[2], r[3], r[4] != 0, r[5] != 0 });
              }
              const sb::ForwardPlan plan = sb::plan_forward(in, { n_layer, n_ctx, n_vocab, has_candidates, has_hidden_in });
              nb::list segments, exits;
              for (const sb::SegmentPlan & sp : plan.segments) {
                  nb::dict d;
                  d["begin"] = sp.begin;
                  d["end"] = sp.end;
                  d["joining"] = sp.joining;
                  d["rows"] = sp.rows;
                  segments.append(d);
              }
              for (const sb::ExitPlan & e : plan.exits) {
                  nb::dict d;
                  d["layer"] = e.layer;
                  d["rows"] = e.rows;
                  d["columns"] = e.columns;
                  d["kept"] = e.kept;
                  d["whole"] = e.whole;
                  exits.append(d);
              }
              nb::dict d;
              d["segments"] = segments;
              d["exits"] = exits;
              d["logits_columns"] = plan.logits.columns;
              d["logits_whole"] = plan.logits.whole;
              d["check_columns"] = plan.check.columns;
              d["check_whole"] = plan.check.whole;
              d["reads_hidden"] = plan.reads_hidden;
              return d;
          },
          "rows"_a, "n_layer"_a, "n_ctx"_a = 2048, "n_vocab"_a = 32000, "has_candidates"_a = true,
          "has_hidden_in"_a = true);
}
