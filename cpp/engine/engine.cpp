#include "engine/engine.h"
#include "model/read_gguf.h"

#include "engine/graph_cache.h"

#include "model/quiet_log.h"
#include "rpc/rpc.h"

#include <ggml-cpu.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace sb {

static bool env_flag(const char * name) {
    const char * v = std::getenv(name);
    return v && *v && std::strcmp(v, "0") != 0;
}

// SPECBOUND_DEVICE_COLUMNS, checked before anything is loaded
static int device_columns_from_env() {
    const char * v = std::getenv("SPECBOUND_DEVICE_COLUMNS");
    if (!v || !*v) return -1;
    char * end = nullptr;
    const long n = std::strtol(v, &end, 10);
    if (*end || n < 0 || n > 64) throw std::invalid_argument("SPECBOUND_DEVICE_COLUMNS must be an integer in [0, 64]");
    return (int) n;
}

// Chunks of 4 columns were invariant on ggml-cuda for quantized weights (mmvq
// splits a dot product the same way for 1-4 columns) but not for F16 ones
// (H100, 2026-11-27: every position of batches 2-4 differed; single columns
// were invariant): float weights off the CPU go by single columns.
static int default_device_columns(const Model & m) {
    for (const Layer & L : m.layers)
        for (const ggml_tensor * w : L.matmul_weights())
            if (w && w->buffer && !ggml_backend_buffer_is_host(w->buffer) && !ggml_is_quantized(w->type)) return 1;
    return Engine::kDefaultDeviceColumns;
}

// One backend per offload device, in the model's order.
static std::vector<ggml_backend_t> init_backends(const Model & m) {
    std::vector<ggml_backend_t> out;
    for (size_t d = 0; d < m.devices.size(); ++d) {
        out.push_back(ggml_backend_dev_init(m.devices[d], nullptr));
        if (!out.back()) {
            out.pop_back();
            for (ggml_backend_t b : out) ggml_backend_free(b);
            throw std::runtime_error("cannot initialise the backend of " + m.device_names[d]);
        }
    }
    try {
        rpc::check(m.proxies);  // a worker that failed while the weights and the KV cache went over
    } catch (...) {
        for (ggml_backend_t b : out) ggml_backend_free(b);
        throw;
    }
    return out;
}

Engine::Engine(const std::string & path, const EngineParams & params) : params_(params) {
    if (params.n_ctx <= 0) throw std::invalid_argument("n_ctx must be positive");
    device_columns_ = device_columns_from_env();
    if (params.n_threads <= 0 || params.n_threads_batch <= 0) throw std::invalid_argument("thread counts must be positive");
    if (ggml_backend_reg_count() == 0) ggml_backend_load_all();
    try {
        QuietLog quiet(!params.verbose);  // ggml's repack reports every tensor it repacks
        rpc::AbortGuard guard;  // ggml's RPC client aborts where a worker's handshake fails
        load_model(model_, path, { params.n_gpu_layers, params.rpc_servers, params.tensor_split,
                                   params.rpc_timeout_s }, params.kv_overrides);
        resolve_rope(model_.hp, params.rope);
    } catch (const std::invalid_argument & e) {
        // every message names the file
        std::string msg = e.what();
        throw std::invalid_argument(msg.find(path) == std::string::npos ? path + ": " + msg : msg);
    }
    // its messages name the adapter's file, which is what is wrong with it
    if (!params.lora_path.empty()) load_lora(model_, params.lora_path, params.lora_scale);
    init_kv_cache(kv_, model_, params.n_ctx, !params.flash_attn, params.type_k, params.type_v);
    if (device_columns_ < 0) device_columns_ = default_device_columns(model_);

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
    debug_noninvariant_ = env_flag("SPECBOUND_DEBUG_NONINVARIANT");
    debug_device_path_ = env_flag("SPECBOUND_DEBUG_DEVICE_PATH");

    std::vector<ggml_backend_t> backends;
    if (!model_.devices.empty()) {
        // Measured on an H200 (tools/gpu/modes.py): with ggml-cuda's CUDA graphs
        // a replayed single-token pass did not give the bits of the same position
        // in a batch, even with every matmul by single columns; without them,
        // chunks of 1 and of 4 columns were invariant. ggml-cuda reads this once
        // per process, at its first graph: where that already happened, the
        // run-time invariance check finds out and SpecBound stays off.
        if (device_columns_ > 0 && !std::getenv("GGML_CUDA_DISABLE_GRAPHS")) {
#ifdef _WIN32
            _putenv_s("GGML_CUDA_DISABLE_GRAPHS", "1");
#else
            setenv("GGML_CUDA_DISABLE_GRAPHS", "1", 0);
#endif
        }
        devices_ = init_backends(model_);
        backends = devices_;
    }
    backends.push_back(cpu_);
    if (decodes_off_cpu())
        max_nodes_ = std::max(kMaxGraphNodes, kGraphBaseObjects + (size_t) device_objects_per_row_layer(1) *
                                                                     (size_t) model_.hp.n_layer * kMinDeviceRows);
    sched_ = ggml_backend_sched_new(backends.data(), nullptr, (int) backends.size(), max_nodes_, false, !devices_.empty());
    meta_.resize(ggml_tensor_overhead() * max_nodes_ + ggml_graph_overhead_custom(max_nodes_, false));
    graphs_ = std::make_unique<GraphCache>(backends, max_nodes_, meta_.size(), !devices_.empty(), kGraphSlots);
}

