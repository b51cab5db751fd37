// The repacked Q4_K driver (x86_avx2_repacked_columns) at several widths, 2 threads, 8 matrices of
// the 1.5B ffn_gate shape (DRAM), ms per column. Built once against the committed sources and once
// against a variant (-I first to its copy) to compare drivers.
#include "kernels/x86_repacked_avx2.cpp"
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>
using namespace sb::kernels;
int main(int argc, char ** argv) {
    const int64_t rows = 8960, k = 1536, nb = k / 256, nmat = 8;
    const size_t row_bytes = nb * 144;
    std::vector<uint8_t> w(nmat * rows * row_bytes);
    std::mt19937 g(1);
    for (auto & b : w) b = g();
    const int nmax = 64;
    std::vector<BlockQ8_K> x(nmax * nb);
    for (auto & blk : x) { blk.d = 0.01f; for (int i = 0; i < 256; ++i) blk.qs[i] = (int8_t) g(); for (int j = 0; j < 16; ++j) blk.bsums[j] = 0; }
    std::vector<float> got(rows * nmax);
    auto fn = x86_avx2_repacked_columns(GGML_TYPE_Q4_K);
    for (int n : {4, 7, 8, 12, 16, 64}) {
        double best = 1e9;
        for (int rep = 0; rep < 7; ++rep) {
            auto t0 = std::chrono::steady_clock::now();
            std::vector<std::thread> th;
            for (int t = 0; t < 2; ++t) th.emplace_back([&, t] {
                for (int64_t m = 0; m < nmat; ++m)
                    fn(w.data() + m * rows * row_bytes, row_bytes, k, x.data(), nb * sizeof(BlockQ8_K), n, got.data(), rows, rows / 8 * t / 2 * 8, rows / 8 * (t + 1) / 2 * 8);
            });
            for (auto & t : th) t.join();
            best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        printf("n=%d %.3f/col  ", n, best / nmat / n);
    }
    printf("\n");
}
