// Engine::forward: plan the rows' segments (engine/forward_plan.h), build the
// graph the plan describes, compute it, read the outputs back.
#include "engine/engine.h"

#include "graph/builder.h"

#include <ggml-cpu.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>

namespace sb {

static double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// One call's graph: its context (freed with it, also on a throw), the host
// data to copy into its inputs once allocated, and the tensors read back.
struct ForwardGraph {
    struct InputData {
        ggml_tensor * t;
        std::vector<uint8_t> bytes;
    };
    ggml_context * ctx = nullptr;
    ggml_cgraph * gf = nullptr;
    std::vector<InputData> inputs;
    std::vector<ggml_tensor *> exits;  // the state of each exit of the plan
    ggml_tensor * logits = nullptr, * checks = nullptr;

    ForwardGraph() = default;
    ForwardGraph(const ForwardGraph &) = delete;
    ForwardGraph & operator=(const ForwardGraph &) = delete;
    ~ForwardGraph() {
        if (ctx) ggml_free(ctx);
    }

    template <typename T>
    ggml_tensor * input(ggml_type type, const T * data, size_t n, int64_t ne0, int64_t ne1 = 1) {
        ggml_tensor * t = ggml_new_tensor_2d(ctx, type, ne0, ne1);
        ggml_set_input(t);
        inputs.push_back({ t, std::vector<uint8_t>((const uint8_t *) data, (const uint8_t *) (data + n)) });
        return t;
    }
    template <typename T>
    ggml_tensor * input(ggml_type type, const std::vector<T> & data, int64_t ne0, int64_t ne1 = 1) {
        return input(type, data.data(), data.size(), ne0, ne1);
    }
};

RowLimits Engine::row_limits(bool has_hidden_in) const {
    const HParams & hp = model_.hp;
    return { hp.n_layer, kv_.n_ctx, hp.n_vocab, !cand_ids_.empty(), has_hidden_in };
}

void Engine::forward(const std::vector<Row> & rows, const float * hidden_in, float * hidden_out, float * logits_out,
                     bool invariant, float * check_out) {
    if (rows.empty()) return;
    if (debug_noninvariant_) invariant = false;
    // past this the graph's object pool would run out inside ggml (an abort)
    if (invariant && (int64_t) rows.size() > max_invariant_rows())
        throw std::length_error("a decode-phase batch of " + std::to_string(rows.size()) + " rows is over the " +
                                std::to_string(max_invariant_rows()) + " this graph holds on the decode path off the CPU");
    const ForwardPlan plan = plan_forward(rows, row_limits(hidden_in != nullptr));
    if (plan.segments.empty()) return;  // every row computes no layer

    const double t0 = now_ms();
    ForwardGraph g;
    build_graph(g, plan, rows, hidden_in, invariant);
    const double t1 = now_ms();
    compute(g, invariant);
    read_outputs(g, plan, hidden_out, logits_out, check_out);
    timing.graph_build_ms += t1 - t0;
    timing.compute_ms += now_ms() - t1;
    timing.n_calls++;
}

void Engine::build_graph(ForwardGraph & g, const ForwardPlan & plan, const std::vector<Row> & rows,
                         const float * hidden_in, bool invariant) {
    const HParams & hp = model_.hp;
    const int n_rows = (int) rows.size();
    ggml_init_params ip = { meta_.size(), meta_.data(), true };
    g.ctx = ggml_init(ip);
    g.gf = ggml_new_graph_custom(g.ctx, max_nodes_, false);
    GraphBuilder b(g.ctx, g.gf, model_, kv_, invariant, &kernels_);
    b.device_columns = device_columns_;
    b.device_path_on_cpu = debug_device_path_;
    b.flash_attn = params_.flash_attn;
    ggml_tensor * hin = nullptr;
    if (plan.reads_hidden) hin = g.input(GGML_TYPE_F32, hidden_in, (size_t) n_rows * hp.n_embd, hp.n_embd, n_rows);

    ggml_tensor * cur = nullptr;
    size_t next_exit = 0;
    for (const SegmentPlan & sp : plan.segments) {
        if (next_exit < plan.exits.size() && plan.exits[next_exit].layer == sp.begin)
            cur = leave(g, plan.exits[next_exit++], cur);
        cur = join(g, sp, rows, hin, cur);
        const Segment seg = segment_inputs(g, sp, rows);
        for (int il = sp.begin; il < sp.end; ++il) {
            cur = build_layer(b, il, cur, seg);
        }
    }
    leave(g, plan.exits.back(), cur);  // the rows at the top layer: all that remain
    build_heads(g, b, plan);
}

// the exit's states leave the running state; returns what goes on (null: nothing)
ggml_tensor * Engine::leave(ForwardGraph & g, const ExitPlan & exit, ggml_tensor * cur) {
    if (exit.whole) {
        g.exits.push_back(cur);
        return nullptr;
    }
    const int64_t n_leave = (int64_t) exit.columns.size(), n_keep = (int64_t) exit.kept.size();
    g.exits.push_back(ggml_get_rows(g.ctx, cur, g.input(GGML_TYPE_I32, exit.columns, n_leave)));
    return ggml_get_rows(g.ctx, cur, g.input(GGML_TYPE_I32, exit.kept, n_keep));
}

// the rows entering at the segment's first layer, after the running ones:
// token embeddings at layer 0, else their given hidden states
ggml_tensor * Engine::join(ForwardGraph & g, const SegmentPlan & seg, const std::vector<Row> & rows,
                           ggml_tensor * hidden, ggml_tensor * cur) {
    if (seg.joining.empty()) return cur;
    const int64_t n = (int64_t) seg.joining.size();
    ggml_tensor * j;
    if (seg.begin == 0) {
        std::vector<int32_t> toks;
        for (int r : seg.joining) toks.push_back(rows[r].token);
        j = ggml_get_rows(g.ctx, model_.tok_embd, g.input(GGML_TYPE_I32, toks, n));
        if (model_.hp.embd_scale != 1.0f) j = ggml_scale(g.ctx, j, model_.hp.embd_scale);
    } else {
        std::vector<int32_t> idx(seg.joining.begin(), seg.joining.end());
        j = ggml_get_rows(g.ctx, hidden, g.input(GGML_TYPE_I32, idx, n));
    }
    return cur ? ggml_concat(g.ctx, cur, j, 1) : j;
}

// positions, cells and masks of the segment's rows, shared by its layers
Segment Engine::segment_inputs(ForwardGraph & g, const SegmentPlan & sp, const std::vector<Row> & rows) {
    std::vector<int32_t> pos;
    for (int r : sp.rows) pos.push_back(rows[r].pos);
    const int n_swa = model_.hp.n_swa;
    const KvInputs kin = kv_.inputs(pos, n_swa);
    const int m = (int) pos.size();
    Segment seg;
    seg.rows = sp.rows;
    seg.n_kv = kin.n_kv;
    seg.n_kv_row = kin.n_kv_row;
    seg.pos = g.input(GGML_TYPE_I32, pos, m);
    seg.kv_idx = g.input(GGML_TYPE_I64, kin.cells, m);
    seg.mask = g.input(GGML_TYPE_F16, kin.mask, seg.n_kv, m);
    if (n_swa > 0) seg.mask_swa = g.input(GGML_TYPE_F16, kin.mask_swa, seg.n_kv, m);
    return seg;
}

// hidden states at exit; logits and exit-head logits for the rows that asked
void Engine::build_heads(ForwardGraph & g, GraphBuilder & b, const ForwardPlan & plan) {
    for (ggml_tensor * e : g.exits) {
        ggml_set_output(e);
        ggml_build_forward_expand(g.gf, e);
    }
    // a head's rows, in request order: one get_rows over the exit states side
    // by side (the common case is a single exit state, read whole)
    ggml_tensor * all = nullptr;
    for (ggml_tensor * e : g.exits) all = all ? ggml_concat(g.ctx, all, e, 1) : e;
    auto gather = [&](const HeadPlan & h) -> ggml_tensor * {
        if (h.whole) return all;
        return ggml_get_rows(g.ctx, all, g.input(GGML_TYPE_I32, h.columns, (int64_t) h.columns.size()));
    };
    if (!plan.logits.columns.empty()) {
        g.logits = b.matmul(model_.output, b.rms_norm(gather(plan.logits), model_.output_norm));
        ggml_set_output(g.logits);
        ggml_build_forward_expand(g.gf, g.logits);
    }
    if (!plan.check.columns.empty()) {
        ggml_tensor * head = ggml_view_2d(g.ctx, cand_w_, cand_w_->ne[0], (int64_t) cand_ids_.size(), cand_w_->nb[1], 0);
        g.checks = b.matmul(head, b.rms_norm(map_exit_states(g, plan, gather(plan.check)), model_.output_norm));
        ggml_set_output(g.checks);
        ggml_build_forward_expand(g.gf, g.checks);
    }
}

// The exit-head states x (one column per check column of the plan) through the
// exit map of each column's exit layer, where one is set; runs of columns that
// exit at the same layer share one map.
ggml_tensor * Engine::map_exit_states(ForwardGraph & g, const ForwardPlan & plan, ggml_tensor * x) const {
    if (exit_maps_.empty()) return x;
    std::vector<int> layer_of;  // exit layer per column of the exit states side by side
    for (const ExitPlan & e : plan.exits) layer_of.insert(layer_of.end(), e.rows.size(), e.layer);
    const std::vector<int32_t> & cols = plan.check.columns;
    ggml_tensor * out = nullptr;
    for (size_t i = 0; i < cols.size();) {
        const int layer = layer_of[(size_t) cols[i]];
        size_t j = i + 1;
        while (j < cols.size() && layer_of[(size_t) cols[j]] == layer) ++j;
        ggml_tensor * part = i == 0 && j == cols.size()
                                 ? x
                                 : ggml_view_2d(g.ctx, x, x->ne[0], (int64_t) (j - i), x->nb[1], i * x->nb[1]);
        if (const ExitMap * m = exit_maps_.find(layer)) part = ExitMaps::apply(g.ctx, *m, part);
        out = out ? ggml_concat(g.ctx, out, part, 1) : part;
        i = j;
    }
    return out;
}

void Engine::compute(ForwardGraph & g, bool invariant) {
    ggml_backend_sched_reset(sched_);
    if (!ggml_backend_sched_alloc_graph(sched_, g.gf)) throw std::runtime_error("failed to allocate the compute graph");
    for (auto & in : g.inputs)
        if (in.t->buffer) ggml_backend_tensor_set(in.t, in.bytes.data(), 0, in.bytes.size());  // unused inputs get none
    ggml_backend_cpu_set_n_threads(cpu_, invariant ? params_.n_threads : params_.n_threads_batch);
    if (set_use_ref_) set_use_ref_(cpu_, invariant);
    if (ggml_backend_sched_graph_compute(sched_, g.gf) != GGML_STATUS_SUCCESS) throw std::runtime_error("graph compute failed");
}

void Engine::read_outputs(const ForwardGraph & g, const ForwardPlan & plan, float * hidden_out, float * logits_out,
                          float * check_out) const {
    const int n_embd = model_.hp.n_embd;
    if (hidden_out) {
        const size_t row_bytes = sizeof(float) * n_embd;
        for (size_t e = 0; e < g.exits.size(); ++e) {
            const std::vector<int> & rows = plan.exits[e].rows;
            for (size_t c = 0; c < rows.size(); ++c)
                ggml_backend_tensor_get(g.exits[e], hidden_out + (size_t) rows[c] * n_embd, c * g.exits[e]->nb[1], row_bytes);
        }
    }
    if (g.logits && logits_out) ggml_backend_tensor_get(g.logits, logits_out, 0, ggml_nbytes(g.logits));
    if (g.checks && check_out) ggml_backend_tensor_get(g.checks, check_out, 0, ggml_nbytes(g.checks));
}

} // namespace sb
