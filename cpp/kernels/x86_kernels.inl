// x86 kernel bodies, included by x86_avx2.cpp and x86_avx512.cpp, which are
// compiled for their instruction sets and define SB_X86_ISA (the kernels'
// name prefix) and SB_X86_ENTRY (the lookup function they export).
//
// For each weight type, the arithmetic of ggml's x86 vec_dot for it as this
// ggml build compiles it: for the quantized types ggml's AVX2 source (an
// AVX-512 build of ggml runs the same float operations, only forming some
// integer sums with VNNI), as compiled (GCC fuses ggml's scalar `s += a * b`
// into one FMA); for F16/BF16 the variant of vec.cpp ggml was built for. Same
// integer sums, same float operations in the same order, same final horizontal
// sum, run for up to a pass's columns (PassCols) per unpacked weight block.
// Integer sums are exact, so only the float operations need to match, and the
// instruction that forms an integer sum may differ (AVX-512 VNNI's dpbusd or
// AVX2's maddubs + madd: the same integers). The including files are compiled
// with -ffp-contract=off and every FMA is written explicitly.
//
// Entered only after kernels.cpp has checked the CPU's features.

#include "kernels/blocks.h"
#include "kernels/isa_scratch.h"
#include "kernels/kernels.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

namespace sb::kernels {
namespace {

#if defined(__AVX512VL__)
constexpr int kCols = 8;  // activation columns per pass over a weight row (32 vector registers; PassCols: a kernel may name its own)
#else
constexpr int kCols = 4;  // activation columns per pass over a weight row (16 vector registers; PassCols: a kernel may name its own)
#endif

inline float fp16(half h) { return _cvtsh_ss(h); }

// two adjacent fp16 values (d and m, or d and s) as floats in lanes 0 and 1
inline __m128 fp16_pair(const half * p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return _mm_cvtph_ps(_mm_cvtsi32_si128((int) v));
}

inline __m256i load256(const void * p) { return _mm256_loadu_si256((const __m256i *) p); }

// ggml's hsum_float_8: high half + low half, then pairs, then the last two
inline float hsum8(__m256 x) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

// 32 4-bit values -> 32 bytes: low nibbles of the 16 bytes, then high nibbles
inline __m256i nibbles32(const uint8_t * p) {
    const __m128i b = _mm_loadu_si128((const __m128i *) p);
    const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(b), _mm_srli_epi16(b, 4), 1);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// 32 bits -> 32 bytes, 0xFF where the bit is set
inline __m256i bits32(const uint8_t * p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int) v),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i bit = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
    return _mm256_cmpeq_epi8(_mm256_or_si256(spread, bit), _mm256_set1_epi64x(-1));
}

// int32 lane l = sum of the 4 products of bytes 4l..4l+3 (unsigned a, signed b),
// as float; the same integers as ggml's dpbusd or maddubs + madd
inline __m256 dot_us8(__m256i a, __m256i b) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b));
#else
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1)));
#endif
}

// acc + madd(a, b): int16 pairs multiplied, summed into int32 lanes (VNNI's
// dpwssd does both in one instruction; the integers are the same)
inline __m256i madd_acc(__m256i acc, __m256i a, __m256i b) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpwssd_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

// 32 signed weight bytes in the form their products with activation bytes
// need: ggml's |w| * sign(x, w) (maddubs + madd), or with VNNI (w + 128) * x
// (dpbusd) started from corr = -128 * sum(x) per lane. Either way int32 lane l
// is exactly sum(w x) over bytes 4l..4l+3, as ggml's mul_sum_i8_pairs_float.
struct SignedWeights {
    __m256i w, u;
    explicit SignedWeights(__m256i q) : w(q) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
        u = _mm256_xor_si256(q, _mm256_set1_epi8((char) 0x80));
#else
        u = _mm256_sign_epi8(q, q);
#endif
    }
    __m256i dot(__m256i x, __m256i corr) const {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
        return _mm256_dpbusd_epi32(corr, u, x);
#else
        (void) corr;
        return _mm256_madd_epi16(_mm256_maddubs_epi16(u, _mm256_sign_epi8(x, w)), _mm256_set1_epi16(1));
#endif
    }
};

// sum of the 8 int32 lanes (any order: integers)
inline int hsum_i32(__m256i v) {
    __m128i r = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    r = _mm_add_epi32(r, _mm_unpackhi_epi64(r, r));
    return _mm_cvtsi128_si32(_mm_add_epi32(r, _mm_shuffle_epi32(r, 1)));
}

// fma(a, b, c) on scalars, rounded once (ggml's compiled code fuses these)
inline float fma1(float a, float b, float c) {
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

// ---- Q8_0, Q5_0 and Q4_0 weights, Q8_0 activations (ggml: mul_sum_i8_pairs_float)

inline __m256i q8_0_weights(const BlockQ8_0 & b) { return load256(b.qs); }
inline __m256i q5_0_weights(const BlockQ5_0 & b) {
    const __m256i hi = _mm256_andnot_si256(bits32(b.qh), _mm256_set1_epi8((char) 0xF0));
    return _mm256_or_si256(nibbles32(b.qs), hi);  // q - 16 as a signed byte
}
inline __m256i q4_0_weights(const BlockQ4_0 & b) { return _mm256_sub_epi8(nibbles32(b.qs), _mm256_set1_epi8(8)); }

// Per activation column, prepared once per call (not per weight row): the
// block scales as floats and, for dpbusd, each lane's sum of x times -128.
struct PrepQ8_0 {
    using XBlock = BlockQ8_0;
    static size_t bytes(int64_t k) { return (size_t) (k / kQK) * (sizeof(float) + sizeof(__m256i)); }
    static void prepare(const uint8_t * xp, int64_t k, uint8_t * out) {
        const BlockQ8_0 * x = (const BlockQ8_0 *) xp;
        const int64_t nb = k / kQK;
        __m256i * corr = (__m256i *) out;  // first: 32-byte aligned
        float * d = (float *) (out + nb * sizeof(__m256i));
        for (int64_t i = 0; i < nb; ++i) {
            d[i] = fp16(x[i].d);
            const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), load256(x[i].qs)),
                                                   _mm256_set1_epi16(1));
            corr[i] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sums, 7));
        }
    }
    static const __m256i * corr(const uint8_t * prep) { return (const __m256i *) prep; }
    static const float * scales(const uint8_t * prep, int64_t k) { return (const float *) (prep + k / kQK * sizeof(__m256i)); }
};

