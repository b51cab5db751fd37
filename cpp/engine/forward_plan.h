// Planning one Engine::forward call from its rows alone (no ggml, no model):
// which rows are active in which layers, where their states join and leave,
// and which exit states the heads read. Engine::forward builds the graph the
// plan describes; tests check plans without a model (tests/test_segments.py).
#pragma once

#include <cstdint>
#include <vector>

namespace sb {

struct Row {
    int32_t token = 0;   // embedded when enter == 0
    int32_t pos = 0;     // position == KV cell
    int32_t enter = 0;   // first layer computed for this row
    int32_t exit = 0;    // layer after the last one computed (n_layer: full depth)
    bool logits = false; // final norm + LM head (requires exit == n_layer)
    bool check = false;  // exit head at the exit layer: final norm + candidate rows of the LM head
};

// What rows may ask of one engine and call.
struct RowLimits {
    int n_layer = 0;
    int n_ctx = 0;
    int n_vocab = 0;
    bool has_candidates = false;  // an exit head is set (Row::check)
    bool has_hidden_in = false;   // hidden states are given (rows entering past layer 0)
};

// Layers [begin, end) run on one set of rows. At `begin` the rows entering
// there join after the rows that go on (after any exit at `begin`).
struct SegmentPlan {
    int begin = 0, end = 0;
    std::vector<int> joining;  // request rows entering at begin, in request order
    std::vector<int> rows;     // the active request rows, in column order
};

// Rows whose layer range ends at `layer`: their states leave the running state.
struct ExitPlan {
    int layer = 0;
    std::vector<int> rows;         // request rows, in column order of the exit state
    std::vector<int32_t> columns;  // their columns in the running state
    std::vector<int32_t> kept;     // columns of the rows that go on
    bool whole = false;            // every row leaves: the running state itself is the exit state
};

// The exit states a head (logits or exit check) reads: columns of all exit
// states side by side, in request order of the rows that asked.
struct HeadPlan {
    std::vector<int32_t> columns;  // empty: no head
    bool whole = false;            // exactly all exit columns, in order: no gather
};

struct ForwardPlan {
    std::vector<SegmentPlan> segments;  // in layer order
    std::vector<ExitPlan> exits;        // in layer order; the last leaves at the top layer
    HeadPlan logits, check;
    bool reads_hidden = false;          // some row enters past layer 0
};

// Throws std::invalid_argument (std::out_of_range for a position outside the
// context) on a row the engine cannot run, or on rows that leave a layer
// between their lowest and highest one without any row.
void check_rows(const std::vector<Row> & rows, const RowLimits & limits);
ForwardPlan plan_forward(const std::vector<Row> & rows, const RowLimits & limits);

} // namespace sb
