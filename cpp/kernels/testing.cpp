#include "kernels/testing.h"

#include "kernels/kernels.h"

#include <ggml-cpu.h>

#include <stdexcept>
#include <thread>

namespace sb::kernels {

ggml_type type_from_name(const std::string & name) {
    for (int t = 0; t < GGML_TYPE_COUNT; ++t) {
        const char * n = ggml_type_name((ggml_type) t);
        if (n && name == n) return (ggml_type) t;
    }
    throw std::invalid_argument("unknown ggml type " + name);
}

std::vector<uint8_t> quantize_rows(ggml_type t, const float * w, int64_t rows, int64_t k) {
    ggml_cpu_init();  // ggml's fp16 tables, used by vec_dot (idempotent)
    if (k % ggml_blck_size(t) != 0) throw std::invalid_argument("k must be a multiple of the block size");
    std::vector<uint8_t> out(ggml_row_size(t, k) * rows);
    ggml_quantize_chunk(t, w, out.data(), 0, rows, k, nullptr);
    return out;
}

std::vector<float> matmul(ggml_type t, const uint8_t * w, int64_t rows, int64_t k, const float * x, int64_t n,
                          const std::string & path, int n_threads) {
    if (rows <= 0 || n <= 0 || n_threads <= 0 || k % ggml_blck_size(t) != 0) throw std::invalid_argument("bad matmul shape");
    ggml_cpu_init();
    const size_t w_row = ggml_row_size(t, k);
    std::vector<float> out((size_t) rows * n);
    if (path == "float") {
        std::vector<float> wf(k);
        for (int64_t r = 0; r < rows; ++r) {
            ggml_get_type_traits(t)->to_float(w + r * w_row, wf.data(), k);
            for (int64_t c = 0; c < n; ++c) {
                double acc = 0.0;
                for (int64_t i = 0; i < k; ++i) acc += (double) wf[i] * x[c * k + i];
                out[c * rows + r] = (float) acc;
            }
        }
        return out;
    }
    const ggml_type act = ggml_get_type_traits_cpu(t)->vec_dot_type;
    const std::vector<uint8_t> xq = quantize_columns(act, x, n, k);
    const size_t x_col = ggml_row_size(act, k);
    if (path == "vec_dot") {
        const ggml_vec_dot_t vec_dot = ggml_get_type_traits_cpu(t)->vec_dot;
        for (int64_t c = 0; c < n; ++c)
            for (int64_t r = 0; r < rows; ++r)
                vec_dot((int) k, &out[c * rows + r], 0, w + r * w_row, 0, xq.data() + c * x_col, 0, 1);
        return out;
    }
    if (path != "ours") throw std::invalid_argument("path must be ours, vec_dot or float");
    const Kernel * kern = find_kernel(t);
    if (!kern) throw std::invalid_argument(std::string("no kernel of ours for ") + ggml_type_name(t));
    const Args a = { w, w_row, xq.data(), x_col, k, n, out.data(), rows, ggml_get_type_traits_cpu(t)->vec_dot };
    if (n_threads == 1) {
        kern->rows(a, 0, rows);
        return out;
    }
    std::vector<std::thread> threads;  // rows split as the graph op splits them
    for (int i = 0; i < n_threads; ++i)
        threads.emplace_back([&, i] { kern->rows(a, rows * i / n_threads, rows * (i + 1) / n_threads); });
    for (auto & th : threads) th.join();
    return out;
}

} // namespace sb::kernels
