// Q5_0 x Q8_0 multi-column kernel variants, one thread, the real block layout,
// a 4864 x 896 matrix (the 0.5B's ffn_gate) and NC columns (8; build with
// -DNC_COLS=16 for 16), every variant checked bitwise against A.
//   A:  the 256-bit kernel before (SignedTimesQ8_0: one row, NC columns, the
//       -128 * sum(x) correction loaded per column and block)
//   B<R>: 256-bit, x + 128 prepared per column, the correction per weight block
//       (shared by the columns), R rows at once
//   D<R>: B with two columns per 512-bit register (columns in the halves),
//       scales pre-broadcast; E: the same from per-column layouts (inserts)
//   F<R>: two columns per register with their dwords interleaved, the two
//       scales as one 8-byte broadcast: what x86_pairs_avx512.inl does
// g++ -O2 -march=native -ffp-contract=off q5_0_pairs_microbench.cpp && ./a.out [ROWS]
#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

using half = uint16_t;
struct BlockQ5_0 { half d; uint8_t qh[4]; uint8_t qs[16]; };
struct BlockQ8_0 { half d; int8_t qs[32]; };
#ifndef NC_COLS
#define NC_COLS 8
#endif
constexpr int NC = NC_COLS;
static int ROWS = 4864, K = 896, NB = 28;

inline float fp16(half h) { return _cvtsh_ss(h); }
inline __m256i load256(const void * p) { return _mm256_loadu_si256((const __m256i *) p); }
inline float hsum8(__m256 x) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}
inline __m256i nibbles32(const uint8_t * p) {
    const __m128i b = _mm_loadu_si128((const __m128i *) p);
    const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(b), _mm_srli_epi16(b, 4), 1);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}
inline __m256i bits32(const uint8_t * p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int) v),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i bit = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
    return _mm256_cmpeq_epi8(_mm256_or_si256(spread, bit), _mm256_set1_epi64x(-1));
}
inline __m256i q5w(const BlockQ5_0 & b) {
    const __m256i hi = _mm256_andnot_si256(bits32(b.qh), _mm256_set1_epi8((char) 0xF0));
    return _mm256_or_si256(nibbles32(b.qs), hi);
}

std::vector<BlockQ5_0> W;
std::vector<BlockQ8_0> X[NC];
// prep A: corr[b] (-128*sum x per lane), d[b]
std::vector<__m256i> corrA[NC];
std::vector<float> dA[NC];
// prep B: x_u[b] = x ^ 0x80
std::vector<__m256i> xu[NC];
// prep D: per (block, pair) x_u of 2 columns (64 bytes), dx of 2 columns broadcast (64 bytes)
std::vector<__m512i> xu2;  // [b][pair]
std::vector<__m512> dx2;   // [b][pair]
float out[NC][8192];

static void A(int r0, int r1) {
    for (int r = r0; r < r1; ++r) {
        const BlockQ5_0 * w = &W[(size_t) r * NB];
        __m256 acc[NC];
        for (int c = 0; c < NC; ++c) acc[c] = _mm256_setzero_ps();
        for (int i = 0; i < NB; ++i) {
            const __m256i u = _mm256_xor_si256(q5w(w[i]), _mm256_set1_epi8((char) 0x80));
            const __m256 dw = _mm256_set1_ps(fp16(w[i].d));
            for (int c = 0; c < NC; ++c) {
                const __m256 q = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(corrA[c][i], u, load256(X[c][i].qs)));
                acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(&dA[c][i])), q, acc[c]);
            }
        }
        for (int c = 0; c < NC; ++c) out[c][r] = hsum8(acc[c]);
    }
}

template <int R>
static void B(int r0, int r1) {
    for (int r = r0; r < r1; r += R) {
        const BlockQ5_0 * w[R];
        for (int j = 0; j < R; ++j) w[j] = &W[(size_t) (r + j) * NB];
        __m256 acc[R][NC];
        for (int j = 0; j < R; ++j)
            for (int c = 0; c < NC; ++c) acc[j][c] = _mm256_setzero_ps();
        for (int i = 0; i < NB; ++i) {
            __m256i q[R], corr[R];
            __m256 dw[R];
            for (int j = 0; j < R; ++j) {
                q[j] = q5w(w[j][i]);
                corr[j] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                           _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8((char) 0x80), q[j]));
                dw[j] = _mm256_set1_ps(fp16(w[j][i].d));
            }
            for (int c = 0; c < NC; ++c) {
                const __m256i x = xu[c][i];
                const __m256 dx = _mm256_broadcast_ss(&dA[c][i]);
                for (int j = 0; j < R; ++j) {
                    const __m256 s = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(corr[j], x, q[j]));
                    acc[j][c] = _mm256_fmadd_ps(_mm256_mul_ps(dw[j], dx), s, acc[j][c]);
                }
            }
        }
        for (int j = 0; j < R; ++j)
            for (int c = 0; c < NC; ++c) out[c][r + j] = hsum8(acc[j][c]);
    }
}

