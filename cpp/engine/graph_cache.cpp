#include "engine/graph_cache.h"

#include <stdexcept>

namespace sb {

GraphCache::GraphCache(std::vector<ggml_backend_t> backends, size_t max_nodes, size_t meta_bytes, bool op_offload,
                       int n_slots)
    : backends_(std::move(backends)), max_nodes_(max_nodes), meta_bytes_(meta_bytes), op_offload_(op_offload) {
    for (int i = 0; i < n_slots; ++i) slots_.push_back(std::make_unique<GraphSlot>());
}

GraphCache::~GraphCache() {
    for (auto & s : slots_) {
        s->graph.clear();
        if (s->sched) ggml_backend_sched_free(s->sched);
    }
}

GraphSlot * GraphCache::find(const std::vector<int64_t> & key) {
    for (auto & s : slots_)
        if (!s->key.empty() && s->key == key) {
            s->last_use = ++clock_;
            return s.get();
        }
    return nullptr;
}

GraphSlot & GraphCache::take(const std::vector<int64_t> & key) {
    GraphSlot * best = slots_.front().get();
    for (auto & s : slots_)
        if (s->last_use < best->last_use) best = s.get();
    GraphSlot & s = *best;
    drop(s);
    if (!s.sched) {
        s.sched = ggml_backend_sched_new(backends_.data(), nullptr, (int) backends_.size(), max_nodes_, false, op_offload_);
        if (!s.sched) throw std::runtime_error("cannot create a graph scheduler");
        s.meta.reset(new uint8_t[meta_bytes_]);  // not zeroed: pages stay untouched until used
        ggml_backend_sched_set_eval_callback(s.sched, eval_cb_, eval_ud_);
    }
    ggml_backend_sched_reset(s.sched);
    s.key = key;
    s.last_use = ++clock_;
    return s;
}

void GraphCache::set_eval_callback(ggml_backend_sched_eval_callback cb, void * user_data) {
    eval_cb_ = cb, eval_ud_ = user_data;
    for (auto & s : slots_)
        if (s->sched) ggml_backend_sched_set_eval_callback(s->sched, cb, user_data);
}

void GraphCache::clear() {
    for (auto & s : slots_) drop(*s);
}

} // namespace sb
