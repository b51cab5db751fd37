// Decode-phase graphs kept for reuse. A call whose graph has the shape of one
// kept here (the same plan, the same attended cells, the same exit head) only
// refills its inputs and computes: no graph build, no scheduling, no
// allocation. Each kept graph has its own scheduler, since a scheduler holds
// the splits and the allocation of the last graph it allocated.
#pragma once

#include "engine/forward_graph.h"

#include <ggml-backend.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace sb {

struct GraphSlot {
    std::vector<int64_t> key;  // empty: holds no graph
    ggml_backend_sched_t sched = nullptr;
    std::unique_ptr<uint8_t[]> meta;  // the graph's object arena
    ForwardGraph graph;
    uint64_t last_use = 0;
};

class GraphCache {
  public:
    // n_slots graphs at most; each slot's scheduler and arena are made at its first use
    GraphCache(std::vector<ggml_backend_t> backends, size_t max_nodes, size_t meta_bytes, bool op_offload, int n_slots);
    ~GraphCache();
    GraphCache(const GraphCache &) = delete;
    GraphCache & operator=(const GraphCache &) = delete;

    // the slot holding a graph of this key, or null
    GraphSlot * find(const std::vector<int64_t> & key);
    // the least recently used slot, emptied, for a new graph of this key (its
    // scheduler reset, its arena free): the caller builds and allocates the graph
    GraphSlot & take(const std::vector<int64_t> & key);
    // a slot whose graph failed to build or allocate holds none
    static void drop(GraphSlot & s) { s.graph.clear(), s.key.clear(); }
    // forget every graph (what they point at changed: exit head, exit maps)
    void clear();
    size_t meta_bytes() const { return meta_bytes_; }
    // the eval callback of every scheduler, present and to come (null: none)
    void set_eval_callback(ggml_backend_sched_eval_callback cb, void * user_data);

  private:
    std::vector<ggml_backend_t> backends_;
    size_t max_nodes_, meta_bytes_;
    bool op_offload_;
    std::vector<std::unique_ptr<GraphSlot>> slots_;
    uint64_t clock_ = 0;
    ggml_backend_sched_eval_callback eval_cb_ = nullptr;
    void * eval_ud_ = nullptr;
};

} // namespace sb
