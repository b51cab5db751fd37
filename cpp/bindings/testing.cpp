// Entry points for the tests and tools only: kernels, acceptance, segment
// plans, draft lengths, the n-gram pool and the gate, each on its own.
#include "bindings/bindings.h"
#include "kernels/kernels.h"
#include "kernels/testing.h"
#include "profile/bandwidth.h"
#include "speculation/exit_decision.h"
#include "speculation/gate.h"
#include "speculation/ngram_pool.h"
#include "speculation/pricing.h"

#include <iterator>

void bind_kernel_tests(nb::module_ & m) {
    m.def("read_bandwidth_gbs",
          [](size_t bytes, int n_threads, int reps) {
              nb::gil_scoped_release nogil;
              return sb::read_bandwidth_gbs(bytes, n_threads, reps);
          },
          "bytes"_a, "n_threads"_a = 2, "reps"_a = 3);
    // which builds of our kernels this CPU runs (AVX-512 VNNI: the native one)
    m.def("cpu_has_avx512_vnni", [] { return sb::kernels::cpu_has_avx512_vnni(); });
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

nb::dict pool_dict(const sb::NgramPool & p) {
    nb::dict d;
    d["bytes"] = p.bytes();
    d["slots"] = p.slots();
    d["used"] = p.used();
    d["fed"] = p.fed();
    d["allocated"] = p.allocated();
    return d;
}

// the n-gram pool alone, for its tests (a session owns one, fed by its generations)
void bind_pool_tests(nb::module_ & m) {
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

// test entry points: acceptance and sampling on synthetic logits
void bind_acceptance_tests(nb::module_ & m) {
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
void bind_exit_feature_tests(nb::module_ & m) {
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
void bind_lookup_length_tests(nb::module_ & m) {
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
void bind_segment_plan_tests(nb::module_ & m) {
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

// the online gate alone, for its tests (the decoder owns one per generation)
void bind_gate_tests(nb::module_ & m) {
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