template <class WB, __m256i (*Weights)(const WB &)>
struct SignedTimesQ8_0 : PrepQ8_0 {
    using WBlock = WB;
    // 8 columns per pass with 16 registers too (8 sums, the block's two forms,
    // its scale): the block's unpacking shared by twice the columns; Q5_0 at
    // 8 columns took 17% fewer cycles per column than at 4, Q8_0 6%
    // (docs/bench/avx2-types-2026-12-07)
    static constexpr int kPassCols = 8;
    template <int NC>
    static void dot(const uint8_t * wp, const uint8_t * const * xp, const uint8_t * const * prep, int64_t k, float * out) {
        const WB * w = (const WB *) wp;
        const BlockQ8_0 * x[NC];
        const __m256i * corr[NC];
        const float * dx[NC];
        __m256 acc[NC];
        for (int c = 0; c < NC; ++c) {
            x[c] = (const BlockQ8_0 *) xp[c];
            corr[c] = PrepQ8_0::corr(prep[c]);
            dx[c] = PrepQ8_0::scales(prep[c], k);
            acc[c] = _mm256_setzero_ps();
        }
        for (int64_t i = 0; i < k / kQK; ++i) {
            const SignedWeights qw(Weights(w[i]));
            const __m256 dw = _mm256_set1_ps(fp16(w[i].d));
            for (int c = 0; c < NC; ++c) {
                const __m256 q = _mm256_cvtepi32_ps(qw.dot(load256(x[c][i].qs), corr[c][i]));
                acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(&dx[c][i])), q, acc[c]);
            }
        }
        for (int c = 0; c < NC; ++c) out[c] = hsum8(acc[c]);
    }
    // One column, two weight rows side by side, each with dot<1>'s arithmetic:
    // two FMA chains where one row alone waits on its one.
    static void dot_two_rows(const uint8_t * wp0, const uint8_t * wp1, const uint8_t * xp, const uint8_t * prep, int64_t k,
                             float * out) {
        const WB * w0 = (const WB *) wp0, * w1 = (const WB *) wp1;
        const BlockQ8_0 * x = (const BlockQ8_0 *) xp;
        const __m256i * corr = PrepQ8_0::corr(prep);
        const float * dx = PrepQ8_0::scales(prep, k);
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        for (int64_t i = 0; i < k / kQK; ++i) {
            const __m256i xq = load256(x[i].qs);
            const __m256 sx = _mm256_broadcast_ss(&dx[i]);
            const SignedWeights q0(Weights(w0[i])), q1(Weights(w1[i]));
            const __m256 d0 = _mm256_mul_ps(_mm256_set1_ps(fp16(w0[i].d)), sx);
            const __m256 d1 = _mm256_mul_ps(_mm256_set1_ps(fp16(w1[i].d)), sx);
            acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(q0.dot(xq, corr[i])), acc0);
            acc1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(q1.dot(xq, corr[i])), acc1);
        }
        out[0] = hsum8(acc0), out[1] = hsum8(acc1);
    }
};
using Q8_0 = SignedTimesQ8_0<BlockQ8_0, q8_0_weights>;
using Q5_0 = SignedTimesQ8_0<BlockQ5_0, q5_0_weights>;
using Q4_0 = SignedTimesQ8_0<BlockQ4_0, q4_0_weights>;  // plain layout (where llama.cpp does not repack it)

// ---- IQ4_NL weights (plain layout), Q8_0 activations: 16 fixed values
// picked by 4-bit index. ggml sums even and odd blocks in two accumulators
// and a last odd block in scalar after the horizontal sum.

inline __m256i iq4_weights(const uint8_t * qs) {
    static const int8_t kValues[16] = { -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113 };
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *) kValues));
    return _mm256_shuffle_epi8(table, nibbles32(qs));
}

struct IQ4_NL : PrepQ8_0 {
    using WBlock = BlockIQ4_NL;
    template <int NC>
    static void dot(const uint8_t * wp, const uint8_t * const * xp, const uint8_t * const * prep, int64_t k, float * out) {
        const BlockIQ4_NL * w = (const BlockIQ4_NL *) wp;
        const int64_t nb = k / kQK;
        const BlockQ8_0 * x[NC];
        const __m256i * corr[NC];
        const float * dx[NC];
        __m256 acc[2][NC];
        for (int c = 0; c < NC; ++c) {
            x[c] = (const BlockQ8_0 *) xp[c];
            corr[c] = PrepQ8_0::corr(prep[c]);
            dx[c] = PrepQ8_0::scales(prep[c], k);
            acc[0][c] = acc[1][c] = _mm256_setzero_ps();
        }
        for (int64_t i0 = 0; i0 + 1 < nb; i0 += 2) {
            for (int h = 0; h < 2; ++h) {  // block i0 + h into accumulator h
                const int64_t i = i0 + h;
                const SignedWeights qw(iq4_weights(w[i].qs));
                const float dw = fp16(w[i].d);
                for (int c = 0; c < NC; ++c) {
                    const __m256 q = _mm256_cvtepi32_ps(qw.dot(load256(x[c][i].qs), corr[c][i]));
                    acc[h][c] = _mm256_fmadd_ps(_mm256_set1_ps(dx[c][i] * dw), q, acc[h][c]);
                }
            }
        }
        for (int c = 0; c < NC; ++c) out[c] = hsum8(_mm256_add_ps(acc[0][c], acc[1][c]));
        if (nb & 1) {  // the last block: its exact integer sum, one scalar FMA
            const int64_t i = nb - 1;
            const SignedWeights qw(iq4_weights(w[i].qs));
            const float dw = fp16(w[i].d);
            for (int c = 0; c < NC; ++c)
                out[c] = fma1((float) hsum_i32(qw.dot(load256(x[c][i].qs), corr[c][i])), dx[c][i] * dw, out[c]);
        }
    }
};

// ---- Q4_1 and Q5_1 weights, Q8_1 activations: d_w*d_x*sum(q_w*q_x) + m_w*s_x

inline __m256i q4_1_weights(const BlockQ4_1 & b) { return nibbles32(b.qs); }
inline __m256i q5_1_weights(const BlockQ5_1 & b) {
    return _mm256_or_si256(nibbles32(b.qs), _mm256_and_si256(bits32(b.qh), _mm256_set1_epi8(0x10)));
}

template <class WB, __m256i (*Weights)(const WB &)>
struct UnsignedTimesQ8_1 {
    using WBlock = WB;
    using XBlock = BlockQ8_1;
    static size_t bytes(int64_t k) { return (size_t) (k / kQK) * 2 * sizeof(float); }
    static void prepare(const uint8_t * xp, int64_t k, uint8_t * out) {  // d[nb], then s[nb]
        const BlockQ8_1 * x = (const BlockQ8_1 *) xp;
        const int64_t nb = k / kQK;
        float * d = (float *) out;
        for (int64_t i = 0; i < nb; ++i) d[i] = fp16(x[i].d), d[nb + i] = fp16(x[i].s);
    }

    template <int NC>
    static void dot(const uint8_t * wp, const uint8_t * const * xp, const uint8_t * const * prep, int64_t k, float * out) {
        const WB * w = (const WB *) wp;
        const int64_t nb = k / kQK;
        const BlockQ8_1 * x[NC];
        const float * dx[NC];
        __m256 acc[NC];
        __m128 summs[NC];  // scalar, in lane 0 (ggml's compiled code fuses it into one FMA)
        for (int c = 0; c < NC; ++c) {
            x[c] = (const BlockQ8_1 *) xp[c];
            dx[c] = (const float *) prep[c];
            acc[c] = _mm256_setzero_ps();
            summs[c] = _mm_setzero_ps();
        }
        for (int64_t i = 0; i < nb; ++i) {
            const __m256i qw = Weights(w[i]);
            const __m128 dm_w = fp16_pair(&w[i].d);             // d_w, m_w
            const __m128 m_w = _mm_movehdup_ps(dm_w);          // m_w in lane 0
            const __m256 d_w = _mm256_broadcastss_ps(dm_w);
            for (int c = 0; c < NC; ++c) {
                summs[c] = _mm_fmadd_ss(m_w, _mm_load_ss(&dx[c][nb + i]), summs[c]);
                const __m256 d = _mm256_mul_ps(d_w, _mm256_broadcast_ss(&dx[c][i]));
                acc[c] = _mm256_fmadd_ps(d, dot_us8(qw, load256(x[c][i].qs)), acc[c]);
            }
        }
        for (int c = 0; c < NC; ++c) out[c] = hsum8(acc[c]) + _mm_cvtss_f32(summs[c]);
    }
    // One column, two weight rows side by side, each with dot<1>'s arithmetic
    static void dot_two_rows(const uint8_t * wp0, const uint8_t * wp1, const uint8_t * xp, const uint8_t * prep, int64_t k,
                             float * out) {
        const WB * w[2] = { (const WB *) wp0, (const WB *) wp1 };
        const BlockQ8_1 * x = (const BlockQ8_1 *) xp;
        const float * dx = (const float *) prep;
        const int64_t nb = k / kQK;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        __m128 summs0 = _mm_setzero_ps(), summs1 = _mm_setzero_ps();
        for (int64_t i = 0; i < nb; ++i) {
            const __m256i xq = load256(x[i].qs);
            const __m256 sx = _mm256_broadcast_ss(&dx[i]);
            const __m128 s_x = _mm_load_ss(&dx[nb + i]);
            const __m128 dm0 = fp16_pair(&w[0][i].d), dm1 = fp16_pair(&w[1][i].d);  // d_w, m_w
            summs0 = _mm_fmadd_ss(_mm_movehdup_ps(dm0), s_x, summs0);
            summs1 = _mm_fmadd_ss(_mm_movehdup_ps(dm1), s_x, summs1);
            acc0 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_broadcastss_ps(dm0), sx), dot_us8(Weights(w[0][i]), xq), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_broadcastss_ps(dm1), sx), dot_us8(Weights(w[1][i]), xq), acc1);
        }
        out[0] = hsum8(acc0) + _mm_cvtss_f32(summs0), out[1] = hsum8(acc1) + _mm_cvtss_f32(summs1);
    }
};
using Q4_1 = UnsignedTimesQ8_1<BlockQ4_1, q4_1_weights>;
using Q5_1 = UnsignedTimesQ8_1<BlockQ5_1, q5_1_weights>;

