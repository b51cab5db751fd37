// Entry points for the kernel tests: quantize synthetic weights with ggml and
// run one matmul through our kernel, ggml's vec_dot or a float reference,
// without a model or a graph.
#pragma once

#include <ggml.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sb::kernels {

// rows x k floats -> rows of ggml type t (ggml_quantize_chunk)
std::vector<uint8_t> quantize_rows(ggml_type t, const float * w, int64_t rows, int64_t k);

// out [n, rows] = w [rows, k] (type t) . x [n, k] through `path`:
//   "ours"    our kernel for t (throws if none), rows split over n_threads threads
//   "vec_dot" ggml's vec_dot, one (row, column) at a time
//   "float"   dequantized weights . float activations, in double
std::vector<float> matmul(ggml_type t, const uint8_t * w, int64_t rows, int64_t k, const float * x, int64_t n,
                          const std::string & path, int n_threads);

ggml_type type_from_name(const std::string & name);

} // namespace sb::kernels