void Engine::set_op_timing(bool on) {
    op_timing_ = OpTiming{};
    ggml_backend_sched_eval_callback cb = on ? &OpTiming::callback : nullptr;
    ggml_backend_sched_set_eval_callback(sched_, cb, &op_timing_);
    graphs_->set_eval_callback(cb, &op_timing_);
}

void Engine::set_graph_reuse(bool on) {
    graph_reuse_ = on;
    if (!on) graphs_->clear();
}

int Engine::max_invariant_rows() const {
    if (!decodes_off_cpu() || device_columns_ == 0) return std::numeric_limits<int>::max();
    const size_t per_row = (size_t) device_objects_per_row_layer(device_columns_) * (size_t) model_.hp.n_layer;
    return (int) std::max<size_t>(1, (max_nodes_ - kGraphBaseObjects) / per_row);
}

void Engine::set_device_columns(int n) {
    if (n < 0 || n > 64) throw std::invalid_argument("device_columns must be in [0, 64]");
    device_columns_ = n;
}

void Engine::decide_kernels() {
    auto decide = [&](const ggml_tensor * w) {
        if (!w) return;
        // the repack buffer is the CPU's, though not "host" (its bytes are not the tensor's layout)
        if (model_.file_bytes_of_repacked(w)) kernels_.add_repacked(w, kernels::find_repacked(w->type));
        else if (!w->buffer || ggml_backend_buffer_is_host(w->buffer)) kernels_.decide(w);
    };
    for (const Layer & L : model_.layers)
        for (const ggml_tensor * w : L.matmul_weights()) decide(w);
    decide(model_.output);
}

static std::string device_line(ggml_backend_dev_t dev) {
    return std::string(ggml_backend_dev_name(dev)) + ": " + ggml_backend_dev_description(dev);
}

// "GPU CUDA0: <description>, layers 12-23" / "RPC 10.0.0.2:50052, layers 0-11, output head":
// an RPC device by its worker's address, not ggml's name for it (RPC0, RPC1, ...
// counts every load in the process), so that a verdict keyed by this holds.
static std::string device_layers_line(const Model & m, size_t d) {
    int lo = -1, hi = -1;
    for (int il = 0; il < m.hp.n_layer; ++il)
        if (m.layer_on_gpu(il) && m.layer_device[(size_t) il] == (int) d) { if (lo < 0) lo = il; hi = il; }
    std::string line = m.proxies.empty() ? m.device_names[d] + ": " + ggml_backend_dev_description(m.devices[d])
                                         : m.device_names[d];
    line += lo < 0 ? ", no layers" : ", layers " + std::to_string(lo) + "-" + std::to_string(hi);
    if (m.head_device == (int) d) line += ", output head";
    return line;
}