// K-quant activations (Q8_K) carry float scales and block sums already
struct NoPrep {
    using XBlock = BlockQ8_K;
    static size_t bytes(int64_t) { return 0; }
    static void prepare(const uint8_t *, int64_t, uint8_t *) {}
};

// The K-quant kernels below are written as one super-block step: S::step<NC>
// (a weight super-block times NC activation super-blocks, into NC float
// states) and S::finish (a state's final sum): their vec_dot's arithmetic for
// one super-block and its closing reduction. SuperBlocks makes both entry
// points from them, dot<NC> (one row, NC columns) and dot_two_rows (one
// column, two rows: the single column's two streams), so a column gets the
// same operations either way.
struct KState {
    __m256 acc;  // the values' float lanes
    __m128 m;    // the mins' terms, for the types that have mins
};

template <class S>
struct SuperBlocks : NoPrep {
    using WBlock = typename S::WBlock;
    template <int NC>
    static void dot(const uint8_t * wp, const uint8_t * const * xp, const uint8_t * const *, int64_t k, float * out) {
        const WBlock * w = (const WBlock *) wp;
        KState st[NC] = {};
        const BlockQ8_K * xi[NC];
        for (int64_t i = 0; i < k / kQK_K; ++i) {
            for (int c = 0; c < NC; ++c) xi[c] = (const BlockQ8_K *) xp[c] + i;
            S::template step<NC>(w[i], xi, st);
        }
        for (int c = 0; c < NC; ++c) out[c] = S::finish(st[c]);
    }
    static void dot_two_rows(const uint8_t * wp0, const uint8_t * wp1, const uint8_t * xp, const uint8_t *, int64_t k,
                             float * out) {
        const WBlock * w0 = (const WBlock *) wp0, * w1 = (const WBlock *) wp1;
        const BlockQ8_K * x = (const BlockQ8_K *) xp;
        KState s0 = {}, s1 = {};
        for (int64_t i = 0; i < k / kQK_K; ++i) {
            const BlockQ8_K * xi[1] = { x + i };
            S::template step<1>(w0[i], xi, &s0);
            S::template step<1>(w1[i], xi, &s1);
        }
        out[0] = S::finish(s0), out[1] = S::finish(s1);
    }
};

// the values' lanes summed (the types without mins)
inline float finish_values(const KState & s) { return hsum8(s.acc); }
// the values' lanes, plus the mins' one scalar lane (Q5_K)
inline float finish_values_and_scalar_mins(const KState & s) { return hsum8(s.acc) + _mm_cvtss_f32(s.m); }

// ---- Q4_K weights, Q8_K activations

// The 8 six-bit scales and 8 mins of a Q4_K super-block, from its 12 bytes
// a|b|c: scale j < 4 is the low 6 bits of a's byte j, min j < 4 those of b's;
// scale j >= 4 is c's low nibble with a's top 2 bits above it, min j >= 4 is
// c's high nibble with b's top 2 bits. Four bytes at a time.
inline void q4_K_scales(const uint8_t * q, uint32_t * sc, uint32_t * mn) {
    uint32_t a, b, c;
    std::memcpy(&a, q, 4);
    std::memcpy(&b, q + 4, 4);
    std::memcpy(&c, q + 8, 4);
    sc[0] = a & 0x3f3f3f3f;
    mn[0] = b & 0x3f3f3f3f;
    sc[1] = (c & 0x0f0f0f0f) | (((a >> 6) & 0x03030303) << 4);
    mn[1] = ((c >> 4) & 0x0f0f0f0f) | (((b >> 6) & 0x03030303) << 4);
}

struct Q4_K_Step {
    using WBlock = BlockQ4_K;
    template <int NC>
    static void step(const BlockQ4_K & w, const BlockQ8_K * const * x, KState * st) {
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        uint32_t sc4[2], mn4[2];
        q4_K_scales(w.scales, sc4, mn4);
        const __m128i mins = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int) mn4[1], (int) mn4[0]));
        // scale j as int16 in every lane: a byte shuffle of the widened scales
        const __m128i sc16 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int) sc4[1], (int) sc4[0]));
        const __m256i scales = _mm256_inserti128_si256(_mm256_castsi128_si256(sc16), sc16, 1);
        const float dw = fp16(w.d), dminw = fp16(w.dmin);
        for (int c = 0; c < NC; ++c) {  // the mins times the activation's 32-element sums
            const __m256i bs = load256(x[c]->bsums);
            const __m128i sums = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
            const float dmin = -x[c]->d * dminw;
            st[c].m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(_mm_madd_epi16(mins, sums)), st[c].m);
        }
        __m256i sumi[NC];
        for (int c = 0; c < NC; ++c) sumi[c] = _mm256_setzero_si256();
        for (int j = 0; j < kQK_K / 64; ++j) {
            const __m256i sl = _mm256_shuffle_epi8(scales, _mm256_set1_epi16((short) (0x0100 + 0x0202 * (2 * j))));
            const __m256i sh = _mm256_shuffle_epi8(scales, _mm256_set1_epi16((short) (0x0100 + 0x0202 * (2 * j + 1))));
            const __m256i bits = load256(w.qs + 32 * j);
            const __m256i ql = _mm256_and_si256(bits, m4), qh = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            for (int c = 0; c < NC; ++c) {
                const int8_t * q8 = x[c]->qs + 64 * j;
                sumi[c] = madd_acc(sumi[c], sl, _mm256_maddubs_epi16(ql, load256(q8)));
                sumi[c] = madd_acc(sumi[c], sh, _mm256_maddubs_epi16(qh, load256(q8 + 32)));
            }
        }
        for (int c = 0; c < NC; ++c)
            st[c].acc = _mm256_fmadd_ps(_mm256_set1_ps(x[c]->d * dw), _mm256_cvtepi32_ps(sumi[c]), st[c].acc);
    }
    static float finish(const KState & s) {  // the mins' 4 lanes: pairs, then the last two
        __m128 m = _mm_add_ps(s.m, _mm_movehl_ps(s.m, s.m));
        m = _mm_add_ss(m, _mm_movehdup_ps(m));
        return hsum8(s.acc) + _mm_cvtss_f32(m);
    }
};
using Q4_K = SuperBlocks<Q4_K_Step>;

// ---- Q5_K weights, Q8_K activations: Q4_K's scales and mins, and a fifth bit
// per value in qh (bit g of byte e for value e of the g-th 32)

// the 8 mins times the activation's 32-value sums, as one integer (ggml sums
// them in int32 lanes and adds the lanes: the same integer)
inline int q_K_mins_dot(const uint32_t * mn4, const BlockQ8_K & x) {
    const __m128i mins = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int) mn4[1], (int) mn4[0]));
    const __m256i bs = load256(x.bsums);
    const __m128i sums = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    const __m128i p = _mm_madd_epi16(mins, sums);
    const __m128i r = _mm_add_epi32(p, _mm_unpackhi_epi64(p, p));
    return _mm_cvtsi128_si32(_mm_add_epi32(r, _mm_shuffle_epi32(r, 1)));
}

// int16 scale j in every lane, from 8 int16 scales repeated in both 128-bit halves
inline __m256i scale_all(__m256i scales, int j) {
    return _mm256_shuffle_epi8(scales, _mm256_set1_epi16((short) (0x0100 + 0x0202 * j)));
}

