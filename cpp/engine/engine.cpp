#include "engine/engine.h"

#include "graph/builder.h"

#include <ggml-cpu.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace sb {

static double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

Engine::Engine(const std::string & path, const EngineParams & params) : params_(params) {
    if (params.n_ctx <= 0) throw std::invalid_argument("n_ctx must be positive");
    if (params.n_threads <= 0 || params.n_threads_batch <= 0) throw std::invalid_argument("thread counts must be positive");
    if (ggml_backend_reg_count() == 0) ggml_backend_load_all();
    try {
        load_model(model_, path, params.n_gpu_layers);
    } catch (const std::invalid_argument & e) {
        // every message names the file
        std::string msg = e.what();
        throw std::invalid_argument(msg.find(path) == std::string::npos ? path + ": " + msg : msg);
    }
    init_kv_cache(kv_, model_, params.n_ctx);

    // CPU backend, never with the AMX extra buffer type: weights stay in the
    // plain (mmapped) CPU buffer.
    cpu_ = ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr);
    if (!cpu_) throw std::runtime_error("ggml has no CPU backend");
    ggml_backend_reg_t cpu_reg = ggml_backend_dev_backend_reg(ggml_backend_get_device(cpu_));
    set_use_ref_ = (void (*)(ggml_backend_t, bool)) ggml_backend_reg_get_proc_address(cpu_reg, "ggml_backend_cpu_set_use_ref");
    // use_ref keeps ggml's tiled K-quant matmul and its split-KV attention out of
    // the decode phase; without it batch invariance would silently break.
    if (!set_use_ref_) throw std::runtime_error("this ggml's CPU backend has no ggml_backend_cpu_set_use_ref: "
                                                "batch-invariant decoding is impossible with it");
    decide_kernels();
    const char * debug_env = std::getenv("SPECBOUND_DEBUG_NONINVARIANT");
    debug_noninvariant_ = debug_env && *debug_env && std::strcmp(debug_env, "0") != 0;

    std::vector<ggml_backend_t> backends;
    if (model_.gpu_dev) {
        gpu_ = ggml_backend_dev_init(model_.gpu_dev, nullptr);
        if (!gpu_) throw std::runtime_error("cannot initialise the GPU backend");
        backends.push_back(gpu_);
    }
    backends.push_back(cpu_);
    sched_ = ggml_backend_sched_new(backends.data(), nullptr, (int) backends.size(), kMaxGraphNodes, false, gpu_ != nullptr);
    meta_.resize(ggml_tensor_overhead() * kMaxGraphNodes + ggml_graph_overhead_custom(kMaxGraphNodes, false));
}

void Engine::decide_kernels() {
    auto decide = [&](const ggml_tensor * w) {
        if (w && (!w->buffer || ggml_backend_buffer_is_host(w->buffer))) kernels_.decide(w);
    };
    for (const Layer & L : model_.layers)
        for (const ggml_tensor * w : { L.wq, L.wk, L.wv, L.wo, L.ffn_gate, L.ffn_up, L.ffn_down }) decide(w);
    decide(model_.output);
}

static std::string device_line(ggml_backend_dev_t dev) {
    return std::string(ggml_backend_dev_name(dev)) + ": " + ggml_backend_dev_description(dev);
}

std::vector<std::string> Engine::device_report() const {
    std::vector<std::string> out = { device_line(ggml_backend_get_device(cpu_)) };
    if (gpu_) out.push_back(device_line(model_.gpu_dev) + ", last " + std::to_string(model_.n_gpu_layers) + " layers");
    if (debug_noninvariant_) out.push_back("SPECBOUND_DEBUG_NONINVARIANT: prompt-phase kernels in the decode phase");
    return out;
}

size_t Engine::decode_weight_bytes() const {
    size_t total = ggml_nbytes(model_.output);
    for (const Layer & L : model_.layers)
        for (const ggml_tensor * w : { L.wq, L.wk, L.wv, L.wo, L.ffn_gate, L.ffn_up, L.ffn_down }) total += w ? ggml_nbytes(w) : 0;
    return total;
}

std::vector<std::pair<std::string, std::string>> Engine::kernel_report() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (int t = 0; t < GGML_TYPE_COUNT; ++t)
        if (!kernels_.report[t].empty()) out.push_back({ ggml_type_name((ggml_type) t), kernels_.report[t] });
    return out;
}

