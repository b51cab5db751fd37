// Engine::forward: plan the rows' segments (engine/forward_plan.h), build the
// graph the plan describes, compute it, read the outputs back.
#include "engine/engine.h"
#include "model/quiet_log.h"
#include "rpc/rpc.h"

#include "engine/forward_graph.h"
#include "engine/graph_cache.h"
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

// The input tensors of one graph, made before its operations (in one fixed
// order, so that a reused graph is refilled by the same code).
struct GraphInputs {
    ggml_tensor * hidden = nullptr;                               // rows entering past layer 0
    std::vector<std::pair<ggml_tensor *, ggml_tensor *>> exits;   // per exit: columns leaving, kept (null: whole)
    std::vector<ggml_tensor *> joining;                          // per segment: tokens or hidden rows (null: none)
    std::vector<Segment> segments;                               // positions, cells, masks
    ggml_tensor * logits_columns = nullptr, * check_columns = nullptr;  // null: the head reads all exit columns
};

RowLimits Engine::row_limits(bool has_hidden_in) const {
    const HParams & hp = model_.hp;
    return { hp.n_layer, kv_.n_ctx, hp.n_vocab, !cand_ids_.empty(), has_hidden_in };
}

// With RPC workers: a worker that failed during the call (its Proxy answered
// ggml in its place, or ggml aborted on this thread) becomes rpc::RpcError,
// and the engine is broken from then on: the worker's buffers are gone or stale.
void Engine::forward(const std::vector<Row> & rows, const float * hidden_in, float * hidden_out, float * logits_out,
                     bool invariant, float * check_out) {
    if (model_.proxies.empty()) return forward_body(rows, hidden_in, hidden_out, logits_out, invariant, check_out);
    if (broken()) throw rpc::RpcError(broken_);
    const char * reload = "; the model must be loaded again (Llama does it at its next call)";
    auto worker_failed = [&] {
        for (const auto & p : model_.proxies)
            if (p->failed()) broken_ = p->failure() + reload;
        return broken();
    };
    try {
        rpc::AbortGuard guard;
        // ggml's scheduler reports at debug level as the many splits across
        // workers grow its arrays; with verbose=False, quiet as at load
        QuietLog quiet(!params_.verbose);
        forward_body(rows, hidden_in, hidden_out, logits_out, invariant, check_out);
    } catch (const rpc::GgmlAbort & e) {
        if (!worker_failed()) broken_ = std::string(e.what()) + reload;
        throw rpc::RpcError(broken_);
    } catch (...) {
        // e.g. a graph that could not be allocated: the stand-in answered "no buffer"
        if (worker_failed()) throw rpc::RpcError(broken_);
        throw;
    }
    if (worker_failed()) throw rpc::RpcError(broken_);
}