// bit b of every byte of h moved to bit `to`; 16-bit shifts do not mix bytes
// once the result is masked to that bit
inline __m256i bit_to(__m256i h, int b, int to) {
    return _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(h, b), to), _mm256_set1_epi8((char) (1 << to)));
}

struct Q5_K_Step {
    using WBlock = BlockQ5_K;
    template <int NC>
    static void step(const BlockQ5_K & w, const BlockQ8_K * const * x, KState * st) {
        uint32_t sc4[2], mn4[2];
        q4_K_scales(w.scales, sc4, mn4);
        const __m256i scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int) sc4[1], (int) sc4[0])));
        const float dw = fp16(w.d), dminw = fp16(w.dmin);
        __m256i sumi[NC];
        for (int c = 0; c < NC; ++c) {  // ggml's scalar sum of the mins' terms (one FMA per super-block, as compiled)
            sumi[c] = _mm256_setzero_si256();
            const __m128 m = _mm_set_ss((float) q_K_mins_dot(mn4, *x[c]));
            st[c].m = _mm_fmadd_ss(m, _mm_set_ss(-x[c]->d * dminw), st[c].m);
        }
        const __m256i hbits = load256(w.qh);
        for (int g = 0; g < kQK_K / 32; ++g) {  // 32 values per scale
            const __m256i bits = load256(w.qs + 32 * (g / 2));
            const __m256i lo = _mm256_and_si256(g % 2 ? _mm256_srli_epi16(bits, 4) : bits, _mm256_set1_epi8(0x0F));
            const __m256i q = _mm256_or_si256(lo, bit_to(hbits, g, 4));
            const __m256i sc = scale_all(scales, g);
            for (int c = 0; c < NC; ++c)
                sumi[c] = madd_acc(sumi[c], sc, _mm256_maddubs_epi16(q, load256(x[c]->qs + 32 * g)));
        }
        for (int c = 0; c < NC; ++c)
            st[c].acc = _mm256_fmadd_ps(_mm256_set1_ps(x[c]->d * dw), _mm256_cvtepi32_ps(sumi[c]), st[c].acc);
    }
    static float finish(const KState & s) { return finish_values_and_scalar_mins(s); }
};
using Q5_K = SuperBlocks<Q5_K_Step>;

// ---- Q3_K and Q2_K weights, Q8_K activations: 16 scales, one per 16 values,
// and 2-bit values four to a byte (value e of the g-th 32 in bits 2(g%4) of
// byte e of the (g/4)-th 32 bytes)

// 16 int16 lanes for the 32 values of group g: scale 2g in the low half, 2g + 1
// in the high one, from 16 int16 scales (0..7 repeated in lo, 8..15 in hi)
inline __m256i scale_pair(__m256i lo, __m256i hi, int g) {
    const int j = 2 * (g % 4);
    const __m128i a = _mm_set1_epi16((short) (0x0100 + 0x0202 * j)), b = _mm_set1_epi16((short) (0x0100 + 0x0202 * (j + 1)));
    return _mm256_shuffle_epi8(g < 4 ? lo : hi, _mm256_set_m128i(b, a));
}

// 16 int8 scales -> int16, scales 0..7 in both halves of *lo, 8..15 in *hi
inline void widen_scales(__m128i s8, __m256i * lo, __m256i * hi) {
    const __m256i s16 = _mm256_cvtepi8_epi16(s8);
    *lo = _mm256_permute2x128_si256(s16, s16, 0x00);
    *hi = _mm256_permute2x128_si256(s16, s16, 0x11);
}

inline __m256i two_bits(const uint8_t * qs, int g) {
    return _mm256_and_si256(_mm256_srli_epi16(load256(qs + 32 * (g / 4)), 2 * (g % 4)), _mm256_set1_epi8(3));
}

// Q3_K's 12 scale bytes: the low nibbles of scales 0..7 in bytes 0..3 (low,
// then high nibbles), of 8..15 in bytes 4..7, their top 2 bits in bytes 8..11;
// each minus 32
inline __m128i q3_K_scales(const uint8_t * q) {
    uint32_t a[3];
    std::memcpy(a, q, 12);
    const uint32_t m4 = 0x0f0f0f0f, m2 = 0x03030303;
    const __m128i s = _mm_set_epi32((int) (((a[1] >> 4) & m4) | (((a[2] >> 6) & m2) << 4)),
                                    (int) (((a[0] >> 4) & m4) | (((a[2] >> 4) & m2) << 4)),
                                    (int) ((a[1] & m4) | (((a[2] >> 2) & m2) << 4)),
                                    (int) ((a[0] & m4) | ((a[2] & m2) << 4)));
    return _mm_sub_epi8(s, _mm_set1_epi8(32));
}

// Q3_K: value = 2 low bits - 4 where its hmask bit is clear. As ggml, the
// products of the low bits and of the 4s are formed apart and subtracted.
struct Q3_K_Step {
    using WBlock = BlockQ3_K;
    template <int NC>
    static void step(const BlockQ3_K & w, const BlockQ8_K * const * x, KState * st) {
        __m256i s_lo, s_hi;
        widen_scales(q3_K_scales(w.scales), &s_lo, &s_hi);
        const __m256i nh = _mm256_xor_si256(load256(w.hmask), _mm256_set1_epi8(-1));
        __m256i sumi[NC];
        for (int c = 0; c < NC; ++c) sumi[c] = _mm256_setzero_si256();
        for (int g = 0; g < kQK_K / 32; ++g) {
            const __m256i ql = two_bits(w.qs, g), qh = bit_to(nh, g, 2), sc = scale_pair(s_lo, s_hi, g);
            for (int c = 0; c < NC; ++c) {
                const __m256i q8 = load256(x[c]->qs + 32 * g);
                const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(ql, q8), _mm256_maddubs_epi16(qh, q8));
                sumi[c] = madd_acc(sumi[c], sc, p);
            }
        }
        const float dw = fp16(w.d);
        for (int c = 0; c < NC; ++c)
            st[c].acc = _mm256_fmadd_ps(_mm256_set1_ps(x[c]->d * dw), _mm256_cvtepi32_ps(sumi[c]), st[c].acc);
    }
    static float finish(const KState & s) { return finish_values(s); }
};
using Q3_K = SuperBlocks<Q3_K_Step>;

// Q2_K: scale in the low nibble of each scale byte, min in the high one. The
// mins' term goes into the float accumulator before the values' (ggml's order).
struct Q2_K_Step {
    using WBlock = BlockQ2_K;
    template <int NC>
    static void step(const BlockQ2_K & w, const BlockQ8_K * const * x, KState * st) {
        const __m128i m4 = _mm_set1_epi8(0x0F);
        const __m128i sm = _mm_loadu_si128((const __m128i *) w.scales);
        const __m256i mins = _mm256_cvtepi8_epi16(_mm_and_si128(_mm_srli_epi16(sm, 4), m4));
        __m256i s_lo, s_hi;
        widen_scales(_mm_and_si128(sm, m4), &s_lo, &s_hi);
        const float dw = fp16(w.d), dminw = fp16(w.dmin);
        __m256i sumi[NC];
        for (int c = 0; c < NC; ++c) {
            const __m256 m = _mm256_cvtepi32_ps(_mm256_madd_epi16(mins, load256(x[c]->bsums)));
            st[c].acc = _mm256_fmadd_ps(_mm256_set1_ps(-x[c]->d * dminw), m, st[c].acc);
            sumi[c] = _mm256_setzero_si256();
        }
        for (int g = 0; g < kQK_K / 32; ++g) {
            const __m256i q = two_bits(w.qs, g), sc = scale_pair(s_lo, s_hi, g);
            for (int c = 0; c < NC; ++c)
                sumi[c] = madd_acc(sumi[c], sc, _mm256_maddubs_epi16(q, load256(x[c]->qs + 32 * g)));
        }
        for (int c = 0; c < NC; ++c)
            st[c].acc = _mm256_fmadd_ps(_mm256_set1_ps(x[c]->d * dw), _mm256_cvtepi32_ps(sumi[c]), st[c].acc);
    }
    static float finish(const KState & s) { return finish_values(s); }
};
using Q2_K = SuperBlocks<Q2_K_Step>;

