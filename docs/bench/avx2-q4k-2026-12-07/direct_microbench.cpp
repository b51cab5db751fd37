// One and a few columns of repacked Q4_K (the 1.5B ffn_gate shape, random bytes):
// ggml's AVX2 gemv, our unpacked-block kernel, our direct kernel; bitwise check
// against the gemv first. Argument 1: libggml-cpu.so; argument 2: matrices (8: 62 MB, from DRAM).
// g++ -O3 -std=gnu++17 -mavx2 -mfma -mf16c -ffp-contract=off -Icpp \
//     -I.venv/lib/python3.11/site-packages/include direct_microbench.cpp -ldl -lpthread
#include "kernels/x86_repacked_avx2.cpp"
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>
#include <dlfcn.h>
using namespace sb::kernels;
typedef void (*Gemv)(int n, float * s, size_t bs, const void * vx, const void * vy, int nr, int nc);
int main(int argc, char ** argv) {
    void * h = dlopen(argv[1], RTLD_NOW);
    Gemv gemv = (Gemv) dlsym(h, "ggml_gemv_q4_K_8x8_q8_K");
    const int64_t rows = 8960, k = 1536, nb = k / 256, nmat = argc > 2 ? atoi(argv[2]) : 1;
    const size_t row_bytes = nb * 144;
    std::vector<uint8_t> w(nmat * rows * row_bytes);
    std::mt19937 g(1);
    for (auto & b : w) b = g();
    for (int64_t grp = 0; grp < nmat * rows / 8; ++grp)
        for (int64_t b = 0; b < nb; ++b) {
            uint16_t * d = (uint16_t *) (w.data() + grp * 8 * row_bytes + b * 1152);
            for (int i = 0; i < 16; ++i) d[i] = 0x2000 + (g() & 0x3ff);
        }
    const int nmax = 4;
    std::vector<BlockQ8_K> x(nmax * nb);
    for (auto & blk : x) {
        blk.d = 0.01f + (g() & 255) * 1e-4f;
        for (int i = 0; i < 256; ++i) blk.qs[i] = (int8_t) g();
        for (int j = 0; j < 16; ++j) { int s = 0; for (int i = 0; i < 16; ++i) s += blk.qs[16 * j + i]; blk.bsums[j] = s; }
    }
    std::vector<float> ref(rows * nmax), got(rows * nmax);
    // bitwise check, 2 columns
    for (int c = 0; c < 2; ++c) gemv(k, ref.data() + c * rows, 0, w.data(), x.data() + c * nb, 1, rows);
    for (int64_t r = 0; r < rows; r += 8) {
        const BlockQ4_Kx8 * wg = (const BlockQ4_Kx8 *) (w.data() + r * row_bytes);
        const BlockQ8_K * xs[2] = { x.data(), x.data() + nb };
        float * o1[1] = { got.data() + r };
        q4_K_columns_direct<1>(wg, xs, nb, o1);
        float * o2[2] = { got.data() + rows * 2 + r, got.data() + rows * 3 + r };
        q4_K_columns_direct<2>(wg, xs, nb, o2);
    }
    int bad = 0;
    for (int64_t r = 0; r < rows; ++r) bad += memcmp(&ref[r], &got[r], 4) != 0 || memcmp(&ref[r], &got[2 * rows + r], 4) != 0 || memcmp(&ref[rows + r], &got[3 * rows + r], 4) != 0;
    printf("mismatches: %d (ref[5]=%g)\n", bad, ref[5]);
    // the unpacked-block kernel itself (the driver now sends up to 6 columns to the direct one)
    auto unpacked = [&](int n, const uint8_t * wm, int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r += 8) {
            const BlockQ8_K * xs[4] = { x.data(), x.data() + nb, x.data() + 2 * nb, x.data() + 3 * nb };
            float * o[4] = { got.data() + r, got.data() + rows + r, got.data() + 2 * rows + r, got.data() + 3 * rows + r };
            const BlockQ4_Kx8 * wg = (const BlockQ4_Kx8 *) (wm + r * row_bytes);
            n == 1 ? q4_K_columns_unpacked<1>(wg, xs, nb, o) : n == 2 ? q4_K_columns_unpacked<2>(wg, xs, nb, o)
                                                             : q4_K_columns_unpacked<4>(wg, xs, nb, o);
        }
    };
    for (int nt : {1, 2}) {
      auto run = [&](const char * name, int n, auto body) {
        double best = 1e9;
        for (int rep = 0; rep < 15; ++rep) {
            auto t0 = std::chrono::steady_clock::now();
            std::vector<std::thread> th;
            for (int t = 0; t < nt; ++t) th.emplace_back([&, t] {
                for (int64_t m = 0; m < nmat; ++m) {
                    const int64_t r0 = rows / 8 * t / nt * 8, r1 = rows / 8 * (t + 1) / nt * 8;
                    body(w.data() + m * rows * row_bytes, r0, r1);
                }
            });
            for (auto & t : th) t.join();
            best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        const double bytes = (double) nmat * rows * row_bytes;
        printf("threads %d %-10s n=%d: %.3f ms per matrix, %.3f per col, %.1f GB/s\n", nt, name, n, best / nmat, best / nmat / n, bytes / best / 1e6);
      };
      run("gemv", 1, [&](const uint8_t * wm, int64_t r0, int64_t r1) { gemv(k, got.data() + r0, 0, wm + r0 * row_bytes, x.data(), 1, r1 - r0); });
      for (int n : {1, 2, 4})
        run("unpacked", n, [&](const uint8_t * wm, int64_t r0, int64_t r1) { unpacked(n, wm, r0, r1); });
      run("direct", 1, [&](const uint8_t * wm, int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r += 8) { const BlockQ8_K * xs[1] = { x.data() }; float * o[1] = { got.data() + r };
          q4_K_columns_direct<1>((const BlockQ4_Kx8 *) (wm + r * row_bytes), xs, nb, o); } });
      run("direct", 2, [&](const uint8_t * wm, int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r += 8) { const BlockQ8_K * xs[2] = { x.data(), x.data() + nb }; float * o[2] = { got.data() + r, got.data() + rows + r };
          q4_K_columns_direct<2>((const BlockQ4_Kx8 *) (wm + r * row_bytes), xs, nb, o); } });
      run("direct", 4, [&](const uint8_t * wm, int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r += 8) { const BlockQ8_K * xs[4] = { x.data(), x.data() + nb, x.data() + 2 * nb, x.data() + 3 * nb }; float * o[4] = { got.data() + r, got.data() + rows + r, got.data() + 2 * rows + r, got.data() + 3 * rows + r };
          q4_K_columns_direct<4>((const BlockQ4_Kx8 *) (wm + r * row_bytes), xs, nb, o); } });
    }
}
