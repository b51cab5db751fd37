// Exit translators (a "tuned lens"): per exit layer l, an affine map that moves
// a shallow state h_l toward the top layer's state before the exit head reads
// it, h + up (down h) + bias, fitted at calibration (specbound_cpp.calibrate).
// Only drafts read them: the deep pass checks every draft with the full model,
// so a map changes what is drafted, never what is emitted.
#pragma once

#include <ggml-backend.h>
#include <ggml.h>

#include <cstdint>
#include <map>

namespace sb {

struct ExitMap {
    ggml_tensor * down = nullptr;  // [n_embd, rank]: h -> rank coordinates
    ggml_tensor * up = nullptr;    // [rank, n_embd]: back to the state
    ggml_tensor * bias = nullptr;  // [n_embd]
};

class ExitMaps {
  public:
    ExitMaps() = default;
    ExitMaps(const ExitMaps &) = delete;
    ExitMaps & operator=(const ExitMaps &) = delete;
    ~ExitMaps() { clear(); }

    // down: [rank][n_embd] row-major, up: [n_embd][rank], bias: [n_embd].
    // Replaces the map of `layer`. Throws std::runtime_error if it cannot allocate.
    void set(int layer, int n_embd, int rank, const float * down, const float * up, const float * bias);
    void clear();
    const ExitMap * find(int layer) const {
        auto it = maps_.find(layer);
        return it == maps_.end() ? nullptr : &it->second.map;
    }
    bool empty() const { return maps_.empty(); }
    std::map<int, int> ranks() const;  // layer -> rank
    // Counts the changes (set, clear): a graph built on the maps holds their
    // tensors, so a reused graph is keyed by this.
    uint64_t generation() const { return generation_; }

    // x [n_embd, n] (all exited at `layer`) -> x + up (down x) + bias
    static ggml_tensor * apply(ggml_context * ctx, const ExitMap & m, ggml_tensor * x);

  private:
    struct Owned {
        ggml_context * ctx = nullptr;
        ggml_backend_buffer_t buf = nullptr;
        ExitMap map;
        int rank = 0;
    };
    std::map<int, Owned> maps_;
    uint64_t generation_ = 0;
    static void release(Owned & o);
};

} // namespace sb
