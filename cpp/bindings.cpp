// Python bindings: a thin layer over sb::Session. Logic lives in C++ or Python.
#include "kernels/testing.h"
#include "profile/bandwidth.h"
#include "profile/cost.h"
#include "session.h"
#include "speculation/exit_decision.h"
#include "speculation/pricing.h"
#include "speculation/ngram_pool.h"
#include "decode/embeddings.h"

#include <algorithm>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

namespace nb = nanobind;
using namespace nb::literals;
using sb::Session;

// the gate's statistics, per source by the sources' names
static nb::dict gate_stats_dict(const sb::SpecGate & g, const std::vector<std::string> & names) {
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

static nb::dict gate_stats_dict(const sb::SpecController & c) {
    std::vector<std::string> names;
    for (int i = 0; i < c.n_sources(); ++i) names.push_back(c.source_name(i));
    return gate_stats_dict(c.gate(), names);
}

// a float vector as a numpy array that owns it (shape: its dimensions, product == data.size())
template <size_t N>
static nb::ndarray<nb::numpy, float, nb::ndim<N>> numpy_from(std::vector<float> && data, const size_t (&shape)[N]) {
    auto * v = new std::vector<float>(std::move(data));
    nb::capsule owner(v, [](void * p) noexcept { delete (std::vector<float> *) p; });
    return nb::ndarray<nb::numpy, float, nb::ndim<N>>(v->data(), N, shape, owner);
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

// the engine's callback for a begin() call's processor argument (None: none)
static sb::ProcessorFn processor_fn(const nb::object & processor) {
    return processor.is_none() ? nullptr : call_active_processor;
}

static void bind_params(nb::module_ & m) {
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
    nb::class_<sb::SpecParams>(m, "SpecParams")
        .def(nb::init<>())
        .def_rw("alpha", &sb::SpecParams::alpha)
        .def_rw("tau", &sb::SpecParams::tau)
        .def_rw("exit_layers", &sb::SpecParams::exit_layers)
        .def_rw("d_max", &sb::SpecParams::d_max)
        .def_rw("w_max", &sb::SpecParams::w_max)
        .def_rw("ngram", &sb::SpecParams::ngram)
        .def_rw("exit_decision", &sb::SpecParams::exit_decision)
        .def_rw("tau_step", &sb::SpecParams::tau_step)
        .def_rw("batch_factors", &sb::SpecParams::batch_factors);
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

static void bind_results(nb::module_ & m) {
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
    // the online gate alone, for its tests (the decoder owns one per generation)
    nb::enum_<sb::RoundKind>(m, "RoundKind")
        .value("plain", sb::RoundKind::plain)
        .value("lookup", sb::RoundKind::lookup)
        .value("early_exit", sb::RoundKind::early_exit);
    nb::class_<sb::SpecGate>(m, "SpecGate")
        .def(nb::init<bool, double, double>(), "enabled"_a = true, "smoothing"_a = 0.2, "margin"_a = sb::SpecGate::kMargin)
        .def_ro_static("kJudgeRounds", &sb::SpecGate::kJudgeRounds)
        .def("want_spec", &sb::SpecGate::want_spec)
        .def("allows", &sb::SpecGate::allows, "source"_a)
        .def("record", &sb::SpecGate::record, "kind"_a, "ms"_a, "n_emitted"_a)
        .def("ms_per_token", &sb::SpecGate::ms_per_token, "source"_a)
        .def_prop_ro("spec_ms_per_token", &sb::SpecGate::spec_ms_per_token)
        .def_prop_ro("plain_ms_per_token", &sb::SpecGate::plain_ms_per_token)
        .def_prop_ro("stats", [](const sb::SpecGate & g) {
            return gate_stats_dict(g, { "lookup", "early_exit" });  // the built-in sources
        });
}

static void bind_kernel_tests(nb::module_ & m) {
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
              return numpy_from(std::move(out), { (size_t) n, (size_t) rows });
          },
          "type"_a, "w"_a, "rows"_a, "x"_a, "path"_a, "n_threads"_a = 1);
}

static nb::dict pool_dict(const sb::NgramPool & p) {
    nb::dict d;
    d["bytes"] = p.bytes();
    d["slots"] = p.slots();
    d["used"] = p.used();
    d["fed"] = p.fed();
    d["allocated"] = p.allocated();
    return d;
}

// the n-gram pool alone, for its tests (a session owns one, fed by its generations)
static void bind_pool_tests(nb::module_ & m) {
    nb::class_<sb::NgramPool>(m, "NgramPool")
        .def(nb::init<size_t>(), "bytes"_a = sb::NgramPool::kDefaultBytes)
        .def_prop_ro_static("key_lengths", [](nb::handle) {
            return std::vector<int>(std::begin(sb::NgramPool::kKeyLengths), std::end(sb::NgramPool::kKeyLengths));
        })
        .def("feed", [](sb::NgramPool & p, const std::vector<int32_t> & text, size_t from) {
            p.feed(text.data(), text.size(), from);
        }, "text"_a, "from_"_a = 0)
        .def("chain", [](const sb::NgramPool & p, const std::vector<int32_t> & tail, int longest, int max_draft) {
            std::vector<sb::PoolDraft> out;
            p.chain(tail.data(), tail.size(), longest, max_draft, out);
            std::vector<std::pair<int32_t, int>> r;
            for (const sb::PoolDraft & d : out) r.emplace_back(d.id, d.key);
            return r;  // (token, key length) per draft
        }, "tail"_a, "longest"_a = sb::NgramPool::kMaxKey, "max_draft"_a = 64)
        .def("clear", &sb::NgramPool::clear)
        .def_prop_ro("stats", [](const sb::NgramPool & p) { return pool_dict(p); });
}

// llama-cpp-python's rope / YaRN options, as the engine takes them
static void bind_rope(nb::module_ & m) {
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

// embeddings (llama.cpp's embedding mode): [n_tokens, n_embd] unpooled, else [1, n_embd]
static void bind_session_embeddings(nb::class_<Session> & c) {
    c.def("embeddings",
          [](Session & s, const std::vector<int32_t> & tokens, int pooling, int n_batch) {
              if (pooling < 0 || pooling > 3) throw std::invalid_argument("pooling must be none, mean, cls or last (0-3)");
              if (n_batch <= 0) throw std::invalid_argument("n_batch must be positive");
              const int n_embd = s.engine.hparams().n_embd;
              std::vector<float> v;
              {
                  nb::gil_scoped_release nogil;
                  v = sb::pool_embeddings(sb::token_embeddings(s.engine, tokens, n_batch), n_embd, (sb::Pooling) pooling);
              }
              const size_t rows = v.size() / (size_t) n_embd;
              return numpy_from(std::move(v), { rows, (size_t) n_embd });
          },
          "tokens"_a, "pooling"_a, "n_batch"_a);
}

// the model: construction, vocabulary, shape
static void bind_session_model(nb::class_<Session> & c) {
    c.def("__init__",
          [](Session * s, const std::string & path, int n_ctx, int n_batch, int n_threads, int n_threads_batch,
             int n_gpu_layers, bool verbose, bool flash_attn, const sb::RopeOverrides & rope,
             const std::vector<std::string> & rpc_servers, const std::vector<float> & tensor_split, double rpc_timeout) {
              nb::gil_scoped_release nogil;
              sb::EngineParams e{ n_ctx, n_threads, n_threads_batch, n_gpu_layers, rpc_servers, tensor_split, rpc_timeout,
                                  flash_attn };
              e.rope = rope;
              new (s) Session(path, { e, n_batch, verbose });
          },
          "path"_a, "n_ctx"_a, "n_batch"_a, "n_threads"_a, "n_threads_batch"_a, "n_gpu_layers"_a, "verbose"_a,
          "flash_attn"_a = false, "rope"_a = sb::RopeOverrides(), "rpc_servers"_a = std::vector<std::string>(),
          "tensor_split"_a = std::vector<float>(), "rpc_timeout"_a = 300.0)
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
        .def("metadata", [](Session & s) { return s.vocab.metadata(); });
}

// decoding: one GenerateParams per generation, begin() then step() until it returns False
static void bind_session_decode(nb::class_<Session> & c) {
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

// the engine underneath: exit-head vocabulary, kernels and devices, teacher-forced passes, probes
static void bind_session_engine(nb::class_<Session> & c) {
    c.def("set_candidates", [](Session & s, const std::vector<int32_t> & ids) { s.engine.set_candidates(ids); })
        .def_prop_ro("candidates", [](Session & s) { return s.engine.candidates(); })
        .def("kernels", [](Session & s) { return s.engine.kernel_report(); })
        .def("devices", [](Session & s) { return s.engine.device_report(); })
        .def_prop_ro("debug_noninvariant", [](Session & s) { return s.engine.debug_noninvariant(); })
        .def_prop_ro("debug_device_path", [](Session & s) { return s.engine.debug_device_path(); })
        .def_prop_ro("decodes_off_cpu", [](Session & s) { return s.engine.decodes_off_cpu(); })
        .def_prop_ro("broken", [](Session & s) { return s.engine.broken(); })
        .def("release_devices", [](Session & s) { s.engine.release_devices(); })
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
static void bind_session_probes(nb::class_<Session> & c) {
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
static void bind_session_calibration(nb::class_<Session> & c) {
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

// test entry points: acceptance and sampling on synthetic logits
static void bind_acceptance_tests(nb::module_ & m) {
    m.def("accept_drafts",
          [](nb::ndarray<const float, nb::ndim<2>, nb::c_contig> logits, const std::vector<int32_t> & drafts,
             int64_t first_pos, const std::vector<int32_t> & emitted, const sb::SamplingParams & sampling) {
              if (logits.shape(0) != drafts.size() + 1) throw std::invalid_argument("logits need one row per draft, plus one");
              const int n_vocab = (int) logits.shape(1);
              sb::Sampler sampler(n_vocab);
              std::vector<int32_t> out, scratch;
              const int n_accepted = sb::accept_drafts(sampler, sampling, logits.data(), n_vocab, drafts, first_pos,
                                                       emitted, out, scratch);
              nb::dict d;
              d["tokens"] = out;
              d["n_accepted"] = n_accepted;
              return d;
          },
          "logits"_a, "drafts"_a, "first_pos"_a, "emitted"_a, "sampling"_a);
    m.def("sample_token",
          [](nb::ndarray<const float, nb::ndim<1>, nb::c_contig> logits, int64_t pos,
             const std::vector<int32_t> & generated, const sb::SamplingParams & sampling) {
              const int n_vocab = (int) logits.shape(0);
              sb::Sampler sampler(n_vocab);
              return sampler.sample(logits.data(), n_vocab, sampling, pos, generated.data(), generated.size());
          },
          "logits"_a, "pos"_a, "generated"_a, "sampling"_a);
}

// test entry point: the learned exit decision's features of one exit check
static void bind_exit_feature_tests(nb::module_ & m) {
    m.def("exit_features", [](const std::vector<float> & z, float temperature, int prev_arg, float depth) {
        if (z.empty()) throw std::invalid_argument("z is empty");
        std::vector<float> f(sb::kExitFeatures);
        int arg = 0;
        sb::exit_features(z.data(), (int) z.size(), temperature, prev_arg, depth, f.data(), &arg);
        return nb::make_tuple(f, arg);
    }, "z"_a, "temperature"_a, "prev_arg"_a, "depth"_a);
}

// test entry point: the drafter's choice of the lookup draft length (and, with
// per_draft, of the early-exit draft length); relative_cost[w - 1] is the cost
// of a pass of w rows over a single step
static void bind_lookup_length_tests(nb::module_ & m) {
    m.def("best_lookup_length", [](double p, int max_k, const std::vector<double> & relative_cost, double per_draft) {
        if (max_k < 1 || (int) relative_cost.size() < max_k + 1)
            throw std::invalid_argument("relative_cost needs an entry for each width 1..max_k + 1");
        return sb::best_draft_length(p, max_k, per_draft, [&](int w) { return relative_cost[(size_t) w - 1]; });
    }, "p"_a, "max_k"_a, "relative_cost"_a, "per_draft"_a = 0.0);
    m.def("best_chain_length", [](const std::vector<double> & accept, const std::vector<double> & relative_cost, double per_draft) {
        if (relative_cost.size() < accept.size() + 1)
            throw std::invalid_argument("relative_cost needs an entry for each width 1..len(accept) + 1");
        return sb::best_chain_length(accept, per_draft, [&](int w) { return relative_cost[(size_t) w - 1]; });
    }, "accept"_a, "relative_cost"_a, "per_draft"_a = 0.0);
    // a pass cost table with these measured times (width -> ms; width 1: the single step)
    m.def("pass_cost_relative", [](const std::map<int, double> & measured, int width, const std::vector<float> & prior) {
        sb::PassCost c;
        for (const auto & [w, ms] : measured) c.record(w, ms);
        return c.relative(width, prior);
    }, "measured"_a, "width"_a, "prior"_a = std::vector<float>{});
}

// test entry point: the forward pass's segment plan
static void bind_segment_plan_tests(nb::module_ & m) {
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

void bind_toy_draft_source(nb::module_ & m);  // cpp/testing/toy_draft_source.cpp
void bind_rpc(nb::module_ & m);               // cpp/rpc/bindings_rpc.cpp

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
    bind_rpc(m);
    nb::class_<Session> session(m, "Session");
    bind_session_model(session);
    bind_session_decode(session);
    bind_session_engine(session);
    bind_session_probes(session);
    bind_session_calibration(session);
    bind_session_embeddings(session);
}