std::vector<std::string> Engine::device_report() const {
    std::vector<std::string> out = { device_line(ggml_backend_get_device(cpu_)) };
    // the attention path is part of the arithmetic a verdict holds for
    out.push_back(params_.flash_attn ? "attention: flash (fused op)" : "attention: unfused (q.k, softmax, v)");
    // so are the cache types (they set the dot products' arithmetic); named when
    // not llama.cpp's default F16, so verdicts cached for the default still hold
    if (kv_.type_k != GGML_TYPE_F16 || kv_.type_v != GGML_TYPE_F16)
        out.push_back(std::string("KV cache: K ") + ggml_type_name(kv_.type_k) + ", V " + ggml_type_name(kv_.type_v));
    for (size_t d = 0; d < devices_.size(); ++d) out.push_back(device_layers_line(model_, d));
    // the adapter's matmuls are part of the arithmetic too
    if (!model_.lora.weights.empty()) out.push_back(model_.lora.describe());
    if (debug_noninvariant_) out.push_back("SPECBOUND_DEBUG_NONINVARIANT: prompt-phase kernels in the decode phase");
    if (debug_device_path_) out.push_back("SPECBOUND_DEBUG_DEVICE_PATH: the GPU decode path for CPU weights");
    // the decode path off the CPU is part of what a verdict holds for
    if (decodes_off_cpu())
        out.push_back(device_columns_ ? "decode off the CPU: matmuls by " + std::to_string(device_columns_) +
                                            " column(s), attention per query"
                                      : "decode off the CPU: ggml's batched kernels");
    return out;
}

size_t Engine::decode_weight_bytes() const {
    size_t total = ggml_nbytes(model_.output) + (model_.lora.in_graph() ? model_.lora.bytes() : 0);
    for (const Layer & L : model_.layers)
        for (const ggml_tensor * w : L.matmul_weights()) total += w ? ggml_nbytes(w) : 0;
    return total;
}

std::vector<std::pair<std::string, std::string>> Engine::kernel_report() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (int t = 0; t < GGML_TYPE_COUNT; ++t) {
        std::string path = kernels_.repacked_report[t];
        if (!kernels_.report[t].empty()) path += (path.empty() ? "" : "; ") + kernels_.report[t];
        if (!path.empty()) out.push_back({ ggml_type_name((ggml_type) t), path });
    }
    return out;
}

Engine::~Engine() {
    graphs_.reset();  // its graphs and schedulers before the backends
    if (cand_buf_) ggml_backend_buffer_free(cand_buf_);
    if (cand_ctx_) ggml_free(cand_ctx_);
    if (sched_) ggml_backend_sched_free(sched_);
    for (ggml_backend_t b : devices_) ggml_backend_free(b);
    if (cpu_) ggml_backend_free(cpu_);
}

