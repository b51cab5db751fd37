// Q5_0 and Q8_0 x Q8_0 (SignedTimesQ8_0::dot<NC>), cycles per 32-value block and column at 2.9 GHz,
// weights ~256 KB (L2), one thread, best of 100; 4 against 8 columns per pass, and Q5_0 with the
// activations copied to 32-byte aligned blocks (Aligned: no split loads; not kept, it ran no faster).
// Build as ../q6k-avx2-2026-12-07/q6_microbench.cpp.
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
struct PrepAligned {
    using XBlock = BlockQ8_0;
    static size_t bytes(int64_t k) { return (size_t) (k / kQK) * (sizeof(float) + 2 * sizeof(__m256i)); }
    static void prepare(const uint8_t * xp, int64_t k, uint8_t * out) {
        const BlockQ8_0 * x = (const BlockQ8_0 *) xp;
        const int64_t nb = k / kQK;
        __m256i * qs = (__m256i *) out;
        float * d = (float *) (out + 2 * nb * sizeof(__m256i));
        for (int64_t i = 0; i < nb; ++i) { d[i] = fp16(x[i].d); _mm256_store_si256(qs + i, load256(x[i].qs)); }
    }
    static const __m256i * qs(const uint8_t * prep) { return (const __m256i *) prep; }
    static const float * scales(const uint8_t * prep, int64_t k) { return (const float *) (prep + 2 * (k / kQK) * sizeof(__m256i)); }
};
template <class WB, __m256i (*Weights)(const WB &)>
struct Aligned : PrepAligned {
    using WBlock = WB;
    template <int NC>
    static void dot(const uint8_t * wp, const uint8_t * const *, const uint8_t * const * prep, int64_t k, float * out) {
        const WB * w = (const WB *) wp;
        const __m256i * xq[NC];
        const float * dx[NC];
        __m256 acc[NC];
        for (int c = 0; c < NC; ++c) { xq[c] = PrepAligned::qs(prep[c]); dx[c] = PrepAligned::scales(prep[c], k); acc[c] = _mm256_setzero_ps(); }
        for (int64_t i = 0; i < k / kQK; ++i) {
            const SignedWeights qw(Weights(w[i]));
            const __m256 dw = _mm256_set1_ps(fp16(w[i].d));
            for (int c = 0; c < NC; ++c) {
                const __m256 q = _mm256_cvtepi32_ps(qw.dot(_mm256_load_si256(xq[c] + i), _mm256_setzero_si256()));
                acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(&dx[c][i])), q, acc[c]);
            }
        }
        for (int c = 0; c < NC; ++c) out[c] = hsum8(acc[c]);
    }
};
using Q5_0A = Aligned<BlockQ5_0, q5_0_weights>;
}}
using namespace sb::kernels;
template <class T> double run(int nc, const std::vector<uint8_t> & w, int64_t rows, size_t row_bytes, int64_t k, const std::vector<BlockQ8_0> & x, std::vector<float> & out) {
    const int64_t nb = k / 32;
    std::vector<__m256i> prep((T::bytes(k) / 32 + 1) * 8);
    const uint8_t * xs[8], * ps[8];
    const size_t pstride = (T::bytes(k) + 31) / 32 * 32;
    for (int c = 0; c < 8; ++c) { xs[c] = (const uint8_t *) (x.data() + c * nb); ps[c] = (const uint8_t *) prep.data() + c * pstride; T::prepare(xs[c], k, (uint8_t *) ps[c]); }
    double best = 1e9;
    for (int rep = 0; rep < 100; ++rep) {
        auto t0 = std::chrono::steady_clock::now();
        for (int64_t r = 0; r < rows; ++r) {
            switch (nc) {
                case 1: T::template dot<1>(w.data() + r * row_bytes, xs, ps, k, &out[r * 8]); break;
                case 2: T::template dot<2>(w.data() + r * row_bytes, xs, ps, k, &out[r * 8]); break;
                case 4: T::template dot<4>(w.data() + r * row_bytes, xs, ps, k, &out[r * 8]); break;
                case 6: T::template dot<6>(w.data() + r * row_bytes, xs, ps, k, &out[r * 8]); break;
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
    for (auto & b : x) { b.d = 0x2400; for (auto & q : b.qs) q = (int8_t) g(); }
    std::vector<float> a(rows * 8), b(rows * 8);
    run<Q5_0>(4, w, rows, row_bytes, k, x, a); run<Q5_0A>(4, w, rows, row_bytes, k, x, b);
    printf("bitwise: %s\n", memcmp(a.data(), b.data(), a.size() * 4) ? "DIFFER" : "equal");
    const size_t rb8 = nb * sizeof(BlockQ8_0);
    const int64_t rows8 = 256 * 1024 / rb8;
    std::vector<uint8_t> w8(rows8 * rb8);
    for (auto & v : w8) v = g();
    for (int64_t i = 0; i < rows8 * nb; ++i) ((BlockQ8_0 *) w8.data())[i].d = 0x2000;
    std::vector<float> o8(rows8 * 8);
    for (int r = 0; r < 3; ++r) {
        for (int nc : { 4, 8 }) printf("Q5_0 NC=%d %.2f | ", nc, run<Q5_0>(nc, w, rows, row_bytes, k, x, a));
        for (int nc : { 4, 8 }) printf("Q5_0 aligned NC=%d %.2f | ", nc, run<Q5_0A>(nc, w, rows, row_bytes, k, x, b));
        for (int nc : { 4, 8 }) printf("Q8_0 NC=%d %.2f | ", nc, run<Q8_0>(nc, w8, rows8, rb8, k, x, o8));
        printf("\n");
    }
}