// ---- IQ4_XS weights, Q8_K activations: IQ4_NL's values, a 6-bit scale (minus
// 32) per 32 values: low 4 bits in scales_l (two per byte), high 2 in scales_h

struct IQ4_XS_Step {
    using WBlock = BlockIQ4_XS;
    template <int NC>
    static void step(const BlockIQ4_XS & w, const BlockQ8_K * const * x, KState * st) {
        __m256i sumi[NC];
        for (int c = 0; c < NC; ++c) sumi[c] = _mm256_setzero_si256();
        for (int g = 0; g < kQK_K / 32; ++g) {
            const int ls = (((w.scales_l[g / 2] >> (4 * (g % 2))) & 0xF) | (((w.scales_h >> (2 * g)) & 3) << 4)) - 32;
            const __m256i q = iq4_weights(w.qs + 16 * g), aq = _mm256_sign_epi8(q, q);
            const __m256i sc = _mm256_set1_epi16((short) ls);
            for (int c = 0; c < NC; ++c) {  // ggml's |w| * sign(x, w)
                const __m256i sx = _mm256_sign_epi8(load256(x[c]->qs + 32 * g), q);
                sumi[c] = madd_acc(sumi[c], sc, _mm256_maddubs_epi16(aq, sx));
            }
        }
        const float dw = fp16(w.d);
        for (int c = 0; c < NC; ++c)
            st[c].acc = _mm256_fmadd_ps(_mm256_set1_ps(dw * x[c]->d), _mm256_cvtepi32_ps(sumi[c]), st[c].acc);
    }
    static float finish(const KState & s) { return finish_values(s); }
};
using IQ4_XS = SuperBlocks<IQ4_XS_Step>;

// ---- Q6_K weights, Q8_K activations: values q - 32, 16 signed 8-bit scales

// The 128 six-bit values (0..63, before the - 32) of half j of a Q6_K
// super-block, 32 per register: q[t] holds values 128 j + 32 t .. + 31. The
// low nibbles are ql's (t = 0, 1) or its high nibbles (t = 2, 3); the two high
// bits are qh's bits 2t, 2t + 1, shifted to bits 4-5 within each 16-bit word
// (a byte's bits never cross into its neighbour's 4-5) and masked there.
inline void q6_K_values(const BlockQ6_K & w, int j, __m256i * q) {
    const __m256i m15 = _mm256_set1_epi8(15), m48 = _mm256_set1_epi8(48);
    const uint8_t * ql = w.ql + 64 * j;
    const __m256i b1 = load256(ql), b2 = load256(ql + 32), bh = load256(w.qh + 32 * j);
    const __m256i lo[4] = { b1, b2, _mm256_srli_epi16(b1, 4), _mm256_srli_epi16(b2, 4) };
    const __m256i hi[4] = { _mm256_slli_epi16(bh, 4), _mm256_slli_epi16(bh, 2), bh, _mm256_srli_epi16(bh, 2) };
    for (int t = 0; t < 4; ++t) q[t] = _mm256_or_si256(_mm256_and_si256(lo[t], m15), _mm256_and_si256(hi[t], m48));
}

// The scales of chunk t of half j as madd wants them: scale 8j + 2t in every
// word of the low 128 bits, 8j + 2t + 1 in the high (half: the half's 8
// scales as words, in both 128-bit lanes), by one in-lane byte shuffle
inline __m256i q6_K_chunk_scales(__m256i half, int t) {
    const char a = (char) (4 * t), b = (char) (4 * t + 2);
    return _mm256_shuffle_epi8(half, _mm256_setr_epi8(a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1, a, a + 1,
                                                      a, a + 1, b, b + 1, b, b + 1, b, b + 1, b, b + 1, b, b + 1, b, b + 1,
                                                      b, b + 1, b, b + 1));
}

struct Q6_K_Step {
    using WBlock = BlockQ6_K;
    // one super-block of weights times NC activation blocks: v[c] = sum(scale * q * x) - 32 * sum(scale * x sums)
    // (integer totals per lane, as vec_dot's; the order of a lane's adds is free)
    template <int NC>
    static void block(const BlockQ6_K & w, const BlockQ8_K * const * x, __m256i * v) {
        const __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *) w.scales));
        __m256i sumi[NC];
        for (int c = 0; c < NC; ++c) sumi[c] = _mm256_setzero_si256();
        for (int j = 0; j < kQK_K / 128; ++j) {
            __m256i q[4];
            q6_K_values(w, j, q);
            const __m256i half = j == 0 ? _mm256_permute2x128_si256(scales16, scales16, 0x00)
                                        : _mm256_permute2x128_si256(scales16, scales16, 0x11);
            for (int t = 0; t < 4; ++t) {
                const __m256i scale = q6_K_chunk_scales(half, t);
                for (int c = 0; c < NC; ++c)
                    sumi[c] = madd_acc(sumi[c], scale, _mm256_maddubs_epi16(q[t], load256(x[c]->qs + 128 * j + 32 * t)));
            }
        }
        // offset: 32 * sum(scale * activation sums), the "- 32"
        for (int c = 0; c < NC; ++c)
            v[c] = _mm256_sub_epi32(sumi[c], _mm256_slli_epi32(_mm256_madd_epi16(load256(x[c]->bsums), scales16), 5));
    }

    template <int NC>
    static void step(const BlockQ6_K & w, const BlockQ8_K * const * x, KState * st) {
        __m256i v[NC];
        block<NC>(w, x, v);
        const float dw = fp16(w.d);
        for (int c = 0; c < NC; ++c)
            st[c].acc = _mm256_fmadd_ps(_mm256_set1_ps(x[c]->d * dw), _mm256_cvtepi32_ps(v[c]), st[c].acc);
    }
    static float finish(const KState & s) { return finish_values(s); }
};
using Q6_K = SuperBlocks<Q6_K_Step>;

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#include "kernels/x86_q6_K_avx512.inl"
#endif

// ---- F16 and BF16 weights and activations (ggml_vec_dot_f16 / _bf16, vec.cpp):
// float lanes in several accumulators over steps of 32 or 64 values, a tree
// of adds to one float, that float in double and the values past the last
// whole step added one by one in double. The step, the accumulators and the
// tree depend on the instruction sets ggml was built with, so each variant
// below is offered only where ggml runs that one (kEntries).

inline float bf16(uint16_t h) {
    const uint32_t u = (uint32_t) h << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

// values [i, k) of the leftover loop: each product in float (exact for fp16
// and bf16 inputs), added in double
template <float (*Cvt)(uint16_t)>
inline float tail_in_double(const uint16_t * w, const uint16_t * x, int64_t i, int64_t k, double sum) {
    for (; i < k; ++i) sum += (double) (Cvt(w[i]) * Cvt(x[i]));
    return (float) sum;
}

// Activations stay 16-bit and are converted where used: as fast as ggml's
// vec_dot per column, and half the bytes of floats prepared per call.
struct HalfAct {
    using WBlock = uint16_t;
    using XBlock = uint16_t;
    static size_t bytes(int64_t) { return 0; }
    static void prepare(const uint8_t *, int64_t, uint8_t *) {}
};

inline __m256 load_f16x8(const uint16_t * p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) p)); }
inline __m256 load_bf16x8(const uint16_t * p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *) p)), 16));
}

// Columns in groups of G per pass over the row (their accumulators fill the
// registers); the row is in L1 for the next group. Per column nothing changes.
#define SB_COLUMN_GROUPS(G)                                                          \
    if constexpr (NC > (G)) {                                                        \
        dot<(G)>(wp, xp, prep, k, out);                                              \
        dot<NC - (G)>(wp, xp + (G), prep + (G), k, out + (G));                       \
        return;                                                                      \
    }

