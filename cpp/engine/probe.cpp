// Engine::probe_matmul: one matmul of a model weight through a chosen decode
// path, for the kernel probe tool and the kernel tests.
#include "engine/engine.h"
#include "graph/builder.h"

#include <ggml-cpu.h>

#include <cstring>
#include <stdexcept>

namespace sb {

std::vector<float> Engine::probe_matmul(const std::string & name, const float * x, int64_t n, int64_t x_cols,
                                        const std::string & path, int n_threads, int64_t n_rows) {
    ggml_tensor * w = ggml_get_tensor(model_.ctx_meta, name.c_str());
    if (!w || ggml_n_dims(w) != 2) throw std::invalid_argument("no 2-d weight tensor named " + name);
    const kernels::RepackedWeight * repacked = kernels_.repacked_of(w);
    if (w->buffer && !ggml_backend_buffer_is_host(w->buffer) && !repacked)
        throw std::invalid_argument(name + " is not on the CPU");
    if (n <= 0 || n_threads <= 0) throw std::invalid_argument("n and n_threads must be positive");
    if (x_cols != w->ne[0]) throw std::invalid_argument("x must have " + std::to_string(w->ne[0]) + " columns");
    const int64_t k = w->ne[0], rows = n_rows > 0 ? std::min<int64_t>(n_rows, w->ne[1]) : w->ne[1];
    // a repacked weight: ggml's path only whole (a view has no repack traits), ours in whole groups, no detour
    if (repacked && (path == "detour" || (path == "ggml" && rows != w->ne[1]) || rows % repacked->kernel->interleave))
        throw std::invalid_argument(name + " is repacked: probe it whole, by the ggml or ours path");

    ggml_init_params ip = { meta_.size(), meta_.data(), true };
    ggml_context * ctx = ggml_init(ip);
    ggml_cgraph * gf = ggml_new_graph_custom(ctx, max_nodes_, false);
    ggml_tensor * wv = rows == w->ne[1] ? w : ggml_view_2d(ctx, w, k, rows, w->nb[1], 0);
    ggml_tensor * xt = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, k, n);
    ggml_set_input(xt);
    ggml_tensor * out;
    kernels::KernelTable forced;  // "ours": our kernel without the self-check; "detour": none (outlives the graph)
    if (path == "ggml") {
        out = ggml_mul_mat(ctx, wv, xt);  // ggml's own choice of kernel for this batch
    } else if (path == "detour" || path == "ours") {
        if (path == "ours" && repacked) {
            forced.add_repacked(wv, repacked->kernel);
        } else if (path == "ours") {
            forced.by_type[w->type] = kernels::find_kernel(w->type);
            if (!forced.by_type[w->type]) throw std::invalid_argument(std::string("no kernel of ours for ") + ggml_type_name(w->type));
        }
        GraphBuilder b(ctx, gf, model_, kv_, true, &forced);
        out = b.base_matmul(wv, xt);  // the weight's path, without a LoRA adapter's term
    } else {
        ggml_free(ctx);
        throw std::invalid_argument("path must be ggml, detour or ours");
    }
    ggml_set_output(out);
    ggml_build_forward_expand(gf, out);
    ggml_backend_sched_reset(sched_);
    if (!ggml_backend_sched_alloc_graph(sched_, gf)) {
        ggml_free(ctx);
        throw std::runtime_error("failed to allocate the probe graph");
    }
    ggml_backend_tensor_set(xt, x, 0, ggml_nbytes(xt));
    ggml_backend_cpu_set_n_threads(cpu_, n_threads);
    set_use_ref_(cpu_, true);
    const ggml_status st = ggml_backend_sched_graph_compute(sched_, gf);
    std::vector<float> res((size_t) rows * n);
    if (st == GGML_STATUS_SUCCESS) ggml_backend_tensor_get(out, res.data(), 0, ggml_nbytes(out));
    ggml_free(ctx);
    if (st != GGML_STATUS_SUCCESS) throw std::runtime_error("probe graph compute failed");
    return res;
}

} // namespace sb
