// The instruction floor of one (row, column, 32-value block) of the Q8_0-family
// single-token arithmetic (ggml's vec_dot: an integer dot, its conversion to
// float, the scale product d_w * d_x and one FMA into the column's lanes),
// with everything in L1 and R rows x C columns register-blocked, one thread.
// Each variant drops parts of that sequence, so the figures show what each
// step costs on this CPU. Build: g++ -O2 -march=native arith_floor.cpp
#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstdlib>

constexpr int R = 2, C = 8, NB = 64;  // 2 rows x 8 columns, 64 blocks (K = 2048): all in L1
alignas(64) static int8_t w[R][NB][32], x[C][NB][32];
alignas(64) static float dw[R][NB], dx[C][NB], dprod[R][NB][C];

enum Variant { kInt, kIntCvtFma, kFull, kFullProducts, kInt512, kFull512 };

template <Variant V>
static float pass() {
    __m256 acc[R][C];
    __m256i iacc[R][C];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps(), iacc[r][c] = _mm256_setzero_si256();
    for (int b = 0; b < NB; ++b) {
        for (int r = 0; r < R; ++r) {
            const __m256i wv = _mm256_load_si256((const __m256i *) w[r][b]);
            const __m256 dwv = _mm256_set1_ps(dw[r][b]);
            for (int c = 0; c < C; ++c) {
                const __m256i xv = _mm256_load_si256((const __m256i *) x[c][b]);
                if constexpr (V == kInt) {
                    iacc[r][c] = _mm256_dpbusd_epi32(iacc[r][c], wv, xv);
                } else {
                    const __m256 q = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), wv, xv));
                    __m256 d;
                    if constexpr (V == kIntCvtFma) d = dwv;                                       // no product
                    else if constexpr (V == kFull) d = _mm256_mul_ps(dwv, _mm256_set1_ps(dx[c][b]));  // one per block
                    else d = _mm256_set1_ps(dprod[r][b][c]);                                      // products made 8 at a time
                    acc[r][c] = _mm256_fmadd_ps(d, q, acc[r][c]);
                }
            }
        }
        if constexpr (V == kFullProducts)  // the 8 columns' products of the next block, one vmulps per row
            for (int r = 0; r < R; ++r)
                _mm256_store_ps(dprod[r][(b + 1) % NB], _mm256_mul_ps(_mm256_set1_ps(dw[r][b]), _mm256_load_ps(dx[0] + b)));
    }
    float s = 0;
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) {
            alignas(32) float f[8];
            _mm256_store_ps(f, _mm256_add_ps(acc[r][c], _mm256_cvtepi32_ps(iacc[r][c])));
            s += f[0] + f[7];
        }
    return s;
}

// Two columns per 512-bit register (the weight block in both halves): the
// same per-column lanes and operations, half the instructions
template <Variant V>
static float pass512() {
    __m512 acc[R][C / 2];
    __m512i iacc[R][C / 2];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C / 2; ++c) acc[r][c] = _mm512_setzero_ps(), iacc[r][c] = _mm512_setzero_si512();
    for (int b = 0; b < NB; ++b) {
        for (int r = 0; r < R; ++r) {
            const __m512i wv = _mm512_broadcast_i64x4(_mm256_load_si256((const __m256i *) w[r][b]));
            const __m512 dwv = _mm512_set1_ps(dw[r][b]);
            for (int c = 0; c < C / 2; ++c) {
                const __m512i xv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_load_si256((const __m256i *) x[2 * c][b])),
                                                      _mm256_load_si256((const __m256i *) x[2 * c + 1][b]), 1);
                if constexpr (V == kInt512) {
                    iacc[r][c] = _mm512_dpbusd_epi32(iacc[r][c], wv, xv);
                } else {
                    const __m512 q = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, xv));
                    const __m512 dxv = _mm512_insertf32x8(_mm512_set1_ps(dx[2 * c][b]), _mm256_set1_ps(dx[2 * c + 1][b]), 1);
                    acc[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(dwv, dxv), q, acc[r][c]);
                }
            }
        }
    }
    float s = 0;
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C / 2; ++c) s += _mm512_reduce_add_ps(_mm512_add_ps(acc[r][c], _mm512_cvtepi32_ps(iacc[r][c])));
    return s;
}

template <Variant V>
static double ns_per_block(int reps) {
    volatile float sink = 0;
    double best = 1e30;
    for (int t = 0; t < 7; ++t) {
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < reps; ++i) sink = sink + (V >= kInt512 ? pass512<V>() : pass<V>());
        double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
        best = ns / ((double) reps * R * C * NB) < best ? ns / ((double) reps * R * C * NB) : best;
    }
    return best;
}

int main() {
    for (int r = 0; r < R; ++r)
        for (int b = 0; b < NB; ++b) {
            dw[r][b] = 0.01f * (r + 1);
            for (int i = 0; i < 32; ++i) w[r][b][i] = (int8_t) (rand() % 200);
        }
    for (int c = 0; c < C; ++c)
        for (int b = 0; b < NB; ++b) {
            dx[c][b] = 0.02f;
            for (int i = 0; i < 32; ++i) x[c][b][i] = (int8_t) (rand() % 255 - 127);
        }
    const int reps = 20000;
    std::printf("ns per (row, column, block of 32), one thread, L1-resident, %d x %d register block:\n", R, C);
    std::printf("  dpbusd only                       %.3f\n", ns_per_block<kInt>(reps));
    std::printf("  dpbusd + cvt + fma                %.3f\n", ns_per_block<kIntCvtFma>(reps));
    std::printf("  dpbusd + cvt + mul + fma (vec_dot) %.3f\n", ns_per_block<kFull>(reps));
    std::printf("  same, products 8 columns at a time %.3f\n", ns_per_block<kFullProducts>(reps));
    std::printf("  two columns per 512-bit register:\n");
    std::printf("  dpbusd only                       %.3f\n", ns_per_block<kInt512>(reps));
    std::printf("  dpbusd + cvt + mul + fma (vec_dot) %.3f\n", ns_per_block<kFull512>(reps));
}
