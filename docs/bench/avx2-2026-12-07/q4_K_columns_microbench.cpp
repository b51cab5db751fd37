// One thread, our AVX2 multi-column kernel over repacked Q4_K (8960 x 1536,
// the 1.5B's ffn_gate shape, random bytes): ns per (column, 8-row super-block).
// g++ -O3 -std=gnu++17 -mavx2 -mfma -mf16c -ffp-contract=off -Icpp \
//     -I.venv/lib/python3.11/site-packages/include docs/bench/avx2-2026-12-07/q4_K_columns_microbench.cpp
#include "kernels/x86_repacked_avx2.cpp"
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>
using namespace sb::kernels;
int main(int argc, char ** argv) {
    const int64_t rows = 8960, k = 1536, nb = k / 256;
    const size_t row_bytes = nb * 144;  // per row within 8-row groups
    std::vector<uint8_t> w(rows * row_bytes);
    std::mt19937 g(1);
    for (auto & b : w) b = g();
    // sane fp16 scales
    for (int64_t grp = 0; grp < rows / 8; ++grp)
        for (int64_t b = 0; b < nb; ++b) {
            uint16_t * d = (uint16_t *) (w.data() + grp * 8 * row_bytes + b * 1152);
            for (int i = 0; i < 16; ++i) d[i] = 0x2000;
        }
    const int nmax = 64;
    std::vector<uint8_t> x(nmax * nb * 292);
    for (auto & b : x) b = g() & 0x3f;
    for (int64_t c = 0; c < nmax * nb; ++c) { float one = 0.01f; memcpy(x.data() + c * 292, &one, 4); }
    std::vector<float> dst(rows * nmax);
    auto fn = x86_avx2_repacked_columns(GGML_TYPE_Q4_K);
    for (int n : {1, 8, 64}) {
        double best = 1e9;
        for (int r = 0; r < 20; ++r) {
            auto t0 = std::chrono::steady_clock::now();
            fn(w.data(), row_bytes, k, x.data(), nb * 292, n, dst.data(), rows, 0, rows);
            double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
            best = std::min(best, ms);
        }
        printf("n=%d %.3f ms, %.3f ms/col, %.1f ns per col-superblock\n", n, best, best / n, best * 1e6 / n / (rows / 8 * nb));
    }
    printf("%f\n", dst[5]);
}
