// Batch-invariant quantized matmul kernels for the decode phase.
//
// ggml's CPU mul_mat computes one token with vec_dot and several with other
// kernels (llamafile's sgemm, the tiled K-quant path, repacked gemm), which
// sum in other orders. Our kernels compute every output element with exactly
// the arithmetic of ggml's own single-token vec_dot for that weight type, but
// for several activation columns per pass over a weight row: the weight
// block is unpacked once and each column runs the same instruction sequence
// into accumulators of its own. A column's result therefore does not depend
// on the batch (invariant by construction), equals llama.cpp's decode bit for
// bit, and a batch of k costs less than k single tokens.
//
// A kernel is used only after a load-time self-check against ggml's vec_dot
// on the model's own weights (another CPU, another ggml build: it falls back).
#pragma once

#include "kernels/repacked.h"

#include <ggml.h>
#include <ggml-cpu.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

namespace sb::kernels {

// dst[c * dst_col + r] = dot(weight row r, activation column c), for rows
// [r0, r1) and columns [0, n). Activations are already quantized to the
// weight type's vec_dot type (ggml's own quantizer).
struct Args {
    const uint8_t * w = nullptr;  // weight rows
    size_t w_row = 0;             // bytes between weight rows
    const uint8_t * x = nullptr;  // quantized activation columns
    size_t x_col = 0;             // bytes between columns
    int64_t k = 0;                // elements per row
    int64_t n = 0;                // columns
    float * dst = nullptr;
    int64_t dst_col = 0;          // floats between output columns
    ggml_vec_dot_t vec_dot = nullptr;  // ggml's, for the weight type: used for single columns
};

using RowsFn = void (*)(const Args & a, int64_t r0, int64_t r1);

struct Kernel {
    const char * name;   // e.g. "sb_avx2_q4_K"
    ggml_type type;      // weight type
    ggml_type act_type;  // activation type (ggml's vec_dot_type for `type`)
    RowsFn rows;
};

// Our kernel for weight type t on this CPU and this ggml build, or null.
// SPECBOUND_KERNELS=ggml switches all of them off (ggml's vec_dot path),
// SPECBOUND_KERNELS=avx2 keeps to the AVX2 build on an AVX-512 VNNI CPU.
const Kernel * find_kernel(ggml_type t);

// this CPU has AVX2, FMA and F16C (what the AVX2 builds need)
bool cpu_has_avx2_fma_f16c();

// this CPU has AVX-512 F, BW, VL and VNNI, and BMI2 (what the AVX-512 VNNI builds need)
bool cpu_has_avx512_vnni();

// x86 kernels by instruction set (null where the type has none); call only
// on a CPU with those features (find_kernel checks)
const Kernel * x86_avx2_kernel(ggml_type t);        // AVX2, FMA, F16C
const Kernel * x86_avx512vnni_kernel(ggml_type t);  // and AVX-512 F, BW, VL, VNNI

// Bitwise comparison with ggml's vec_dot on rows of weight tensor w (host
// memory), for batches of 1, 2, 3, 5, 8 and 16 columns of varied activations.
// False (with the reason in *why) if any element differs.
bool self_check(const Kernel & k, const ggml_tensor * w, std::string * why);

// llamafile's sgemm takes these weight types for batches of 2 and more (on any
// CPU it is built for), so a plain mul_mat of them is not batch-invariant;
// GraphBuilder::matmul detours around it where no kernel of ours is used.
bool sgemm_may_take(ggml_type t);

// n columns of k floats quantized with ggml's own quantizer for act_type,
// one after the other (ggml_row_size(act_type, k) bytes each)
std::vector<uint8_t> quantize_columns(ggml_type act_type, const float * x, int64_t n, int64_t k);

// Graph ops (CPU backend): quantize x [k, n] to act_type ([row bytes, n] as I8),
// and out [rows of w, n] = w . x from that quantized copy.
ggml_tensor * quantize_op(ggml_context * ctx, ggml_tensor * x, ggml_type act_type);
ggml_tensor * matmul_op(ggml_context * ctx, const Kernel * k, ggml_tensor * w, ggml_tensor * xq);

} // namespace sb::kernels

namespace sb::kernels {

// Which kernel each weight type of a model uses in the decode phase, decided
// once at load (find_kernel + self_check on the model's own weights).
struct KernelTable {
    KernelTable() = default;
    KernelTable(const KernelTable &) = delete;  // the index points into this table's own deque
    KernelTable & operator=(const KernelTable &) = delete;

    const Kernel * by_type[GGML_TYPE_COUNT] = {};
    std::string report[GGML_TYPE_COUNT];  // path per type used by the model ("" where unused)

    const Kernel * get(ggml_type t) const { return by_type[t]; }
    // Decide for the type of weight tensor w (first call per type only).
    void decide(const ggml_tensor * w);

    // Weights repacked as llama.cpp repacks them (model/load.cpp) and the gemv
    // that decodes them; addresses stay put (graph ops hold them).
    std::deque<RepackedWeight> repacked;
    std::string repacked_report[GGML_TYPE_COUNT];
    void add_repacked(const ggml_tensor * w, const RepackedKernel * k);
    // looked up by every matmul of every graph build: hashed
    const RepackedWeight * repacked_of(const ggml_tensor * w) const {
        auto it = repacked_index_.find(w);
        return it == repacked_index_.end() ? nullptr : it->second;
    }

  private:
    std::unordered_map<const ggml_tensor *, const RepackedWeight *> repacked_index_;
};

} // namespace sb::kernels