void Engine::release_devices() {
    if (model_.proxies.empty()) return;
    if (broken_.empty()) broken_ = "the model's RPC workers were released";
    // kept graphs and their schedulers (whose compute buffers are on the
    // workers) before the backends; an empty cache over the CPU stands in
    graphs_ = std::make_unique<GraphCache>(std::vector<ggml_backend_t>{ cpu_ }, max_nodes_, meta_.size(), false,
                                           kGraphSlots);
    if (sched_) ggml_backend_sched_free(sched_);
    sched_ = nullptr;
    if (cand_buf_) ggml_backend_buffer_free(cand_buf_);
    cand_buf_ = nullptr;
    cand_w_ = nullptr;
    cand_ids_.clear();
    auto on_worker = [&](ggml_backend_buffer_t b) {
        ggml_backend_dev_t d = ggml_backend_buft_get_device(ggml_backend_buffer_get_type(b));
        return std::find(model_.devices.begin(), model_.devices.end(), d) != model_.devices.end();
    };
    for (std::vector<ggml_backend_buffer_t> * bufs : { &kv_.buffers, &model_.buffers }) {
        auto gone = std::remove_if(bufs->begin(), bufs->end(), [&](ggml_backend_buffer_t b) {
            if (!on_worker(b)) return false;
            ggml_backend_buffer_free(b);
            return true;
        });
        bufs->erase(gone, bufs->end());
    }
    for (ggml_backend_t b : devices_) ggml_backend_free(b);
    devices_.clear();
    model_.proxies.clear();  // the relays last: every buffer above was freed through them
}

void Engine::set_candidates(const std::vector<int32_t> & ids) {
    if (broken()) throw rpc::RpcError(broken_);
    const ggml_tensor * out = model_.output;
    for (int32_t id : ids)
        if (id < 0 || id >= out->ne[1]) throw std::invalid_argument("candidate token id out of range");
    const int64_t capacity = (int64_t) ids.size() + kCandidateGrowth;
    if (!cand_w_ || cand_w_->ne[1] < capacity) {
        graphs_->clear();  // kept graphs read the exit head about to be replaced
        if (cand_buf_) ggml_backend_buffer_free(cand_buf_);
        if (cand_ctx_) ggml_free(cand_ctx_);
        cand_buf_ = nullptr;
        ggml_init_params ip = { ggml_tensor_overhead() * 2, nullptr, true };
        cand_ctx_ = ggml_init(ip);
        cand_w_ = ggml_new_tensor_2d(cand_ctx_, out->type, out->ne[0], std::max<int64_t>(capacity, 256));
        ggml_set_name(cand_w_, "exit_head");
        const bool off_cpu = out->buffer && !ggml_backend_buffer_is_host(out->buffer) && !model_.file_bytes_of_repacked(out);
        ggml_backend_buffer_type_t buft = off_cpu
                                              ? ggml_backend_buffer_get_type(out->buffer)
                                              : ggml_backend_cpu_buffer_type();
        cand_buf_ = ggml_backend_alloc_ctx_tensors_from_buft(cand_ctx_, buft);
        if (!cand_buf_) {
            cand_w_ = nullptr, cand_ids_.clear(), is_cand_.clear();
            throw std::runtime_error("cannot allocate the exit head");
        }
    }
    for (size_t i = 0; i < ids.size(); ++i) copy_head_row(ids[i], i);
    cand_ids_ = ids;
    is_cand_.assign((size_t) out->ne[1], 0);
    for (int32_t id : ids) is_cand_[(size_t) id] = 1;
}

bool Engine::add_candidate(int32_t id) {
    if (broken()) throw rpc::RpcError(broken_);
    if (!cand_w_ || id < 0 || (size_t) id >= is_cand_.size() || is_cand_[(size_t) id]) return false;
    if ((int64_t) cand_ids_.size() >= cand_w_->ne[1]) return false;
    copy_head_row(id, cand_ids_.size());
    cand_ids_.push_back(id);
    is_cand_[(size_t) id] = 1;
    return true;
}

void Engine::copy_head_row(int32_t id, size_t slot) {
    const ggml_tensor * out = model_.output;
    head_row_.resize(out->nb[1]);
    if (const void * file = model_.file_bytes_of_repacked(out))  // a repacked head has no plain rows
        std::memcpy(head_row_.data(), (const char *) file + (size_t) id * out->nb[1], out->nb[1]);
    else
        ggml_backend_tensor_get(out, head_row_.data(), (size_t) id * out->nb[1], out->nb[1]);
    ggml_backend_tensor_set(cand_w_, head_row_.data(), slot * cand_w_->nb[1], out->nb[1]);
}

} // namespace sb
