#include "engine/exit_maps.h"

#include <ggml-cpu.h>

#include <stdexcept>

namespace sb {

void ExitMaps::release(Owned & o) {
    if (o.buf) ggml_backend_buffer_free(o.buf);
    if (o.ctx) ggml_free(o.ctx);
    o = Owned{};
}

void ExitMaps::clear() {
    ++generation_;
    for (auto & kv : maps_) release(kv.second);
    maps_.clear();
}

void ExitMaps::set(int layer, int n_embd, int rank, const float * down, const float * up, const float * bias) {
    if (rank < 1 || rank > n_embd) throw std::invalid_argument("exit map rank must be in 1..n_embd");
    ++generation_;
    auto it = maps_.find(layer);
    if (it != maps_.end()) release(it->second), maps_.erase(it);
    Owned o;
    ggml_init_params ip = { ggml_tensor_overhead() * 3, nullptr, true };
    o.ctx = ggml_init(ip);
    o.map.down = ggml_new_tensor_2d(o.ctx, GGML_TYPE_F32, n_embd, rank);
    o.map.up = ggml_new_tensor_2d(o.ctx, GGML_TYPE_F32, rank, n_embd);
    o.map.bias = ggml_new_tensor_1d(o.ctx, GGML_TYPE_F32, n_embd);
    // host memory: the exit head of a GPU model reads the map on the CPU
    o.buf = ggml_backend_alloc_ctx_tensors_from_buft(o.ctx, ggml_backend_cpu_buffer_type());
    if (!o.buf) {
        release(o);
        throw std::runtime_error("cannot allocate an exit map");
    }
    ggml_backend_tensor_set(o.map.down, down, 0, ggml_nbytes(o.map.down));
    ggml_backend_tensor_set(o.map.up, up, 0, ggml_nbytes(o.map.up));
    ggml_backend_tensor_set(o.map.bias, bias, 0, ggml_nbytes(o.map.bias));
    o.rank = rank;
    maps_.emplace(layer, o);
}

std::map<int, int> ExitMaps::ranks() const {
    std::map<int, int> r;
    for (const auto & kv : maps_) r[kv.first] = kv.second.rank;
    return r;
}

ggml_tensor * ExitMaps::apply(ggml_context * ctx, const ExitMap & m, ggml_tensor * x) {
    ggml_tensor * low = ggml_mul_mat(ctx, m.down, x);   // [rank, n]
    ggml_tensor * back = ggml_mul_mat(ctx, m.up, low);  // [n_embd, n]
    return ggml_add(ctx, ggml_add(ctx, x, back), m.bias);
}

} // namespace sb
