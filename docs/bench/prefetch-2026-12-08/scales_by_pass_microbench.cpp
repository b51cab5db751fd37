// SignedTimesQ8_0::dot<NC> against a variant that multiplies the block's weight scale by all
// columns' activation scales in one vector op (scales transposed per pass), cycles per block-column
#define SB_X86_ISA "sb_avx2"
#define SB_X86_ENTRY x86_avx2_kernel
#include "kernels/kernels.h"
#include "kernels/x86_kernels.inl"
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>
#include <cstring>
namespace sb::kernels { namespace {
template <class WB, __m256i (*Weights)(const WB &)>
struct ByPass : PrepQ8_0 {
    using WBlock = WB;
    static inline const float * table = nullptr;  // [nb][8]: block i's scales of the pass's columns
    template <int NC>
    static void dot(const uint8_t * wp, const uint8_t * const * xp, const uint8_t * const *, int64_t k, float * out) {
        const WB * w = (const WB *) wp;
        const BlockQ8_0 * x[NC];
        __m256 acc[NC];
        for (int c = 0; c < NC; ++c) { x[c] = (const BlockQ8_0 *) xp[c]; acc[c] = _mm256_setzero_ps(); }
        alignas(32) float d[8];
        for (int64_t i = 0; i < k / kQK; ++i) {
            const SignedWeights qw(Weights(w[i]));
            _mm256_store_ps(d, _mm256_mul_ps(_mm256_set1_ps(fp16(w[i].d)), _mm256_load_ps(table + i * 8)));
            for (int c = 0; c < NC; ++c) {
                const __m256 q = _mm256_cvtepi32_ps(qw.dot(load256(x[c][i].qs), _mm256_setzero_si256()));
                acc[c] = _mm256_fmadd_ps(_mm256_broadcast_ss(&d[c]), q, acc[c]);
            }
        }
        for (int c = 0; c < NC; ++c) out[c] = hsum8(acc[c]);
    }
};
using Q5_0P = ByPass<BlockQ5_0, q5_0_weights>;
using Q8_0P = ByPass<BlockQ8_0, q8_0_weights>;
}}
using namespace sb::kernels;
template <class T> double run(int nc, const std::vector<uint8_t> & w, int64_t rows, size_t row_bytes, int64_t k, const std::vector<BlockQ8_0> & x, std::vector<float> & out) {
    const int64_t nb = k / 32;
    std::vector<__m256i> prep((T::bytes(k) / 32 + 1) * 8);
    const uint8_t * xs[8], * ps[8];
    const size_t pstride = (T::bytes(k) + 31) / 32 * 32;
    for (int c = 0; c < 8; ++c) { xs[c] = (const uint8_t *) (x.data() + c * nb); ps[c] = (const uint8_t *) prep.data() + c * pstride; T::prepare(xs[c], k, (uint8_t *) ps[c]); }
    static std::vector<float, std::allocator<float>> tab; tab.assign(nb * 8 + 8, 0.f);
    float * t = (float *) (((uintptr_t) tab.data() + 31) & ~(uintptr_t) 31);
    for (int64_t i = 0; i < nb; ++i) for (int c = 0; c < 8; ++c) t[i * 8 + c] = fp16(((const BlockQ8_0 *) xs[c])[i].d);
    Q5_0P::table = t; Q8_0P::table = t;
    double best = 1e9;
    for (int rep = 0; rep < 100; ++rep) {
        auto t0 = std::chrono::steady_clock::now();
        for (int64_t r = 0; r < rows; ++r) {
            switch (nc) {
                case 1: T::template dot<1>(w.data() + r * row_bytes, xs, ps, k, &out[r * 8]); break;
                case 2: T::template dot<2>(w.data() + r * row_bytes, xs, ps, k, &out[r * 8]); break;
                case 4: T::template dot<4>(w.data() + r * row_bytes, xs, ps, k, &out[r * 8]); break;
                case 8: T::template dot<8>(w.data() + r * row_bytes, xs, ps, k, &out[r * 8]); break;
            }
        }
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best * 2.9e9 / (rows * nb * nc);
}
int main() {
    const int64_t k = 896, nb = k / 32, rows = 416;
    const size_t row_bytes = nb * sizeof(BlockQ5_0);
    std::vector<uint8_t> w(rows * row_bytes);
    std::mt19937 g(1);
    for (auto & b : w) b = g();
    for (int64_t i = 0; i < rows * nb; ++i) ((BlockQ5_0 *) w.data())[i].d = 0x2000 + (g() & 0xff);
    std::vector<BlockQ8_0> x(8 * nb);
    for (auto & b : x) { b.d = 0x2400 + (g() & 0x3ff); for (auto & q : b.qs) q = (int8_t) g(); }
    const size_t rb8 = nb * sizeof(BlockQ8_0);
    const int64_t rows8 = 256 * 1024 / rb8;
    std::vector<uint8_t> w8(rows8 * rb8);
    for (auto & v : w8) v = g();
    for (int64_t i = 0; i < rows8 * nb; ++i) ((BlockQ8_0 *) w8.data())[i].d = 0x2000 + (g() & 0xff);
    std::vector<float> a(rows * 8), b(rows * 8), o8(rows8 * 8), p8(rows8 * 8);
    for (int nc : { 1, 2, 4, 8 }) {
        run<Q5_0>(nc, w, rows, row_bytes, k, x, a); run<Q5_0P>(nc, w, rows, row_bytes, k, x, b);
        run<Q8_0>(nc, w8, rows8, rb8, k, x, o8); run<Q8_0P>(nc, w8, rows8, rb8, k, x, p8);
        printf("nc=%d bitwise Q5_0 %s Q8_0 %s\n", nc, memcmp(a.data(), b.data(), a.size() * 4) ? "DIFFER" : "equal", memcmp(o8.data(), p8.data(), o8.size() * 4) ? "DIFFER" : "equal");
    }
    for (int r = 0; r < 4; ++r) {
        for (int nc : { 4, 8 }) printf("Q5_0 %d: %.2f / %.2f | ", nc, run<Q5_0>(nc, w, rows, row_bytes, k, x, a), run<Q5_0P>(nc, w, rows, row_bytes, k, x, b));
        for (int nc : { 4, 8 }) printf("Q8_0 %d: %.2f / %.2f | ", nc, run<Q8_0>(nc, w8, rows8, rb8, k, x, o8), run<Q8_0P>(nc, w8, rows8, rb8, k, x, p8));
        printf("\n");
    }
}