Engine::~Engine() {
    if (cand_buf_) ggml_backend_buffer_free(cand_buf_);
    if (cand_ctx_) ggml_free(cand_ctx_);
    if (sched_) ggml_backend_sched_free(sched_);
    if (gpu_) ggml_backend_free(gpu_);
    if (cpu_) ggml_backend_free(cpu_);
}

void Engine::set_candidates(const std::vector<int32_t> & ids) {
    const ggml_tensor * out = model_.output;
    for (int32_t id : ids)
        if (id < 0 || id >= out->ne[1]) throw std::invalid_argument("candidate token id out of range");
    if (!cand_w_ || cand_w_->ne[1] < (int64_t) ids.size()) {
        if (cand_buf_) ggml_backend_buffer_free(cand_buf_);
        if (cand_ctx_) ggml_free(cand_ctx_);
        ggml_init_params ip = { ggml_tensor_overhead() * 2, nullptr, true };
        cand_ctx_ = ggml_init(ip);
        cand_w_ = ggml_new_tensor_2d(cand_ctx_, out->type, out->ne[0], std::max<int64_t>(ids.size(), 256));
        ggml_set_name(cand_w_, "exit_head");
        ggml_backend_buffer_type_t buft = out->buffer && !ggml_backend_buffer_is_host(out->buffer)
                                              ? ggml_backend_buffer_get_type(out->buffer)
                                              : ggml_backend_cpu_buffer_type();
        cand_buf_ = ggml_backend_alloc_ctx_tensors_from_buft(cand_ctx_, buft);
        if (!cand_buf_) throw std::runtime_error("cannot allocate the exit head");
    }
    std::vector<uint8_t> row(out->nb[1]);
    for (size_t i = 0; i < ids.size(); ++i) {
        ggml_backend_tensor_get(out, row.data(), (size_t) ids[i] * out->nb[1], out->nb[1]);
        ggml_backend_tensor_set(cand_w_, row.data(), i * cand_w_->nb[1], out->nb[1]);
    }
    cand_ids_ = ids;
}

namespace {

// host data to copy into input tensors once the graph is allocated
struct InputData {
    ggml_tensor * t;
    std::vector<uint8_t> bytes;
};

template <typename T>
ggml_tensor * new_input(ggml_context * ctx, std::vector<InputData> & inputs, ggml_type type, const T * data, size_t n,
                        int64_t ne0, int64_t ne1 = 1) {
    ggml_tensor * t = ggml_new_tensor_2d(ctx, type, ne0, ne1);
    ggml_set_input(t);
    InputData in{ t, std::vector<uint8_t>((const uint8_t *) data, (const uint8_t *) (data + n)) };
    inputs.push_back(std::move(in));
    return t;
}

template <typename T>
ggml_tensor * new_input(ggml_context * ctx, std::vector<InputData> & inputs, ggml_type type, const std::vector<T> & data,
                        int64_t ne0, int64_t ne1 = 1) {
    return new_input(ctx, inputs, type, data.data(), data.size(), ne0, ne1);
}

} // namespace

