// Q6_K single column over a matrix larger than the caches, 2 threads (rows split in halves):
// GB/s of a plain read of the same bytes, of one_column_two_streams as built now (no software
// prefetch), and of the same two streams with the prefetch it had until 2026-12-08 (each stream's
// next rows, about 2 KiB ahead but at least one whole row, issued as a row starts). Best of 6.
//   L=.venv/lib/python3.11/site-packages/llama_cpp/lib
//   g++ -O3 -std=gnu++17 -mavx2 -mfma -mf16c -ffp-contract=off -Icpp \
//       -I.venv/lib/python3.11/site-packages/include stream_bandwidth.cpp -L$L -lggml-cpu -lggml-base \
//       -Wl,-rpath,$PWD/$L -lpthread -o stream_bandwidth
//   ./stream_bandwidth ROWS K COPIES   (e.g. 3584 18944 4: the random 7B's ffn_down, 4 copies)
#define SB_X86_ISA "sb_avx2"
#define SB_X86_ENTRY x86_avx2_kernel
#include "kernels/kernels.h"
#include "kernels/x86_kernels.inl"
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>
using namespace sb::kernels;
namespace sb::kernels { namespace {
// one_column_two_streams as it was, with its prefetch
template <class T>
void prefetching_two_streams(const Args & a, int64_t r0, int64_t r1) {
    const int64_t h = (r1 - r0) / 2;
    const int64_t ahead = std::max<int64_t>(1, 2048 / (int64_t) a.w_row);
    float two[2];
    for (int64_t r = r0; r < r0 + h; ++r) {
        if (r + ahead < r0 + h)
            for (size_t off = 0; off < a.w_row; off += 64) {
                _mm_prefetch((const char *) a.w + (r + ahead) * a.w_row + off, _MM_HINT_T0);
                _mm_prefetch((const char *) a.w + (r + h + ahead) * a.w_row + off, _MM_HINT_T0);
            }
        T::dot_two_rows(a.w + r * a.w_row, a.w + (r + h) * a.w_row, a.x, nullptr, a.k, two);
        a.dst[r] = two[0], a.dst[r + h] = two[1];
    }
}
}}
int64_t read_all(const uint8_t * p, size_t n) {
    __m256i acc = _mm256_setzero_si256();
    for (size_t i = 0; i + 64 <= n; i += 64)
        acc = _mm256_add_epi64(acc, _mm256_add_epi64(_mm256_loadu_si256((const __m256i *) (p + i)), _mm256_loadu_si256((const __m256i *) (p + i + 32))));
    return _mm256_extract_epi64(acc, 0);
}
int main(int argc, char ** argv) {
    const int64_t R = argc > 1 ? atoll(argv[1]) : 3584, K = argc > 2 ? atoll(argv[2]) : 18944, copies = argc > 3 ? atoll(argv[3]) : 4;
    const int64_t nb = K / 256;
    const size_t row_bytes = nb * sizeof(BlockQ6_K), mat = R * row_bytes;
    uint8_t * w = (uint8_t *) aligned_alloc(4096, (mat * copies + 4095) / 4096 * 4096);
    std::mt19937 g(1);
    for (size_t i = 0; i + 4 <= mat * copies; i += 4) *(uint32_t *) (w + i) = g();
    for (int64_t r = 0; r < R * nb * copies; ++r) ((BlockQ6_K *) w)[r].d = 0x3c00;
    std::vector<BlockQ8_K> x(nb);
    for (auto & blk : x) {
        blk.d = 0.01f;
        for (int i = 0; i < 256; ++i) blk.qs[i] = (int8_t) g();
        for (int j = 0; j < 16; ++j) { int t = 0; for (int i = 0; i < 16; ++i) t += blk.qs[16 * j + i]; blk.bsums[j] = t; }
    }
    std::vector<float> out(R);
    volatile int64_t sink = 0;
    auto gbps = [&](auto fn) {
        double best = 1e9;
        for (int rep = 0; rep < 6; ++rep) {
            auto t0 = std::chrono::steady_clock::now();
            for (int64_t c = 0; c < copies; ++c) {
                Args a; a.w = w + c * mat; a.w_row = row_bytes; a.x = (const uint8_t *) x.data(); a.k = K; a.n = 1; a.dst = out.data(); a.dst_col = R;
                std::thread t1([&] { fn(a, 0, R / 2); });
                fn(a, R / 2, R);
                t1.join();
            }
            best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        return mat * copies / best / 1e9;
    };
    for (int round = 0; round < 3; ++round) {
        const double rd = gbps([&](const Args & a, int64_t r0, int64_t r1) { sink = sink + read_all(a.w + r0 * a.w_row, (r1 - r0) * a.w_row); });
        const double now = gbps([](const Args & a, int64_t r0, int64_t r1) { rows<Q6_K>(a, r0, r1); });
        const double before = gbps(prefetching_two_streams<Q6_K>);
        printf("rows %ld, k %ld (%zu-byte rows), %.0f MB: read %.1f | two streams %.1f | with the old prefetch %.1f GB/s\n",
               (long) R, (long) K, row_bytes, mat * copies / 1e6, rd, now, before);
    }
}