// two columns per 512-bit register
template <int R>
static void D(int r0, int r1) {
    for (int r = r0; r < r1; r += R) {
        const BlockQ5_0 * w[R];
        for (int j = 0; j < R; ++j) w[j] = &W[(size_t) (r + j) * NB];
        __m512 acc[R][NC / 2];
        for (int j = 0; j < R; ++j)
            for (int c = 0; c < NC / 2; ++c) acc[j][c] = _mm512_setzero_ps();
        for (int i = 0; i < NB; ++i) {
            __m512i q[R], corr[R];
            __m512 dw[R];
            for (int j = 0; j < R; ++j) {
                q[j] = _mm512_broadcast_i64x4(q5w(w[j][i]));
                corr[j] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                           _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char) 0x80), q[j]));
                dw[j] = _mm512_set1_ps(fp16(w[j][i].d));
            }
            for (int c = 0; c < NC / 2; ++c) {
                const __m512i x = xu2[(size_t) i * (NC / 2) + c];
                const __m512 dx = dx2[(size_t) i * (NC / 2) + c];
                for (int j = 0; j < R; ++j) {
                    const __m512 s = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(corr[j], x, q[j]));
                    acc[j][c] = _mm512_fmadd_ps(_mm512_mul_ps(dw[j], dx), s, acc[j][c]);
                }
            }
        }
        for (int j = 0; j < R; ++j)
            for (int c = 0; c < NC / 2; ++c) {
                out[2 * c][r + j] = hsum8(_mm512_castps512_ps256(acc[j][c]));
                out[2 * c + 1][r + j] = hsum8(_mm512_extractf32x8_ps(acc[j][c], 1));
            }
    }
}


std::vector<__m256> dxb[NC];   // per column, dx broadcast to 8 lanes
std::vector<__m512i> xuI;      // [b][pair] dwords interleaved: 2l = col c, 2l+1 = col c+1
std::vector<double> dxI;       // [b][pair] (dx_c, dx_c+1)
template <int R>
static void E(int r0, int r1) {
    for (int r = r0; r < r1; r += R) {
        const BlockQ5_0 * w[R];
        for (int j = 0; j < R; ++j) w[j] = &W[(size_t) (r + j) * NB];
        __m512 acc[R][NC / 2];
        for (int j = 0; j < R; ++j)
            for (int c = 0; c < NC / 2; ++c) acc[j][c] = _mm512_setzero_ps();
        for (int i = 0; i < NB; ++i) {
            __m512i q[R], corr[R];
            __m512 dw[R];
            for (int j = 0; j < R; ++j) {
                q[j] = _mm512_broadcast_i64x4(q5w(w[j][i]));
                corr[j] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                           _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char) 0x80), q[j]));
                dw[j] = _mm512_set1_ps(fp16(w[j][i].d));
            }
            for (int c = 0; c < NC / 2; ++c) {
                const __m512i x = _mm512_inserti64x4(_mm512_castsi256_si512(xu[2 * c][i]), xu[2 * c + 1][i], 1);
                const __m512 dx = _mm512_insertf32x8(_mm512_castps256_ps512(dxb[2 * c][i]), dxb[2 * c + 1][i], 1);
                for (int j = 0; j < R; ++j) {
                    const __m512 s = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(corr[j], x, q[j]));
                    acc[j][c] = _mm512_fmadd_ps(_mm512_mul_ps(dw[j], dx), s, acc[j][c]);
                }
            }
        }
        for (int j = 0; j < R; ++j)
            for (int c = 0; c < NC / 2; ++c) {
                out[2 * c][r + j] = hsum8(_mm512_castps512_ps256(acc[j][c]));
                out[2 * c + 1][r + j] = hsum8(_mm512_extractf32x8_ps(acc[j][c], 1));
            }
    }
}
template <int R>
static void F(int r0, int r1) {
    const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    const __m512i evens = _mm512_set_epi32(15, 13, 11, 9, 7, 5, 3, 1, 14, 12, 10, 8, 6, 4, 2, 0);
    for (int r = r0; r < r1; r += R) {
        const BlockQ5_0 * w[R];
        for (int j = 0; j < R; ++j) w[j] = &W[(size_t) (r + j) * NB];
        __m512 acc[R][NC / 2];
        for (int j = 0; j < R; ++j)
            for (int c = 0; c < NC / 2; ++c) acc[j][c] = _mm512_setzero_ps();
        for (int i = 0; i < NB; ++i) {
            __m512i q[R], corr[R];
            __m512 dw[R];
            for (int j = 0; j < R; ++j) {
                q[j] = _mm512_permutexvar_epi32(dup, _mm512_castsi256_si512(q5w(w[j][i])));
                corr[j] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                           _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char) 0x80), q[j]));
                dw[j] = _mm512_set1_ps(fp16(w[j][i].d));
            }
            for (int c = 0; c < NC / 2; ++c) {
                const __m512i x = xuI[(size_t) i * (NC / 2) + c];
                const __m512 dx = _mm512_castpd_ps(_mm512_set1_pd(dxI[(size_t) i * (NC / 2) + c]));
                for (int j = 0; j < R; ++j) {
                    const __m512 s = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(corr[j], x, q[j]));
                    acc[j][c] = _mm512_fmadd_ps(_mm512_mul_ps(dw[j], dx), s, acc[j][c]);
                }
            }
        }
        for (int j = 0; j < R; ++j)
            for (int c = 0; c < NC / 2; ++c) {
                const __m512 v = _mm512_permutexvar_ps(evens, acc[j][c]);
                out[2 * c][r + j] = hsum8(_mm512_castps512_ps256(v));
                out[2 * c + 1][r + j] = hsum8(_mm512_extractf32x8_ps(v, 1));
            }
    }
}

