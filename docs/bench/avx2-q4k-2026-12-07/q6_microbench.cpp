// Q6_K, one column, two row streams per thread: the current kernel against a variant that forms
// each chunk's scales with one shuffle of pre-widened scales (bitwise checked). TWO=1: two
// threads on their own L2-resident copies. Link with libggml-cpu and libggml-base.
#include "kernels/x86_avx2.cpp"
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>
namespace sb::kernels { namespace {
struct Q6_K_StepB {
    using WBlock = BlockQ6_K;
    template <int NC>
    static void step(const BlockQ6_K & w, const BlockQ8_K * const * x, KState * st) {
        const __m128i s8 = _mm_loadu_si128((const __m128i *) w.scales);
        const __m256i scales16 = _mm256_cvtepi8_epi16(s8);
        const __m256i half[2] = { _mm256_permute2x128_si256(scales16, scales16, 0x00), _mm256_permute2x128_si256(scales16, scales16, 0x11) };
        __m256i sumi[NC], offset[NC];
        for (int c = 0; c < NC; ++c) {
            sumi[c] = _mm256_setzero_si256();
            offset[c] = _mm256_slli_epi32(_mm256_madd_epi16(load256(x[c]->bsums), scales16), 5);
        }
        for (int j = 0; j < kQK_K / 128; ++j) {
            __m256i q[4], scale[4];
            q6_K_values(w, j, q);
            for (int t = 0; t < 4; ++t) {
                const int i = 2 * t;  // word i in the low lane, i + 1 in the high lane
                const long long lo = (long long) (0x0100010001000100ULL + 0x0202020202020202ULL * i);
                const long long hi = (long long) (0x0100010001000100ULL + 0x0202020202020202ULL * (i + 1));
                scale[t] = _mm256_shuffle_epi8(half[j], _mm256_set_epi64x(hi, hi, lo, lo));
            }
            for (int c = 0; c < NC; ++c) {
                const int8_t * q8 = x[c]->qs + 128 * j;
                for (int t = 0; t < 4; ++t) sumi[c] = madd_acc(sumi[c], scale[t], _mm256_maddubs_epi16(q[t], load256(q8 + 32 * t)));
            }
        }
        const float dw = fp16(w.d);
        for (int c = 0; c < NC; ++c)
            st[c].acc = _mm256_fmadd_ps(_mm256_set1_ps(x[c]->d * dw), _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi[c], offset[c])), st[c].acc);
    }
    static float finish(const KState & s) { return finish_values(s); }
};
using Q6_KB = SuperBlocks<Q6_K_StepB>;
}}
using namespace sb::kernels;
template <class T>
void stream2(const uint8_t * w, size_t w_row, const uint8_t * x, int64_t k, float * dst, int64_t r0, int64_t r1) {
    const int64_t h = (r1 - r0) / 2, ahead = std::max<int64_t>(1, 2048 / (int64_t) w_row);
    float two[2];
    for (int64_t r = r0; r < r0 + h; ++r) {
        if (r + ahead < r0 + h)
            for (size_t off = 0; off < w_row; off += 64) {
                _mm_prefetch((const char *) w + (r + ahead) * w_row + off, _MM_HINT_T0);
                _mm_prefetch((const char *) w + (r + h + ahead) * w_row + off, _MM_HINT_T0);
            }
        T::dot_two_rows(w + r * w_row, w + (r + h) * w_row, x, nullptr, k, two);
        dst[r] = two[0], dst[r + h] = two[1];
    }
}
int main() {
    std::mt19937 g(1);
    for (auto [rows, k] : {std::pair<int64_t,int64_t>{128, 1536}, {1536, 8960}, {151936, 1536}}) {
        const int64_t nb = k / 256; const size_t w_row = nb * sizeof(BlockQ6_K);
        std::vector<uint8_t> w(rows * w_row);
        for (auto & b : w) b = g();
        for (int64_t r = 0; r < rows; ++r) for (int64_t b = 0; b < nb; ++b) ((BlockQ6_K *) (w.data() + r * w_row))[b].d = 0x2000 + (g() & 0x3ff);
        std::vector<BlockQ8_K> x(nb);
        for (auto & blk : x) { blk.d = 0.01f; for (int i = 0; i < 256; ++i) blk.qs[i] = (int8_t) g(); for (int j = 0; j < 16; ++j) { int s = 0; for (int i = 0; i < 16; ++i) s += blk.qs[16 * j + i]; blk.bsums[j] = s; } }
        std::vector<float> a(rows), b(rows);
        stream2<Q6_K>(w.data(), w_row, (const uint8_t *) x.data(), k, a.data(), 0, rows);
        stream2<Q6_KB>(w.data(), w_row, (const uint8_t *) x.data(), k, b.data(), 0, rows);
        printf("rows %ld k %ld: mismatches %d\n", rows, k, (int) (memcmp(a.data(), b.data(), rows * 4) != 0));
        for (int round = 0; round < 4; ++round) {
            for (int v = 0; v < 2; ++v) {
                double best = 1e9;
                for (int rep = 0; rep < (rows < 1000 ? 200 : 10); ++rep) {
                    auto t0 = std::chrono::steady_clock::now();
                    if (rows < 1000 && getenv("TWO")) { std::vector<uint8_t> w2 = w; std::vector<float> b2(rows);
                        auto t0b = std::chrono::steady_clock::now();
                        std::thread tt([&] { for (int z = 0; z < 50; ++z) stream2<Q6_K>(w2.data(), w_row, (const uint8_t *) x.data(), k, b2.data(), 0, rows); });
                        for (int z = 0; z < 50; ++z) stream2<Q6_K>(w.data(), w_row, (const uint8_t *) x.data(), k, b.data(), 0, rows);
                        tt.join();
                        best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0b).count() / 100); continue; }
                    if (rows < 1000) { for (int z = 0; z < 50; ++z) v ? stream2<Q6_KB>(w.data(), w_row, (const uint8_t *) x.data(), k, b.data(), 0, rows) : stream2<Q6_K>(w.data(), w_row, (const uint8_t *) x.data(), k, b.data(), 0, rows);
                        best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 50); continue; }
                    std::thread t1([&] { v ? stream2<Q6_KB>(w.data(), w_row, (const uint8_t *) x.data(), k, b.data(), 0, rows / 2) : stream2<Q6_K>(w.data(), w_row, (const uint8_t *) x.data(), k, b.data(), 0, rows / 2); });
                    v ? stream2<Q6_KB>(w.data(), w_row, (const uint8_t *) x.data(), k, b.data(), rows / 2, rows) : stream2<Q6_K>(w.data(), w_row, (const uint8_t *) x.data(), k, b.data(), rows / 2, rows);
                    t1.join();
                    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
                }
                printf("%s %.3f ms (%.1f GB/s)  ", v ? "B" : "cur", best, rows * w_row / best / 1e6);
            }
            printf("\n");
        }
    }
}