#if !defined(__AVX512F__)
// ggml built for AVX2 (no AVX-512): 4 accumulators of 8 lanes over steps of 32
// values (one float FMA per value: GCC fuses BF16's mul + add), then
// (a0 + a2) + (a1 + a3) and, for F16, ggml's hadd tree, for BF16 hsum8's.
// Offered where ggml has no AVX-512.
template <float (*Cvt)(uint16_t), __m256 (*Load)(const uint16_t *), bool kHaddTree>
struct Half_x8 : HalfAct {
    template <int NC>
    static void dot(const uint8_t * wp, const uint8_t * const * xp, const uint8_t * const * prep, int64_t k, float * out) {
        SB_COLUMN_GROUPS(2)
        const uint16_t * w = (const uint16_t *) wp;
        const uint16_t * x[NC];
        __m256 acc[NC][4];
        for (int c = 0; c < NC; ++c) {
            x[c] = (const uint16_t *) xp[c];
            for (int j = 0; j < 4; ++j) acc[c][j] = _mm256_setzero_ps();
        }
        const int64_t np = k & ~(int64_t) 31;
        for (int64_t i = 0; i < np; i += 32)
            for (int j = 0; j < 4; ++j) {
                const __m256 wv = Load(w + i + 8 * j);
                for (int c = 0; c < NC; ++c) acc[c][j] = _mm256_fmadd_ps(wv, Load(x[c] + i + 8 * j), acc[c][j]);
            }
        for (int c = 0; c < NC; ++c) {
            const __m256 s = _mm256_add_ps(_mm256_add_ps(acc[c][0], acc[c][2]), _mm256_add_ps(acc[c][1], acc[c][3]));
            float r;
            if constexpr (kHaddTree) {  // F16: low half + high half, then two hadds
                const __m128 t0 = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
                const __m128 t1 = _mm_hadd_ps(t0, t0);
                r = _mm_cvtss_f32(_mm_hadd_ps(t1, t1));
            } else {
                r = hsum8(s);
            }
            // F16 assigns the reduced float to its double sum, BF16 adds it to 0.0
            out[c] = tail_in_double<Cvt>(w, x[c], np, k, kHaddTree ? (double) r : 0.0 + (double) r);
        }
    }
};
using F16_x8 = Half_x8<fp16, load_f16x8, true>;
using BF16_x8 = Half_x8<bf16, load_bf16x8, false>;
#endif

#if defined(__AVX512F__)
// 16 lanes summed as GCC builds _mm512_reduce_add_ps: high 8 + low 8, then hsum8's tree
inline float hsum16(__m512 v) {
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    return hsum8(_mm256_add_ps(hi, _mm512_castps512_ps256(v)));
}

inline __m512 load_f16x16(const uint16_t * p) { return _mm512_cvtph_ps(load256(p)); }
inline __m512 load_bf16x16(const uint16_t * p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(load256(p)), 16));
}

// F16, ggml built with AVX-512F: 4 accumulators of 16 lanes over steps of 64
// values, (a0 + a2) + (a1 + a3), reduced, assigned to the double sum.
struct F16_x16 : HalfAct {
    template <int NC>
    static void dot(const uint8_t * wp, const uint8_t * const * xp, const uint8_t * const * prep, int64_t k, float * out) {
        SB_COLUMN_GROUPS(4)
        const uint16_t * w = (const uint16_t *) wp;
        const uint16_t * x[NC];
        __m512 acc[NC][4];
        for (int c = 0; c < NC; ++c) {
            x[c] = (const uint16_t *) xp[c];
            for (int j = 0; j < 4; ++j) acc[c][j] = _mm512_setzero_ps();
        }
        const int64_t np = k & ~(int64_t) 63;
        for (int64_t i = 0; i < np; i += 64)
            for (int j = 0; j < 4; ++j) {
                const __m512 wv = load_f16x16(w + i + 16 * j);
                for (int c = 0; c < NC; ++c) acc[c][j] = _mm512_fmadd_ps(wv, load_f16x16(x[c] + i + 16 * j), acc[c][j]);
            }
        for (int c = 0; c < NC; ++c) {
            const __m512 s = _mm512_add_ps(_mm512_add_ps(acc[c][0], acc[c][2]), _mm512_add_ps(acc[c][1], acc[c][3]));
            out[c] = tail_in_double<fp16>(w, x[c], np, k, (double) hsum16(s));
        }
    }
};

// BF16, ggml built with AVX-512F but not AVX512_BF16: 2 accumulators of 16
// lanes over steps of 32 values (GCC fuses ggml's mul + add), each reduced and
// added to the double sum.
struct BF16_x16 : HalfAct {
    template <int NC>
    static void dot(const uint8_t * wp, const uint8_t * const * xp, const uint8_t * const *, int64_t k, float * out) {
        const uint16_t * w = (const uint16_t *) wp;
        const uint16_t * x[NC];
        __m512 acc[NC][2];
        for (int c = 0; c < NC; ++c) x[c] = (const uint16_t *) xp[c], acc[c][0] = acc[c][1] = _mm512_setzero_ps();
        const int64_t np = k & ~(int64_t) 31;
        for (int64_t i = 0; i < np; i += 32)
            for (int j = 0; j < 2; ++j) {
                const __m512 wv = load_bf16x16(w + i + 16 * j);
                for (int c = 0; c < NC; ++c) acc[c][j] = _mm512_fmadd_ps(wv, load_bf16x16(x[c] + i + 16 * j), acc[c][j]);
            }
        for (int c = 0; c < NC; ++c) {
            double sum = 0.0;
            sum += (double) hsum16(acc[c][0]);
            sum += (double) hsum16(acc[c][1]);
            out[c] = tail_in_double<bf16>(w, x[c], np, k, sum);
        }
    }
};

// BF16, ggml built with AVX512_BF16: vdpbf16ps (pairs of products into float
// lanes, with that instruction's own rounding: ours must be the same
// instruction) into 2 accumulators over steps of 64 values, each reduced and
// added to the double sum.
struct BF16_dp : HalfAct {
    template <int NC>
    __attribute__((target("avx512bf16"))) static void dot(const uint8_t * wp, const uint8_t * const * xp,
                                                          const uint8_t * const *, int64_t k, float * out) {
        const uint16_t * w = (const uint16_t *) wp;
        const uint16_t * x[NC];
        __m512 acc[NC][2];
        for (int c = 0; c < NC; ++c) x[c] = (const uint16_t *) xp[c], acc[c][0] = acc[c][1] = _mm512_setzero_ps();
        const int64_t np = k & ~(int64_t) 63;
        for (int64_t i = 0; i < np; i += 64)
            for (int j = 0; j < 2; ++j) {
                const __m512bh wv = (__m512bh) _mm512_loadu_si512(w + i + 32 * j);
                for (int c = 0; c < NC; ++c)
                    acc[c][j] = _mm512_dpbf16_ps(acc[c][j], wv, (__m512bh) _mm512_loadu_si512(x[c] + i + 32 * j));
            }
        for (int c = 0; c < NC; ++c) {
            double sum = 0.0;
            sum += (double) hsum16(acc[c][0]);
            sum += (double) hsum16(acc[c][1]);
            out[c] = tail_in_double<bf16>(w, x[c], np, k, sum);
        }
    }
};
#endif

// F16 and BF16: every operation on a (weight, activation) pair is symmetric in
// the two (a product, an FMA's two factors, vdpbf16ps's pairs of products), so
// one column against two weight rows is dot<2> with the roles swapped: the
// column as the "row", the two rows as its "columns". Each row gets exactly
// dot<1>'s bits, and the single column runs as two streams like the others.
template <class Half>
struct HalfTwoRows : Half {
    static void dot_two_rows(const uint8_t * wp0, const uint8_t * wp1, const uint8_t * xp, const uint8_t *, int64_t k,
                             float * out) {
        const uint8_t * rows[2] = { wp0, wp1 }, * none[2] = { nullptr, nullptr };
        Half::template dot<2>(xp, rows, none, k, out);
    }
};

