// The engine's core primitive: run each row of a batch through its own layer
// range [enter, exit), reading hidden states (or embedding tokens when it enters
// at layer 0), writing the KV cache of every layer it passes, and returning its
// hidden state at exit and, if asked, the logits of the full model.
//
// Early exit, the deep pass and plain decoding are all calls of forward():
// plan (engine/forward_plan.h, pure), build the graph, compute, read back
// (engine/forward.cpp).
#pragma once

#include "engine/exit_maps.h"
#include "engine/forward_plan.h"
#include "engine/op_timing.h"
#include "kernels/kernels.h"
#include "kv/kv_cache.h"
#include "model/model.h"

#include <ggml-backend.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sb {

struct ForwardGraph;
struct GraphBuilder;
struct GraphInputs;
class GraphCache;
struct Segment;

struct EngineParams {
    int n_ctx = 2048;
    int n_threads = 2;
    int n_threads_batch = 2;
    int n_gpu_layers = 0;
    // RPC workers ("host:port") the offloaded layers are split over (by
    // tensor_split, else by free memory), and how long one of their answers
    // may take before the worker counts as failed
    std::vector<std::string> rpc_servers;
    std::vector<float> tensor_split;
    double rpc_timeout_s = 300;
    // attention as llama.cpp's flash-attention op (true) or unfused (false,
    // llama-cpp-python's default): each gives that setting's bits
    bool flash_attn = false;
    // the KV cache's types (llama-cpp-python's type_k / type_v; kv/kv_cache.h)
    ggml_type type_k = GGML_TYPE_F16, type_v = GGML_TYPE_F16;
    bool verbose = false;  // ggml's messages while loading (repacking)
    RopeOverrides rope;    // llama-cpp-python's rope / YaRN options (default: the model's own)
    std::vector<KvOverride> kv_overrides;  // llama-cpp-python's kv_overrides (model/kv_override.h)
    std::string lora_path;    // a GGUF LoRA adapter ("": none), model/lora.h
    float lora_scale = 1.0f;  // its scale, as llama-cpp-python's lora_scale
};

// Where the time of forward() goes, summed over calls: planning and making the
// inputs, building and allocating a graph (none when one is reused), computing
// it (inputs copied in, ggml's compute), reading the outputs back.
struct Timing {
    double plan_ms = 0, build_ms = 0, compute_ms = 0, read_ms = 0;
    int64_t n_calls = 0, n_reused = 0;
};

class Engine {
  public:
    Engine(const std::string & path, const EngineParams & params);
    ~Engine();

    const HParams & hparams() const { return model_.hp; }
    // the final norm's weight (what the LM head's input is normed by)
    const ggml_tensor * output_norm() const { return model_.output_norm; }
    int n_ctx() const { return kv_.n_ctx; }
    // the KV cache: its cells say which tokens it holds at every layer.
    // forward() keeps them (see there); callers roll back rejected drafts
    // (cells.remove_from), forget the cache (clear) and reuse its prefix.
    KvCache & kv() { return kv_; }
    const KvCache & kv() const { return kv_; }

    // hidden_in: [rows.size(), n_embd], row i read when rows[i].enter > 0 (may be null otherwise)
    // hidden_out: [rows.size(), n_embd] state at exit (may be null)
    // logits_out: [count(rows.logits), n_vocab] in row order (may be null if none)
    // check_out: [count(rows.check), n_candidates] exit-head logits in row order (may be null if none)
    // invariant: decode-phase kernels, bitwise independent of the batch
    // The cells follow what the call wrote, row by row in order: a row that
    // reaches n_layer now holds its token at every layer (cells.write(pos):
    // it replaces the cells from its position on); a row that stops short
    // leaves its cell, if the cells held it, with other tokens' layers below
    // or above, so the cells end before it. Rows entering past layer 0 are
    // taken to have their lower layers written by earlier calls.
    void forward(const std::vector<Row> & rows, const float * hidden_in, float * hidden_out, float * logits_out,
                 bool invariant, float * check_out = nullptr);

