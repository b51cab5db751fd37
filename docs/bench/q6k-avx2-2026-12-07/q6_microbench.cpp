// Q6_K's AVX2 kernel (SuperBlocks<Q6_K_Step>::dot<NC>), cycles per super-block and column at
// 2.9 GHz, weights in L2 (256 KB), one thread, best of 200 x 2 passes. Built against this tree
// and against the previous x86_kernels.inl (copied to OLD/kernels/):
//   L=.venv/lib/python3.11/site-packages/llama_cpp/lib
//   g++ -O3 -std=gnu++17 -mavx2 -mfma -mf16c -ffp-contract=off [-IOLD] -Icpp \
//       -I.venv/lib/python3.11/site-packages/include q6_microbench.cpp -L$L -lggml-cpu -lggml-base -Wl,-rpath,$L
#define SB_X86_ISA "sb_avx2"
#define SB_X86_ENTRY x86_avx2_kernel
#include "kernels/kernels.h"
#include "kernels/x86_kernels.inl"
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>
#include <cstring>
using namespace sb::kernels;
#define VARIANT Q6_K
int main() {
    const int64_t k = 1536, nb = k / 256;
    const size_t row_bytes = nb * sizeof(BlockQ6_K);
    const int64_t rows_l2 = 256 * 1024 / row_bytes;
    std::vector<uint8_t> w(rows_l2 * row_bytes);
    std::mt19937 g(1);
    for (auto & b : w) b = g();
    for (int64_t r = 0; r < rows_l2 * nb; ++r) { BlockQ6_K * b = (BlockQ6_K *) w.data() + r; b->d = 0x3c00; }
    std::vector<BlockQ8_K> x(8 * nb);
    for (auto & blk : x) { blk.d = 0.01f; for (int i = 0; i < 256; ++i) blk.qs[i] = (int8_t) g(); for (int j = 0; j < 16; ++j) { int t = 0; for (int i = 0; i < 16; ++i) t += blk.qs[16 * j + i]; blk.bsums[j] = t; } }
    const uint8_t * xs[8], * ps[8] = {};
    for (int c = 0; c < 8; ++c) xs[c] = (const uint8_t *) (x.data() + c * nb);
    std::vector<float> out(rows_l2 * 8);
    auto run = [&](int nc, auto body) {
        double best = 1e9;
        for (int rep = 0; rep < 200; ++rep) {
            auto t0 = std::chrono::steady_clock::now();
            for (int it = 0; it < 2; ++it) for (int64_t r = 0; r < rows_l2; ++r) body(r);
            best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        printf("NC=%d %.1f cycles per sb-col\n", nc, best * 2.9e9 / (2.0 * rows_l2 * nb * nc));
    };
    run(1, [&](int64_t r) { VARIANT::dot<1>(w.data() + r * row_bytes, xs, ps, k, &out[r * 8]); });
    run(2, [&](int64_t r) { VARIANT::dot<2>(w.data() + r * row_bytes, xs, ps, k, &out[r * 8]); });
    run(3, [&](int64_t r) { VARIANT::dot<3>(w.data() + r * row_bytes, xs, ps, k, &out[r * 8]); });
    run(4, [&](int64_t r) { VARIANT::dot<4>(w.data() + r * row_bytes, xs, ps, k, &out[r * 8]); });
    double s = 0; for (float f : out) s += f; printf("sum of outputs %g (the same in both builds)\n", s);
}
