// One Engine::forward graph: its context, the host data of its inputs, and the
// tensors read back. A graph kept for reuse (engine/graph_cache.h) is refilled:
// its inputs are produced again, in the order they were created, with new data.
#pragma once

#include <ggml.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

namespace sb {

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
    ~ForwardGraph() { clear(); }

    void clear() {
        if (ctx) ggml_free(ctx);
        ctx = nullptr, gf = nullptr, logits = nullptr, checks = nullptr;
        inputs.clear(), exits.clear();
        refill_at_ = kNotRefilling;
    }
    bool built() const { return gf != nullptr; }
    // From here on input() hands back the existing inputs in creation order.
    void start_refill() { refill_at_ = 0; }
    // Every input was produced again (a refill that made fewer is a bug).
    void end_refill() {
        if (refill_at_ != inputs.size()) throw std::logic_error("a reused graph was refilled with fewer inputs");
        refill_at_ = kNotRefilling;
    }

    // A new input tensor holding data, or, while refilling, the next existing
    // one with data as its new bytes (its type and shape must be the same).
    template <typename T>
    ggml_tensor * input(ggml_type type, const T * data, size_t n, int64_t ne0, int64_t ne1 = 1) {
        const uint8_t * b = (const uint8_t *) data, * e = (const uint8_t *) (data + n);
        if (refill_at_ != kNotRefilling) {
            if (refill_at_ >= inputs.size()) throw std::logic_error("a reused graph was refilled with more inputs");
            InputData & in = inputs[refill_at_++];
            if (in.t->type != type || in.t->ne[0] != ne0 || in.t->ne[1] != ne1)
                throw std::logic_error("a reused graph's input changed its shape");
            in.bytes.assign(b, e);
            return in.t;
        }
        ggml_tensor * t = ggml_new_tensor_2d(ctx, type, ne0, ne1);
        ggml_set_input(t);
        inputs.push_back({ t, std::vector<uint8_t>(b, e) });
        return t;
    }
    template <typename T>
    ggml_tensor * input(ggml_type type, const std::vector<T> & data, int64_t ne0, int64_t ne1 = 1) {
        return input(type, data.data(), data.size(), ne0, ne1);
    }

  private:
    static constexpr size_t kNotRefilling = SIZE_MAX;
    size_t refill_at_ = kNotRefilling;
};

} // namespace sb