    // Exit-head vocabulary: the LM head's rows for these tokens, copied once in
    // the head's own (quantized) type, so a check costs n_candidates / n_vocab of
    // the full head.
    void set_candidates(const std::vector<int32_t> & ids);
    const std::vector<int32_t> & candidates() const { return cand_ids_; }
    // Adds a token to the exit-head vocabulary (its LM-head row copied in) if it
    // is absent and the head has room (kCandidateGrowth rows past the last
    // set_candidates): a request tends to say again what it has said. A draft
    // outside the vocabulary is impossible, so coverage caps acceptance.
    // Returns whether the token was added.
    bool add_candidate(int32_t id);
    static constexpr int64_t kCandidateGrowth = 1024;
    // Exit translators per exit layer (engine/exit_maps.h): the exit head reads
    // the mapped state of a row that exits where a map is set.
    ExitMaps & exit_maps() { return exit_maps_; }
    const ExitMaps & exit_maps() const { return exit_maps_; }

    // Decode-phase matmul path per weight type of this model, e.g.
    // {"q4_K", "sb_avx2_q4_K"}, {"q6_K", "ggml vec_dot [self-check failed: ...]"}
    std::vector<std::pair<std::string, std::string>> kernel_report() const;
    // The devices the graphs run on, one line each ("CPU: <description>",
    // "GPU <name>: <description>, last N layers"), and the debug switch below
    // when set: what a cached batch-invariance verdict is keyed by.
    std::vector<std::string> device_report() const;
    // SPECBOUND_DEBUG_NONINVARIANT=1 (read at construction): the decode phase uses
    // the prompt-phase kernels, which are not batch-invariant. For testing the
    // run-time invariance check and its fallback only.
    bool debug_noninvariant() const { return debug_noninvariant_; }
    // Decode-phase matmuls of weights off the CPU run in chunks of this many
    // columns, attention per query (GraphBuilder::device_columns); 0: ggml's
    // batched kernels, not batch-invariant on a GPU. SPECBOUND_DEVICE_COLUMNS sets
    // it at construction (default 4: ggml-cuda's mmvq splits a dot product the
    // same way for 1-4 columns; 1 where float weights sit off the CPU, whose
    // 4-column chunks were not invariant). SPECBOUND_DEBUG_DEVICE_PATH=1 takes the same
    // path for CPU weights too (tests: it must give the CPU path's bits).
    int device_columns() const { return device_columns_; }
    static constexpr int kDefaultDeviceColumns = 4;
    // whether the decode path for weights off the CPU can run (a GPU, or the debug switch)
    bool decodes_off_cpu() const { return !devices_.empty() || debug_device_path_; }
    // RPC: a worker failed during a call (it threw rpc::RpcError); the remote
    // state is gone and every later forward() throws: the model must be reloaded.
    bool broken() const { return !broken_.empty(); }
    // RPC: frees everything held on the workers and closes the connections to
    // them, keeping the rest (the vocabulary, the hyper-parameters); the engine
    // is broken from then on. A worker serves one client at a time: a broken
    // engine's connections would keep the next load waiting.
    void release_devices();
    void set_device_columns(int n);
    bool debug_device_path() const { return debug_device_path_; }
    // bytes of the matmul weights one full-depth token reads (layers + LM head)
    size_t decode_weight_bytes() const;

    // One matmul of weight tensor `name` (its first n_rows rows; <= 0: all) with
    // x [n, x_cols == k] through a decode path: "ggml" (plain mul_mat, use_ref on),
    // "detour" (vec_dot via the pre-quantized input) or "ours" (our kernel,
    // without the self-check). Returns [n, rows]. For the kernel probe and tests.
    std::vector<float> probe_matmul(const std::string & name, const float * x, int64_t n, int64_t x_cols,
                                    const std::string & path, int n_threads, int64_t n_rows = 0);

    Timing timing;
    // Decode-phase graphs are kept (kGraphSlots shapes) and reused when a call
    // has the shape of a kept one; off: every call builds its graph (tests
    // compare the two). Each kept graph holds 3-4.5 MiB (scheduler, arena,
    // compute buffer; SmolLM2, 2026-12-06): 4 keep plain decoding and a
    // round's draft and verification shapes without growing memory much.
    void set_graph_reuse(bool on);
    bool graph_reuse() const { return graph_reuse_; }
    static constexpr int kGraphSlots = 4;
    // Compute time by kind of operation (engine/op_timing.h), summed while on;
    // turning it on clears what was summed. Slows every call: for the profile.
    void set_op_timing(bool on);
    const OpTiming & op_timing() const { return op_timing_; }