// Kernels with dot_two_rows take single columns themselves (one_column_two_streams,
// and dot<1> for the last column of an odd batch); the others give a single
// column to ggml's vec_dot, whose arithmetic T::dot reproduces.
template <class T, class = void>
struct OwnSingleColumn : std::false_type {};
template <class T>
struct OwnSingleColumn<T, std::void_t<decltype(&T::dot_two_rows)>> : std::true_type {};

// A single column (plain decoding) over rows [r0, r1) as two sequential
// streams, row r beside row r + h. Each row keeps the one-column arithmetic.
// Two streams are what make it fast: on the 2-core EPYC of
// docs/bench/overhead-2026-12-06 the Q8_0 LM head of Qwen2.5-Coder-0.5B took
// 1.9 ms this way, 2.4 ms one row at a time, 4.0-4.5 ms through ggml's
// vec_dot, and 8.5 ms with the two rows adjacent (r, r + 1).
//
// No software prefetch: the hardware's keeps up with two sequential streams.
// Prefetching each stream's next row as it started one (2 KiB ahead) cost
// Zen 3 18% of a random Qwen2.5-7B token (its 7-15 KB Q6_K rows), 25% of an
// F16 0.5B token and about 15% of a SmolLM2 token; it had gained 4% on
// SmolLM2 on Zen 4 (docs/bench/floor-2026-12-07, docs/bench/prefetch-2026-12-08).
template <class T>
void one_column_two_streams(const Args & a, const uint8_t * prep, int64_t r0, int64_t r1) {
    const int64_t h = (r1 - r0) / 2;
    float two[2];
    for (int64_t r = r0; r < r0 + h; ++r) {
        T::dot_two_rows(a.w + r * a.w_row, a.w + (r + h) * a.w_row, a.x, prep, a.k, two);
        a.dst[r] = two[0], a.dst[r + h] = two[1];
    }
    const uint8_t * xs[1] = { a.x }, * ps[1] = { prep };
    if ((r1 - r0) & 1) T::template dot<1>(a.w + (r1 - 1) * a.w_row, xs, ps, a.k, a.dst + r1 - 1);
}

// Columns per pass over a weight row: kCols, or T::kPassCols where T's
// registers hold more (fewer unpackings of each weight block per column)
template <class T, class = void>
struct PassCols : std::integral_constant<int, kCols> {};
template <class T>
struct PassCols<T, std::void_t<decltype(T::kPassCols)>> : std::integral_constant<int, T::kPassCols> {};

// T::dot<nc> for a run-time nc in [NC, PassCols<T>]
template <class T, int NC>
void dot_width(int nc, const uint8_t * wr, const uint8_t * const * xs, const uint8_t * const * ps, int64_t k, float * out) {
    if constexpr (NC <= PassCols<T>::value) {
        if (nc == NC) return T::template dot<NC>(wr, xs, ps, k, out);
        dot_width<T, NC + 1>(nc, wr, xs, ps, k, out);
    }
}

// nc (<= PassCols) columns of one weight row: T::dot for 2 or more, and for one
// where OwnSingleColumn; else ggml's own vec_dot (T::dot reproduces its
// arithmetic, self-checked for a single column as well: the same bits)
template <class T>
void dot_columns(int nc, const uint8_t * wr, const uint8_t * const * xs, const uint8_t * const * ps, const Args & a,
                 float * out) {
    if (nc > 1) return dot_width<T, 2>(nc, wr, xs, ps, a.k, out);
    if constexpr (OwnSingleColumn<T>::value) T::template dot<1>(wr, xs, ps, a.k, out);
    else a.vec_dot((int) a.k, out, 0, wr, 0, xs[0], 0, 1);
}

// Per-column data prepared once per call and thread (cheap: n * k / 32
// blocks): the base of column 0's, and the bytes from one column's to the next
template <class T>
uint8_t * prepare_columns(const Args & a, size_t * stride) {
    thread_local ScratchVector<__m256i> scratch;
    const size_t prep = (T::bytes(a.k) + sizeof(__m256i) - 1) / sizeof(__m256i) * sizeof(__m256i);
    if (scratch.size() * sizeof(__m256i) < prep * a.n) scratch.resize(prep * a.n / sizeof(__m256i) + 1);
    uint8_t * base = (uint8_t *) scratch.data();
    // (a single column through vec_dot needs none)
    const bool prepared = prep > 0 && (a.n > 1 || OwnSingleColumn<T>::value);
    for (int64_t c = 0; c < a.n && prepared; ++c) T::prepare(a.x + c * a.x_col, a.k, base + c * prep);
    *stride = prep;
    return base;
}

// Rows [r0, r1), all columns, PassCols columns per pass over a weight row.
// Column c's arithmetic is T::dot's for one column whatever the pass width
// and the order of the passes: that is the invariance.
constexpr size_t kRowBlockBytes = 256 << 10;
template <class T>
void rows(const Args & a, int64_t r0, int64_t r1) {
    size_t prep;
    uint8_t * base = prepare_columns<T>(a, &prep);
    if constexpr (OwnSingleColumn<T>::value) {
        if (a.n == 1) return one_column_two_streams<T>(a, base, r0, r1);
    }

    // Beyond a pass's columns, a block of rows (kRowBlockBytes of weights, in L2)
    // takes one pass of columns after another, so that a pass's
    // activations stay in L1 through the block: all columns' at once do not
    // (the 0.5B's k = 896 at 16 columns: 31 KB).
    constexpr int cols = PassCols<T>::value;
    const int64_t block = a.n > cols ? std::max<int64_t>(1, (int64_t) (kRowBlockBytes / a.w_row)) : r1 - r0;
    const uint8_t * xs[cols], * ps[cols];
    float out[cols];
    for (int64_t rb = r0; rb < r1; rb += block) {
        const int64_t re = std::min(r1, rb + block);
        for (int64_t c0 = 0; c0 < a.n; c0 += cols) {
            const int nc = (int) std::min<int64_t>(cols, a.n - c0);
            for (int c = 0; c < nc; ++c) xs[c] = a.x + (c0 + c) * a.x_col, ps[c] = base + (c0 + c) * prep;
            for (int64_t r = rb; r < re; ++r) {
                dot_columns<T>(nc, a.w + r * a.w_row, xs, ps, a, out);
                for (int c = 0; c < nc; ++c) a.dst[(c0 + c) * a.dst_col + r] = out[c];
            }
        }
    }
}

#if defined(__AVX512F__)
// T::run<nc> (blocks [b0, b1) of one row into nc accumulators) for a run-time nc
template <class T>
void run_columns(int nc, const uint8_t * wr, const uint8_t * const * xs, const uint8_t * const * ps, int64_t b0, int64_t b1,
                 typename T::State * acc) {
    switch (nc) {
        case 1: T::template run<1>(wr, xs, ps, b0, b1, acc); break;
        case 2: T::template run<2>(wr, xs, ps, b0, b1, acc); break;
        case 3: T::template run<3>(wr, xs, ps, b0, b1, acc); break;
        case 4: T::template run<4>(wr, xs, ps, b0, b1, acc); break;
        case 5: T::template run<5>(wr, xs, ps, b0, b1, acc); break;
        case 6: T::template run<6>(wr, xs, ps, b0, b1, acc); break;
        case 7: T::template run<7>(wr, xs, ps, b0, b1, acc); break;
        case 8: T::template run<8>(wr, xs, ps, b0, b1, acc); break;
    }
}