void Engine::forward_body(const std::vector<Row> & rows, const float * hidden_in, float * hidden_out,
                          float * logits_out, bool invariant, float * check_out) {
    if (rows.empty()) return;
    if (debug_noninvariant_) invariant = false;
    // past this the graph's object pool would run out inside ggml (an abort)
    if (invariant && (int64_t) rows.size() > max_invariant_rows())
        throw std::length_error("a decode-phase batch of " + std::to_string(rows.size()) + " rows is over the " +
                                std::to_string(max_invariant_rows()) + " this graph holds on the decode path off the CPU");
    const double t0 = now_ms();
    const ForwardPlan plan = plan_forward(rows, row_limits(hidden_in != nullptr));
    if (plan.segments.empty()) return;  // every row computes no layer
    std::vector<KvInputs> kv_in;
    for (const SegmentPlan & sp : plan.segments) kv_in.push_back(segment_cells(sp, rows));

    // decode-phase graphs are kept and reused; a prompt's graph is built each time
    ForwardGraph fresh;
    ForwardGraph * g = &fresh;
    GraphSlot * slot = nullptr;
    if (invariant && graph_reuse_) {
        const std::vector<int64_t> key = graph_key(plan, kv_in, rows.size(), hidden_in != nullptr);
        slot = graphs_->find(key);
        if (slot) {
            slot->graph.start_refill();
            make_inputs(slot->graph, plan, rows, hidden_in, kv_in);
            slot->graph.end_refill();
            timing.n_reused++;
        } else {
            slot = &graphs_->take(key);
        }
        g = &slot->graph;
    }
    ggml_backend_sched_t sched = slot ? slot->sched : sched_;
    const double t1 = now_ms();
    double t2 = t1;  // a refilled graph spent no time building: its build_ms stays exactly 0
    if (!g->built()) {
        try {
            build_graph(*g, slot ? slot->meta.get() : meta_.data(), slot ? graphs_->meta_bytes() : meta_.size(), plan,
                        rows, hidden_in, kv_in, invariant);
            allocate(*g, sched);
        } catch (...) {
            if (slot) GraphCache::drop(*slot);
            throw;
        }
        t2 = now_ms();
    }
    compute(*g, sched, invariant);
    const double t3 = now_ms();
    read_outputs(*g, plan, hidden_out, logits_out, check_out);
    timing.plan_ms += t1 - t0;
    timing.build_ms += t2 - t1;
    timing.compute_ms += t3 - t2;
    timing.read_ms += now_ms() - t3;
    timing.n_calls++;
    record_cells(rows);
}

void Engine::record_cells(const std::vector<Row> & rows) {
    KvCells & cells = kv_.cells;
    for (const Row & r : rows) {
        if (r.enter >= r.exit) continue;  // wrote nothing
        if (r.exit == model_.hp.n_layer) cells.write(r.pos, r.token);
        else cells.remove_from(r.pos);
    }
}

// Everything that fixes the operations of a graph (not the data of its
// inputs): equal keys, the same graph.
std::vector<int64_t> Engine::graph_key(const ForwardPlan & plan, const std::vector<KvInputs> & kv_in, size_t n_rows,
                                       bool has_hidden) const {
    // the exit head's size and maps only where the graph has the head (it grows during a request)
    const bool head = !plan.check.columns.empty();
    std::vector<int64_t> k = { (int64_t) n_rows, has_hidden, plan.reads_hidden, device_columns_,
                               head ? (int64_t) cand_ids_.size() : -1, head ? (int64_t) exit_maps_.generation() : -1 };
    auto add = [&k](const auto & v) {
        k.push_back((int64_t) v.size());
        k.insert(k.end(), v.begin(), v.end());
    };
    for (size_t i = 0; i < plan.segments.size(); ++i) {
        const SegmentPlan & sp = plan.segments[i];
        k.insert(k.end(), { sp.begin, sp.end, kv_in[i].n_kv });
        add(sp.joining), add(sp.rows), add(kv_in[i].n_kv_row);
    }
    for (const ExitPlan & e : plan.exits) {
        k.insert(k.end(), { e.layer, e.whole });
        add(e.rows), add(e.columns), add(e.kept);
    }
    for (const HeadPlan * h : { &plan.logits, &plan.check }) {
        k.push_back(h->whole);
        add(h->columns);
    }
    return k;
}

// the cells of the segment's rows and what each may see
KvInputs Engine::segment_cells(const SegmentPlan & sp, const std::vector<Row> & rows) const {
    std::vector<int32_t> pos;
    for (int r : sp.rows) pos.push_back(rows[r].pos);
    return kv_.inputs(pos, model_.hp.n_swa);
}