    static constexpr size_t kMaxGraphNodes = 16384;
    // On the decode path off the CPU, per-column matmuls and per-query attention
    // put graph objects in per row and layer: measured on SmolLM2 (30 layers),
    // 34-45 with single columns, 14-17 with chunks of 4; this bounds both.
    static int device_objects_per_row_layer(int columns) { return 12 + 36 / std::max(columns, 1); }
    // objects of a graph besides its rows (inputs, the LM head, exit checks)
    static constexpr size_t kGraphBaseObjects = 4096;
    // the graph is sized for this many rows by single columns at full depth
    static constexpr int kMinDeviceRows = 64;
    // Rows one decode-phase (invariant) forward may hold: kMinDeviceRows or more
    // on the decode path off the CPU, unbounded elsewhere. forward() throws
    // std::length_error past it; callers with longer inputs go in chunks.
    int max_invariant_rows() const;

  private:
    Model model_;
    KvCache kv_;
    EngineParams params_;
    ggml_backend_t cpu_ = nullptr;
    std::vector<ggml_backend_t> devices_;  // one per Model::devices
    std::string broken_;                  // why the engine cannot be used (RPC), "" while it can
    void forward_body(const std::vector<Row> & rows, const float * hidden_in, float * hidden_out,
                      float * logits_out, bool invariant, float * check_out);
    ggml_backend_sched_t sched_ = nullptr;
    void (*set_use_ref_)(ggml_backend_t, bool) = nullptr;
    bool debug_noninvariant_ = false;
    int device_columns_ = kDefaultDeviceColumns;
    bool debug_device_path_ = false;
    size_t max_nodes_ = kMaxGraphNodes;
    std::vector<uint8_t> meta_;  // graph-building arena of graphs not kept (prompts, probes)
    std::unique_ptr<GraphCache> graphs_;
    bool graph_reuse_ = true;
    OpTiming op_timing_;
    ggml_context * cand_ctx_ = nullptr;
    ggml_backend_buffer_t cand_buf_ = nullptr;
    ggml_tensor * cand_w_ = nullptr;  // [n_embd, capacity] in the LM head's type
    std::vector<int32_t> cand_ids_;
    std::vector<uint8_t> is_cand_;  // [n_vocab] membership of cand_ids_
    ExitMaps exit_maps_;
    std::vector<uint8_t> head_row_;  // scratch: one LM-head row on its way into the exit head
    void copy_head_row(int32_t id, size_t slot);
    kernels::KernelTable kernels_;
    void decide_kernels();

    // the stages of forward() (engine/forward.cpp)
    void record_cells(const std::vector<Row> & rows);
    RowLimits row_limits(bool has_hidden_in) const;
    KvInputs segment_cells(const SegmentPlan & sp, const std::vector<Row> & rows) const;
    std::vector<int64_t> graph_key(const ForwardPlan & plan, const std::vector<KvInputs> & kv_in, size_t n_rows,
                                   bool has_hidden) const;
    GraphInputs make_inputs(ForwardGraph & g, const ForwardPlan & plan, const std::vector<Row> & rows,
                            const float * hidden_in, const std::vector<KvInputs> & kv_in) const;
    void build_graph(ForwardGraph & g, uint8_t * meta, size_t meta_bytes, const ForwardPlan & plan,
                     const std::vector<Row> & rows, const float * hidden_in, const std::vector<KvInputs> & kv_in,
                     bool invariant);
    ggml_tensor * leave(ForwardGraph & g, std::pair<ggml_tensor *, ggml_tensor *> columns, ggml_tensor * cur);
    ggml_tensor * join(ForwardGraph & g, const SegmentPlan & seg, ggml_tensor * ids, ggml_tensor * hidden,
                       ggml_tensor * cur);
    Segment segment_inputs(ForwardGraph & g, const SegmentPlan & sp, const KvInputs & kin) const;
    void build_heads(ForwardGraph & g, GraphBuilder & b, const ForwardPlan & plan, const GraphInputs & in);
    ggml_tensor * map_exit_states(ForwardGraph & g, const ForwardPlan & plan, ggml_tensor * x) const;
    void allocate(ForwardGraph & g, ggml_backend_sched_t sched);
    void compute(ForwardGraph & g, ggml_backend_sched_t sched, bool invariant);
    void read_outputs(const ForwardGraph & g, const ForwardPlan & plan, float * hidden_out, float * logits_out,
                      float * check_out) const;
};

} // namespace sb