// rows() tiled over k: a group of kTileRows rows goes through k a tile at a
// time, each row's accumulators kept between tiles, so that the tile of the
// columns' prepared activations (kTileBytes) stays in L1 where all of it
// would not (ffn_down's k = 8960: 8 columns, 90 KB). Each accumulator still
// takes the row's blocks in order, one after another: the same operations as
// dot(), so the same bits.
template <class T>
void tiled_rows(const Args & a, int64_t r0, int64_t r1) {
    constexpr int kTileRows = 8;
    constexpr size_t kTileBytes = 16 << 10;
    const int64_t nb = a.k / T::kBlock;
    // one tile holds whole rows (the LM head's k = 1536): rows() does the same without the bookkeeping
    if (a.n == 1 || (size_t) nb * T::kActBytes * (size_t) std::min<int64_t>(a.n, kCols) <= kTileBytes) return rows<T>(a, r0, r1);
    size_t prep;
    uint8_t * base = prepare_columns<T>(a, &prep);
    const uint8_t * xs[kCols], * ps[kCols];
    typename T::State acc[kTileRows][kCols];
    // every pass of kCols columns over a group of rows before the next group:
    // the group's weights come from memory once
    for (int64_t g = r0; g < r1; g += kTileRows) {
        const int rows_here = (int) std::min<int64_t>(kTileRows, r1 - g);
        for (int64_t c0 = 0; c0 < a.n; c0 += kCols) {
            const int nc = (int) std::min<int64_t>(kCols, a.n - c0);
            for (int c = 0; c < nc; ++c) xs[c] = a.x + (c0 + c) * a.x_col, ps[c] = base + (c0 + c) * prep;
            const int64_t tile = std::max<int64_t>(1, (int64_t) (kTileBytes / (T::kActBytes * nc)));
            for (int i = 0; i < rows_here; ++i)
                for (int c = 0; c < nc; ++c) acc[i][c] = T::zero();
            for (int64_t b0 = 0; b0 < nb; b0 += tile)
                for (int i = 0; i < rows_here; ++i)
                    run_columns<T>(nc, a.w + (g + i) * a.w_row, xs, ps, b0, std::min(nb, b0 + tile), acc[i]);
            for (int i = 0; i < rows_here; ++i)
                for (int c = 0; c < nc; ++c) a.dst[(c0 + c) * a.dst_col + g + i] = T::finish(acc[i][c]);
        }
    }
}

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
// Q6_K: the 512-bit kernel where the columns' arithmetic is what takes the
// time; below 4 columns, where reading the weights does, the 256-bit one,
// whose lighter unpacking keeps pace with the stream better (measured in
// docs/bench/kernels-2026-12-07). The same bits either way.
void q6_K_rows(const Args & a, int64_t r0, int64_t r1) {
    if (a.n < 4) return rows<Q6_K>(a, r0, r1);
    tiled_rows<Q6_K_x16>(a, r0, r1);
}

#include "kernels/x86_pairs_avx512.inl"
#endif
#endif

// which of ggml's F16/BF16 variants this ggml build runs (compile-time flags of its build)
[[maybe_unused]] bool ggml_avx512() { return ggml_cpu_has_avx512() != 0; }
[[maybe_unused]] bool ggml_avx2_only() { return ggml_cpu_has_avx512() == 0; }
[[maybe_unused]] bool ggml_avx512_no_bf16() { return ggml_cpu_has_avx512() && !ggml_cpu_has_avx512_bf16(); }
[[maybe_unused]] bool ggml_avx512_bf16() {
#if defined(__GNUC__) || defined(__clang__)
    return ggml_cpu_has_avx512_bf16() && __builtin_cpu_supports("avx512bf16");
#else
    return false;
#endif
}

struct Entry {
    Kernel kernel;
    size_t w_block, x_block;  // our block layouts' bytes, checked against ggml's at lookup
    bool (*usable)();         // the ggml build runs this arithmetic (null: always)
};

// constexpr, so kEntries is filled at compile time: a table filled by code at
// load would run this file's instructions before any CPU check
template <class T, RowsFn Rows = rows<T>>
constexpr Entry entry(const char * name, ggml_type t, ggml_type act, bool (*usable)() = nullptr) {
    return { { name, t, act, Rows }, sizeof(typename T::WBlock), sizeof(typename T::XBlock), usable };
}

constexpr Entry kEntries[] = {
    // the 32-value block types: column pairs with AVX-512 VNNI (x86_pairs_avx512.inl)
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
    entry<Q8_0Pairs, paired_rows<Q8_0Pairs>>(SB_X86_ISA "_q8_0", GGML_TYPE_Q8_0, GGML_TYPE_Q8_0),
    entry<Q5_0Pairs, paired_rows<Q5_0Pairs>>(SB_X86_ISA "_q5_0", GGML_TYPE_Q5_0, GGML_TYPE_Q8_0),
    entry<Q4_1Pairs, paired_rows<Q4_1Pairs>>(SB_X86_ISA "_q4_1", GGML_TYPE_Q4_1, GGML_TYPE_Q8_1),
    entry<Q5_1Pairs, paired_rows<Q5_1Pairs>>(SB_X86_ISA "_q5_1", GGML_TYPE_Q5_1, GGML_TYPE_Q8_1),
    entry<Q4_0Pairs, paired_rows<Q4_0Pairs>>(SB_X86_ISA "_q4_0", GGML_TYPE_Q4_0, GGML_TYPE_Q8_0),
#else
    entry<Q8_0>(SB_X86_ISA "_q8_0", GGML_TYPE_Q8_0, GGML_TYPE_Q8_0),
    entry<Q5_0>(SB_X86_ISA "_q5_0", GGML_TYPE_Q5_0, GGML_TYPE_Q8_0),
    entry<Q4_1>(SB_X86_ISA "_q4_1", GGML_TYPE_Q4_1, GGML_TYPE_Q8_1),
    entry<Q5_1>(SB_X86_ISA "_q5_1", GGML_TYPE_Q5_1, GGML_TYPE_Q8_1),
    entry<Q4_0>(SB_X86_ISA "_q4_0", GGML_TYPE_Q4_0, GGML_TYPE_Q8_0),
#endif
    entry<Q4_K>(SB_X86_ISA "_q4_K", GGML_TYPE_Q4_K, GGML_TYPE_Q8_K),
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
    entry<Q6_K_x16, q6_K_rows>(SB_X86_ISA "_q6_K", GGML_TYPE_Q6_K, GGML_TYPE_Q8_K),
#else
    entry<Q6_K>(SB_X86_ISA "_q6_K", GGML_TYPE_Q6_K, GGML_TYPE_Q8_K),
#endif
    entry<Q5_K>(SB_X86_ISA "_q5_K", GGML_TYPE_Q5_K, GGML_TYPE_Q8_K),
    entry<Q3_K>(SB_X86_ISA "_q3_K", GGML_TYPE_Q3_K, GGML_TYPE_Q8_K),
    entry<IQ4_XS>(SB_X86_ISA "_iq4_xs", GGML_TYPE_IQ4_XS, GGML_TYPE_Q8_K),
    entry<Q2_K>(SB_X86_ISA "_q2_K", GGML_TYPE_Q2_K, GGML_TYPE_Q8_K),
#if defined(__AVX512F__)
    entry<HalfTwoRows<F16_x16>>(SB_X86_ISA "_f16", GGML_TYPE_F16, GGML_TYPE_F16, ggml_avx512),
    entry<HalfTwoRows<BF16_dp>>(SB_X86_ISA "_bf16_dp", GGML_TYPE_BF16, GGML_TYPE_BF16, ggml_avx512_bf16),
    entry<HalfTwoRows<BF16_x16>>(SB_X86_ISA "_bf16", GGML_TYPE_BF16, GGML_TYPE_BF16, ggml_avx512_no_bf16),
#else
    entry<HalfTwoRows<F16_x8>>(SB_X86_ISA "_f16", GGML_TYPE_F16, GGML_TYPE_F16, ggml_avx2_only),
    entry<HalfTwoRows<BF16_x8>>(SB_X86_ISA "_bf16", GGML_TYPE_BF16, GGML_TYPE_BF16, ggml_avx2_only),
#endif
    entry<IQ4_NL>(SB_X86_ISA "_iq4_nl", GGML_TYPE_IQ4_NL, GGML_TYPE_Q8_0),
};

} // namespace

const Kernel * SB_X86_ENTRY(ggml_type t) {
    for (const Entry & e : kEntries)
        if (e.kernel.type == t && (!e.usable || e.usable()) && e.w_block == ggml_type_size(t) &&
            e.x_block == ggml_type_size(e.kernel.act_type))
            return &e.kernel;
    return nullptr;
}

} // namespace sb::kernels