// The graph's inputs with this call's data: on a new graph, new tensors; on a
// refilled one, the same tensors in the same order.
GraphInputs Engine::make_inputs(ForwardGraph & g, const ForwardPlan & plan, const std::vector<Row> & rows,
                                const float * hidden_in, const std::vector<KvInputs> & kv_in) const {
    const HParams & hp = model_.hp;
    GraphInputs in;
    if (plan.reads_hidden) in.hidden = g.input(GGML_TYPE_F32, hidden_in, rows.size() * hp.n_embd, hp.n_embd, (int64_t) rows.size());
    for (const ExitPlan & e : plan.exits) {
        if (e.whole) in.exits.push_back({ nullptr, nullptr });
        else in.exits.push_back({ g.input(GGML_TYPE_I32, e.columns, (int64_t) e.columns.size()),
                                  g.input(GGML_TYPE_I32, e.kept, (int64_t) e.kept.size()) });
    }
    for (size_t i = 0; i < plan.segments.size(); ++i) {
        const SegmentPlan & sp = plan.segments[i];
        ggml_tensor * j = nullptr;
        if (!sp.joining.empty()) {
            std::vector<int32_t> ids;  // tokens at layer 0, else rows of the given hidden states
            for (int r : sp.joining) ids.push_back(sp.begin == 0 ? rows[r].token : r);
            j = g.input(GGML_TYPE_I32, ids, (int64_t) ids.size());
        }
        in.joining.push_back(j);
        in.segments.push_back(segment_inputs(g, sp, kv_in[i]));
    }
    if (!plan.logits.whole && !plan.logits.columns.empty())
        in.logits_columns = g.input(GGML_TYPE_I32, plan.logits.columns, (int64_t) plan.logits.columns.size());
    if (!plan.check.whole && !plan.check.columns.empty())
        in.check_columns = g.input(GGML_TYPE_I32, plan.check.columns, (int64_t) plan.check.columns.size());
    return in;
}

void Engine::build_graph(ForwardGraph & g, uint8_t * meta, size_t meta_bytes, const ForwardPlan & plan,
                         const std::vector<Row> & rows, const float * hidden_in, const std::vector<KvInputs> & kv_in,
                         bool invariant) {
    ggml_init_params ip = { meta_bytes, meta, true };
    g.ctx = ggml_init(ip);
    g.gf = ggml_new_graph_custom(g.ctx, max_nodes_, false);
    const GraphInputs in = make_inputs(g, plan, rows, hidden_in, kv_in);
    GraphBuilder b(g.ctx, g.gf, model_, kv_, invariant, &kernels_);
    b.device_columns = device_columns_;
    b.device_path_on_cpu = debug_device_path_;
    b.flash_attn = params_.flash_attn;

    ggml_tensor * cur = nullptr;
    size_t next_exit = 0;
    for (size_t i = 0; i < plan.segments.size(); ++i) {
        const SegmentPlan & sp = plan.segments[i];
        if (next_exit < plan.exits.size() && plan.exits[next_exit].layer == sp.begin) {
            cur = leave(g, in.exits[next_exit], cur);
            ++next_exit;
        }
        cur = join(g, sp, in.joining[i], in.hidden, cur);
        for (int il = sp.begin; il < sp.end; ++il) cur = build_layer(b, il, cur, in.segments[i]);
    }
    leave(g, in.exits.back(), cur);  // the rows at the top layer: all that remain
    build_heads(g, b, plan, in);
}

// the exit's states leave the running state; returns what goes on (null: nothing)
ggml_tensor * Engine::leave(ForwardGraph & g, std::pair<ggml_tensor *, ggml_tensor *> columns, ggml_tensor * cur) {
    if (!columns.first) {  // every row leaves
        g.exits.push_back(cur);
        return nullptr;
    }
    g.exits.push_back(ggml_get_rows(g.ctx, cur, columns.first));
    return ggml_get_rows(g.ctx, cur, columns.second);
}

// the rows entering at the segment's first layer, after the running ones:
// token embeddings at layer 0, else their given hidden states
ggml_tensor * Engine::join(ForwardGraph & g, const SegmentPlan & seg, ggml_tensor * ids, ggml_tensor * hidden,
                           ggml_tensor * cur) {
    if (!ids) return cur;
    ggml_tensor * j;
    if (seg.begin == 0) {
        j = ggml_get_rows(g.ctx, model_.tok_embd, ids);
        if (model_.hp.embd_scale != 1.0f) j = ggml_scale(g.ctx, j, model_.hp.embd_scale);
    } else {
        j = ggml_get_rows(g.ctx, hidden, ids);
    }
    return cur ? ggml_concat(g.ctx, cur, j, 1) : j;
}

