#include <immintrin.h>
#include <chrono>
#include <cstdio>
template <class F> double ns_per_op(F f, int ops) {
    double best = 1e30;
    for (int t = 0; t < 5; ++t) { auto t0 = std::chrono::steady_clock::now(); f(); double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count(); if (ns / ops < best) best = ns / ops; }
    return best;
}
int main() {
    const int N = 10000000;
    volatile int sink;
    auto ymm = [&] {
        __m256i a[12]; __m256i w = _mm256_set1_epi8(3), x = _mm256_set1_epi8(5);
        for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_epi32(i);
        for (int n = 0; n < N; ++n) { for (int i = 0; i < 12; ++i) a[i] = _mm256_dpbusd_epi32(a[i], w, x); __asm__ volatile("" : "+x"(w)); }
        __m256i s = a[0]; for (int i = 1; i < 12; ++i) s = _mm256_add_epi32(s, a[i]); sink = _mm256_extract_epi32(s, 0);
    };
    auto zmm = [&] {
        __m512i a[12]; __m512i w = _mm512_set1_epi8(3), x = _mm512_set1_epi8(5);
        for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_epi32(i);
        for (int n = 0; n < N; ++n) { for (int i = 0; i < 12; ++i) a[i] = _mm512_dpbusd_epi32(a[i], w, x); __asm__ volatile("" : "+v"(w)); }
        __m512i s = a[0]; for (int i = 1; i < 12; ++i) s = _mm512_add_epi32(s, a[i]); sink = _mm512_reduce_add_epi32(s);
    };
    auto fma = [&] {
        __m256 a[12]; __m256 w = _mm256_set1_ps(1.0001f), x = _mm256_set1_ps(0.999f);
        for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps(i);
        for (int n = 0; n < N; ++n) { for (int i = 0; i < 12; ++i) a[i] = _mm256_fmadd_ps(a[i], w, x); __asm__ volatile("" : "+x"(w)); }
        __m256 s = a[0]; for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, a[i]); sink = (int) _mm256_cvtss_f32(s);
    };
    std::printf("ns per op: ymm dpbusd %.4f, zmm dpbusd %.4f, ymm fma %.4f\n", ns_per_op(ymm, N * 12), ns_per_op(zmm, N * 12), ns_per_op(fma, N * 12));
}