template <void (*F)(int, int)>
static double time_ns() {
    double best = 1e30;
    for (int t = 0; t < 9; ++t) {
        auto t0 = std::chrono::steady_clock::now();
        for (int rep = 0; rep < 5; ++rep) F(0, ROWS);
        double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / 5;
        if (ns < best) best = ns;
    }
    return best / ((double) ROWS * NB * NC);
}

int main(int argc, char ** argv) {
    if (argc > 1) ROWS = atoi(argv[1]);
    srand(1);
    W.resize((size_t) ROWS * NB);
    for (auto & b : W) {
        b.d = _cvtss_sh(0.001f * (rand() % 100 + 1), 0);
        for (auto & v : b.qh) v = rand();
        for (auto & v : b.qs) v = rand();
    }
    xu2.resize((size_t) NB * NC / 2);
    dx2.resize((size_t) NB * NC / 2);
    for (int c = 0; c < NC; ++c) {
        X[c].resize(NB), corrA[c].resize(NB), dA[c].resize(NB), xu[c].resize(NB);
        for (int i = 0; i < NB; ++i) {
            X[c][i].d = _cvtss_sh(0.01f * (rand() % 100 + 1), 0);
            for (auto & v : X[c][i].qs) v = (int8_t) (rand() % 255 - 127);
            dA[c][i] = fp16(X[c][i].d);
            const __m256i xv = load256(X[c][i].qs);
            const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), xv), _mm256_set1_epi16(1));
            corrA[c][i] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sums, 7));
            xu[c][i] = _mm256_xor_si256(xv, _mm256_set1_epi8((char) 0x80));
            ((__m256i *) &xu2[(size_t) i * (NC / 2) + c / 2])[c % 2] = xu[c][i];
            ((__m256 *) &dx2[(size_t) i * (NC / 2) + c / 2])[c % 2] = _mm256_set1_ps(dA[c][i]);
        }
    }
    xuI.resize((size_t) NB * NC / 2); dxI.resize((size_t) NB * NC / 2);
    for (int c = 0; c < NC; ++c) {
        dxb[c].resize(NB);
        for (int i = 0; i < NB; ++i) {
            dxb[c][i] = _mm256_set1_ps(dA[c][i]);
            int32_t * dst = (int32_t *) &xuI[(size_t) i * (NC / 2) + c / 2];
            const int32_t * srcw = (const int32_t *) &xu[c][i];
            for (int l = 0; l < 8; ++l) dst[2 * l + c % 2] = srcw[l];
            ((float *) &dxI[(size_t) i * (NC / 2) + c / 2])[c % 2] = dA[c][i];
        }
    }
    static float ref[NC][8192];
    A(0, ROWS);
    std::memcpy(ref, out, sizeof ref);
    auto check = [&](const char * name) {
        bool same = std::memcmp(ref, out, sizeof ref) == 0;
        std::memset(out, 0, sizeof out);
        return same ? "same" : "DIFF";
    };
    B<1>(0, ROWS); std::printf("B1 %s ", check("B1"));
    B<2>(0, ROWS); std::printf("B2 %s ", check("B2"));
    D<1>(0, ROWS); std::printf("D1 %s ", check("D1"));
    D<2>(0, ROWS); std::printf("D2 %s ", check("D2"));
    E<1>(0, ROWS); std::printf("E1 %s ", check("E1"));
    F<1>(0, ROWS); std::printf("F1 %s\n", check("F1"));
    for (int round = 0; round < 3; ++round)
        std::printf("ns/(row,col,block): A %.3f  B1 %.3f  B2 %.3f  D1 %.3f  E1 %.3f  F1 %.3f F2 %.3f\n", time_ns<A>(), time_ns<B<1>>(),
                    time_ns<B<2>>(), time_ns<D<1>>(), time_ns<E<1>>(), time_ns<F<1>>(), time_ns<F<2>>());
}