void Engine::forward(const std::vector<Row> & rows, const float * hidden_in, float * hidden_out, float * logits_out,
                     bool invariant, float * check_out) {
    const HParams & hp = model_.hp;
    const int n_rows = (int) rows.size();
    if (n_rows == 0) return;
    if (debug_noninvariant_) invariant = false;
    int l_first = hp.n_layer, l_last = 0;
    int n_logits = 0, n_check = 0;
    for (const Row & r : rows) {
        if (r.check && cand_ids_.empty()) throw std::invalid_argument("exit check without candidates");
        if (r.enter < 0 || r.exit > hp.n_layer || r.enter > r.exit) throw std::invalid_argument("bad layer range");
        if (r.pos < 0 || r.pos >= kv_.n_ctx) throw std::out_of_range("position outside the context");
        if (r.enter == 0 && (r.token < 0 || r.token >= hp.n_vocab)) throw std::invalid_argument("token id out of range");
        if (r.enter > 0 && !hidden_in) throw std::invalid_argument("hidden_in required for rows entering past layer 0");
        if (r.logits && r.exit != hp.n_layer) throw std::invalid_argument("logits need the full depth");
        l_first = std::min(l_first, r.enter);
        l_last = std::max(l_last, r.exit);
        n_logits += r.logits;
        n_check += r.check;
    }

    const double t0 = now_ms();
    ggml_init_params ip = { meta_.size(), meta_.data(), true };
    ggml_context * ctx = ggml_init(ip);
    ggml_cgraph * gf = ggml_new_graph_custom(ctx, kMaxGraphNodes, false);
    GraphBuilder b(ctx, gf, model_, kv_, invariant, &kernels_);
    std::vector<InputData> inputs;

    ggml_tensor * hin = nullptr;
    if (std::any_of(rows.begin(), rows.end(), [](const Row & r) { return r.enter > 0; }))
        hin = new_input(ctx, inputs, GGML_TYPE_F32, hidden_in, (size_t) n_rows * hp.n_embd, hp.n_embd, n_rows);

    // Walk the layers; the active rows change only where a row enters or exits.
    ggml_tensor * cur = nullptr;
    std::vector<int> order;                                 // request row of each column of cur
    std::vector<std::pair<ggml_tensor *, std::vector<int>>> outs;  // exit states
    Segment seg;
    auto columns_of = [&](const std::vector<int> & wanted) {
        std::vector<int32_t> idx;
        for (int r : wanted) idx.push_back((int32_t) (std::find(order.begin(), order.end(), r) - order.begin()));
        return idx;
    };
    for (int il = l_first; il <= l_last; ++il) {
        std::vector<int> leaving, staying, joining;
        for (int r : order) (rows[r].exit == il ? leaving : staying).push_back(r);
        if (il < l_last)
            for (int r = 0; r < n_rows; ++r)
                if (rows[r].enter == il && rows[r].exit > il) joining.push_back(r);
        if (!leaving.empty()) {
            if (staying.empty()) {
                outs.push_back({ cur, order });
                cur = nullptr;
            } else {
                auto li = columns_of(leaving), si = columns_of(staying);
                outs.push_back({ ggml_get_rows(ctx, cur, new_input(ctx, inputs, GGML_TYPE_I32, li, (int64_t) li.size())), leaving });
                cur = ggml_get_rows(ctx, cur, new_input(ctx, inputs, GGML_TYPE_I32, si, (int64_t) si.size()));
            }
            order = staying;
        }
        if (il == l_last) break;
        if (!joining.empty()) {
            std::vector<int> from_tokens, from_hidden;
            for (int r : joining) (il == 0 ? from_tokens : from_hidden).push_back(r);
            ggml_tensor * j;
            if (il == 0) {
                std::vector<int32_t> toks;
                for (int r : joining) toks.push_back(rows[r].token);
                j = ggml_get_rows(ctx, model_.tok_embd, new_input(ctx, inputs, GGML_TYPE_I32, toks, (int64_t) toks.size()));
                if (hp.embd_scale != 1.0f) j = ggml_scale(ctx, j, hp.embd_scale);
            } else {
                std::vector<int32_t> idx(joining.begin(), joining.end());
                j = ggml_get_rows(ctx, hin, new_input(ctx, inputs, GGML_TYPE_I32, idx, (int64_t) idx.size()));
            }
            cur = cur ? ggml_concat(ctx, cur, j, 1) : j;
            order.insert(order.end(), joining.begin(), joining.end());
        }
        if (!leaving.empty() || !joining.empty()) {
            // new segment: positions, cells and mask of the active rows
            seg = Segment{};
            seg.rows = order;
            int max_pos = 0;
            std::vector<int32_t> pos;
            std::vector<int64_t> cells;
            for (int r : order) {
                pos.push_back(rows[r].pos);
                cells.push_back(rows[r].pos);
                max_pos = std::max(max_pos, rows[r].pos);
            }
            seg.n_kv = std::min(kv_.n_cells, (int) GGML_PAD(max_pos + 1, kKvPad));
            const int m = (int) order.size();
            // causal mask; the sliding-window one also hides cells n_swa or more
            // positions back (llama.cpp's standard SWA: masked when pos_q - pos_k >= n_swa)
            const bool swa = hp.n_swa > 0;
            std::vector<ggml_fp16_t> mask((size_t) seg.n_kv * m), mask_swa(swa ? mask.size() : 0);
            const ggml_fp16_t zero = ggml_fp32_to_fp16(0.0f), ninf = ggml_fp32_to_fp16(-INFINITY);
            for (int i = 0; i < m; ++i)
                for (int c = 0; c < seg.n_kv; ++c) {
                    const size_t e = (size_t) i * seg.n_kv + c;
                    mask[e] = c <= pos[i] ? zero : ninf;
                    if (swa) mask_swa[e] = c <= pos[i] && pos[i] - c < hp.n_swa ? zero : ninf;
                }
            seg.pos = new_input(ctx, inputs, GGML_TYPE_I32, pos, m);
            seg.kv_idx = new_input(ctx, inputs, GGML_TYPE_I64, cells, m);
            seg.mask = new_input(ctx, inputs, GGML_TYPE_F16, mask, seg.n_kv, m);
            if (swa) seg.mask_swa = new_input(ctx, inputs, GGML_TYPE_F16, mask_swa, seg.n_kv, m);
        }
        cur = build_layer(b, il, cur, seg);
    }

    // hidden states at exit; logits and exit-head logits for the rows that asked
    for (auto & o : outs) {
        ggml_set_output(o.first);
        ggml_build_forward_expand(gf, o.first);
    }
    // exit states of the selected rows, in request order: one get_rows over the
    // exit groups side by side (the common case is a single group)
    ggml_tensor * all = nullptr;
    std::vector<int> column(n_rows, -1);
    for (auto & o : outs) {
        for (size_t c = 0; c < o.second.size(); ++c) column[o.second[c]] = (int) (all ? all->ne[1] : 0) + (int) c;
        all = all ? ggml_concat(ctx, all, o.first, 1) : o.first;
    }
    auto gather = [&](bool Row::*flag) -> ggml_tensor * {
        std::vector<int32_t> idx;
        for (int r = 0; r < n_rows; ++r)
            if (rows[r].*flag) idx.push_back(column[r]);
        if ((int64_t) idx.size() == all->ne[1] && std::is_sorted(idx.begin(), idx.end())) return all;
        return ggml_get_rows(ctx, all, new_input(ctx, inputs, GGML_TYPE_I32, idx, (int64_t) idx.size()));
    };
    ggml_tensor * logits = nullptr, * checks = nullptr;
    if (n_logits > 0) {
        logits = b.matmul(model_.output, b.rms_norm(gather(&Row::logits), model_.output_norm));
        ggml_set_output(logits);
        ggml_build_forward_expand(gf, logits);
    }
    if (n_check > 0) {
        ggml_tensor * head = ggml_view_2d(ctx, cand_w_, cand_w_->ne[0], (int64_t) cand_ids_.size(), cand_w_->nb[1], 0);
        checks = b.matmul(head, b.rms_norm(gather(&Row::check), model_.output_norm));
        ggml_set_output(checks);
        ggml_build_forward_expand(gf, checks);
    }
    const double t1 = now_ms();

    ggml_backend_sched_reset(sched_);
    if (!ggml_backend_sched_alloc_graph(sched_, gf)) {
        ggml_free(ctx);
        throw std::runtime_error("failed to allocate the compute graph");
    }
    for (auto & in : inputs)
        if (in.t->buffer) ggml_backend_tensor_set(in.t, in.bytes.data(), 0, in.bytes.size());  // unused inputs get none
    ggml_backend_cpu_set_n_threads(cpu_, invariant ? params_.n_threads : params_.n_threads_batch);
    if (set_use_ref_) set_use_ref_(cpu_, invariant);
    ggml_status st = ggml_backend_sched_graph_compute(sched_, gf);
    if (st != GGML_STATUS_SUCCESS) {
        ggml_free(ctx);
        throw std::runtime_error("graph compute failed");
    }
    if (hidden_out) {
        const size_t row_bytes = sizeof(float) * hp.n_embd;
        for (auto & o : outs)
            for (size_t c = 0; c < o.second.size(); ++c)
                ggml_backend_tensor_get(o.first, hidden_out + (size_t) o.second[c] * hp.n_embd, c * o.first->nb[1], row_bytes);
    }
    if (logits && logits_out) ggml_backend_tensor_get(logits, logits_out, 0, ggml_nbytes(logits));
    if (checks && check_out) ggml_backend_tensor_get(checks, check_out, 0, ggml_nbytes(checks));
    ggml_free(ctx);
    timing.graph_build_ms += t1 - t0;
    timing.compute_ms += now_ms() - t1;
    timing.n_calls++;
}

} // namespace sb
