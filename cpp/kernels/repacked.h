// Decode-phase matmuls of weights that llama.cpp repacks (CPU_REPACK: Q4_0,
// Q4_K, IQ4_NL, MXFP4 with AVX2, Q2_K with AVX-512 on x86), computed with the
// arithmetic llama.cpp uses for one token on them: ggml's repacked gemv.
//
// llama-cpp-python loads these weights interleaved by 8 rows and decodes a
// token with ggml_gemv_<type>_8x8_*, whose float epilogue (one FMA per row and
// super-block into lanes of their own, no horizontal sum) is not vec_dot's.
// Our weights sit in the same repacked buffer (model/load.cpp), and each
// column of a decode batch runs that very gemv over a block of rows small
// enough to stay in L1 while the batch's columns pass over it: a column's
// bits are a single token's by construction, whatever the batch.
#pragma once

#include <ggml.h>

#include <cstddef>
#include <cstdint>

namespace sb::kernels {

// ggml's gemv over repacked rows: s[0..nc) = rows [0, nc) of vx . column vy
using GemvFn = void (*)(int n, float * s, size_t bs, const void * vx, const void * vy, int nr, int nc);

// Our multi-column kernel with the gemv's per-row arithmetic: rows [r0, r1)
// (whole groups) of dst[c * dst_col + r] for columns c < n, from activation
// columns x_col bytes apart.
using RepackedColumnsFn = void (*)(const void * w, size_t row_bytes, int64_t k, const void * xq, size_t x_col,
                                   int64_t n, float * dst, size_t dst_col, int64_t r0, int64_t r1);

struct RepackedKernel {
    const char * name;   // ggml's gemv symbol
    ggml_type type;      // weight type
    ggml_type act_type;  // what the activation is quantized to (the repack's param type)
    int interleave;      // rows per repacked group
    GemvFn gemv;
    RepackedColumnsFn columns;  // ours for several columns where this CPU has one, else null
    const char * columns_isa = nullptr;  // which build of ours: "sb_avx512vnni" or "sb_avx2"
    // where `columns` exists, a single column (plain decoding) goes through it
    // too: it measured faster than ggml's gemv (docs/bench/floor-2026-12-07)
    bool columns_for_one = false;
};

// x86 multi-column kernels by instruction set (x86_repacked_avx512.cpp,
// x86_repacked_avx2.cpp); call only on a CPU with those features
RepackedColumnsFn x86_avx512vnni_repacked_columns(ggml_type t);
RepackedColumnsFn x86_avx2_repacked_columns(ggml_type t);

// The gemv llama.cpp runs on this CPU for weights of type t that it repacks, or
// null where it does not repack t here or this ggml lacks the symbol. Only the
// layouts x86 gets (8x8) are known; elsewhere weights stay as in the file.
// SPECBOUND_REPACK=0 switches repacking off (weights as in the file, vec_dot).
const RepackedKernel * find_repacked(ggml_type t);

// One repacked weight and its kernel: the custom op's user data (the weight
// is not a source of the op, whose repacked buffer only admits MUL_MAT).
struct RepackedWeight {
    const RepackedKernel * kernel = nullptr;
    const ggml_tensor * w = nullptr;
};

// out [rows of w, n] = w . xq, xq the columns quantized to kernel->act_type
// (kernels::quantize_op)
ggml_tensor * repacked_matmul_op(ggml_context * ctx, const RepackedWeight * rw, ggml_tensor * xq);

} // namespace sb::kernels
