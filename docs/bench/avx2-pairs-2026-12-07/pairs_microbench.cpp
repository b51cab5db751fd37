// Per column, 2 threads, 8 matrices of the 1.5B ffn_gate shape (62 MB, DRAM): the unpacked
// Q4_K kernel at 7 and 8 columns, after a bitwise check against the direct kernel. Built
// twice, against this tree and against the previous kernel (its file in OLD/kernels/):
// g++ -O3 -std=gnu++17 -mavx2 -mfma -mf16c -ffp-contract=off [-IOLD] -Icpp \
//     -I.venv/lib/python3.11/site-packages/include pairs_microbench.cpp -lpthread
#include "kernels/x86_repacked_avx2.cpp"
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>
#include <cstring>
using namespace sb::kernels;
template <int NC, bool D>
void pass(const uint8_t * wm, size_t row_bytes, int64_t nb, const BlockQ8_K * x, float * got, int64_t rows, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r += 8) {
        const BlockQ8_K * xs[NC]; float * o[NC];
        for (int c = 0; c < NC; ++c) xs[c] = x + c * nb, o[c] = got + c * rows + r;
        if (D) q4_K_columns_direct<NC>((const BlockQ4_Kx8 *) (wm + r * row_bytes), xs, nb, o);
        else q4_K_columns_unpacked<NC>((const BlockQ4_Kx8 *) (wm + r * row_bytes), xs, nb, o);
    }
}
int main(int argc, char ** argv) {
    const int64_t rows = 8960, k = 1536, nb = k / 256, nmat = 8;
    const size_t row_bytes = nb * 144;
    std::vector<uint8_t> w(nmat * rows * row_bytes);
    std::mt19937 g(1);
    for (auto & b : w) b = g();
    std::vector<BlockQ8_K> x(8 * nb);
    for (auto & blk : x) { blk.d = 0.01f; for (int i = 0; i < 256; ++i) blk.qs[i] = (int8_t) g(); for (int j = 0; j < 16; ++j) { int t = 0; for (int i = 0; i < 16; ++i) t += blk.qs[16 * j + i]; blk.bsums[j] = t; } }
    std::vector<float> got(rows * 8);
    auto run = [&](const char * name, int n, auto body) {
        double best = 1e9;
        for (int rep = 0; rep < 15; ++rep) {
            auto t0 = std::chrono::steady_clock::now();
            std::vector<std::thread> th;
            for (int t = 0; t < 2; ++t) th.emplace_back([&, t] {
                for (int64_t m = 0; m < nmat; ++m) body(w.data() + m * rows * row_bytes, rows / 8 * t / 2 * 8, rows / 8 * (t + 1) / 2 * 8);
            });
            for (auto & t : th) t.join();
            best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        printf("%s%d %.3f  ", name, n, best / nmat / n);
    };
    // bitwise check of the unpacked kernel against the direct one (same arithmetic)
    {
        std::vector<float> a(rows * 8), b(rows * 8);
        pass<8, false>(w.data(), row_bytes, nb, x.data(), a.data(), rows, 0, rows);
        pass<8, true>(w.data(), row_bytes, nb, x.data(), b.data(), rows, 0, rows);
        printf("U8 vs D8 bitwise: %s\n", memcmp(a.data(), b.data(), a.size() * 4) ? "DIFFER" : "equal");
        pass<7, false>(w.data(), row_bytes, nb, x.data(), a.data(), rows, 0, rows);
        pass<7, true>(w.data(), row_bytes, nb, x.data(), b.data(), rows, 0, rows);
        printf("U7 vs D7 bitwise: %s\n", memcmp(a.data(), b.data(), 7 * rows * 4) ? "DIFFER" : "equal");
    }
    for (int r = 0; r < 3; ++r) {
        run("U", 7, [&](const uint8_t * wm, int64_t r0, int64_t r1) { pass<7, false>(wm, row_bytes, nb, x.data(), got.data(), rows, r0, r1); });
        run("U", 8, [&](const uint8_t * wm, int64_t r0, int64_t r1) { pass<8, false>(wm, row_bytes, nb, x.data(), got.data(), rows, r0, r1); });
        printf("\n");
    }
}