// positions, cells and masks of the segment's rows, shared by its layers
Segment Engine::segment_inputs(ForwardGraph & g, const SegmentPlan & sp, const KvInputs & kin) const {
    const std::vector<int32_t> pos(kin.cells.begin(), kin.cells.end());  // a row's cell is its position
    const int m = (int) pos.size();
    Segment seg;
    seg.rows = sp.rows;
    seg.n_kv = kin.n_kv;
    seg.n_kv_row = kin.n_kv_row;
    seg.pos = g.input(GGML_TYPE_I32, pos, m);
    seg.kv_idx = g.input(GGML_TYPE_I64, kin.cells, m);
    if (kv_.v_trans) seg.v_idx = g.input(GGML_TYPE_I64, kin.v_cells, (int64_t) kin.v_cells.size());
    seg.mask = g.input(GGML_TYPE_F16, kin.mask, seg.n_kv, m);
    if (model_.hp.n_swa > 0) seg.mask_swa = g.input(GGML_TYPE_F16, kin.mask_swa, seg.n_kv, m);
    return seg;
}

// hidden states at exit; logits and exit-head logits for the rows that asked
void Engine::build_heads(ForwardGraph & g, GraphBuilder & b, const ForwardPlan & plan, const GraphInputs & in) {
    for (ggml_tensor * e : g.exits) {
        ggml_set_output(e);
        ggml_build_forward_expand(g.gf, e);
    }
    // a head's rows, in request order: one get_rows over the exit states side
    // by side (the common case is a single exit state, read whole)
    ggml_tensor * all = nullptr;
    for (ggml_tensor * e : g.exits) all = all ? ggml_concat(g.ctx, all, e, 1) : e;
    auto gather = [&](ggml_tensor * columns) { return columns ? ggml_get_rows(g.ctx, all, columns) : all; };
    if (!plan.logits.columns.empty()) {
        g.logits = b.matmul(model_.output, b.rms_norm(gather(in.logits_columns), model_.output_norm));
        ggml_set_output(g.logits);
        ggml_build_forward_expand(g.gf, g.logits);
    }
    if (!plan.check.columns.empty()) {
        ggml_tensor * head = ggml_view_2d(g.ctx, cand_w_, cand_w_->ne[0], (int64_t) cand_ids_.size(), cand_w_->nb[1], 0);
        g.checks = b.matmul(head, b.rms_norm(map_exit_states(g, plan, gather(in.check_columns)), model_.output_norm));
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

void Engine::allocate(ForwardGraph & g, ggml_backend_sched_t sched) {
    ggml_backend_sched_reset(sched);
    // Our kernels (CUSTOM ops: a function pointer of this process) run on the
    // CPU only. ggml-cuda declines them; ggml's RPC client claims every op, and
    // the scheduler would hand one next to a worker's layers to the worker,
    // which would call our pointer in its own process.
    if (!devices_.empty())
        for (int i = 0; i < ggml_graph_n_nodes(g.gf); ++i)
            if (ggml_graph_node(g.gf, i)->op == GGML_OP_CUSTOM)
                ggml_backend_sched_set_tensor_backend(sched, ggml_graph_node(g.gf, i), cpu_);
    if (!ggml_backend_sched_alloc_graph(sched, g.gf)) throw std::runtime_error("failed to allocate the compute graph");
}

void Engine::compute(ForwardGraph & g, ggml_backend_sched_t sched, bool invariant) {
    for (auto & in : g.inputs)
        if (in.t->buffer) ggml_backend_tensor_set(in.t, in.bytes.data(), 0, in.bytes.size());  // unused inputs get none
    ggml_backend_cpu_set_n_threads(cpu_, invariant ? params_.n_threads : params_.n_threads_batch);
    if (set_use_ref_) set_use_ref_(cpu_, invariant);
    if (ggml_backend_sched_graph_compute(sched, g.gf) != GGML_STATUS_SUCCESS) throw std::runtime_error("graph compute failed");
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
