// x86 kernel bodies, included by x86_avx2.cpp and x86_avx512.cpp, which are
// compiled for their instruction sets and define SB_X86_ISA (the kernels'
// name prefix) and SB_X86_ENTRY (the lookup function they export).
//
// For each weight type, the arithmetic of ggml's AVX2
// ggml_vec_dot_<type>_q8_<x> (same 8-lane integer sums, same float operations
// in the same order, same final horizontal sum), run for up to kCols
// activation columns per unpacked weight block. Integer sums are exact, so
// only the float operations need to match, and the instruction that forms an
// integer sum may differ (AVX-512 VNNI's dpbusd or AVX2's maddubs + madd: the
// same integers). The including files are compiled with -ffp-contract=off and
// every FMA is written explicitly.
//
// Entered only after kernels.cpp has checked the CPU's features.

#include "kernels/blocks.h"
#include "kernels/kernels.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace sb::kernels {
namespace {

#if defined(__AVX512VL__)
constexpr int kCols = 8;  // activation columns per pass over a weight row (32 vector registers)
#else
constexpr int kCols = 4;  // activation columns per pass over a weight row (16 vector registers)
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

// ---- Q8_0 and Q5_0 weights, Q8_0 activations (ggml: mul_sum_i8_pairs_float)

inline __m256i q8_0_weights(const BlockQ8_0 & b) { return load256(b.qs); }
inline __m256i q5_0_weights(const BlockQ5_0 & b) {
    const __m256i hi = _mm256_andnot_si256(bits32(b.qh), _mm256_set1_epi8((char) 0xF0));
    return _mm256_or_si256(nibbles32(b.qs), hi);  // q - 16 as a signed byte
}

// Per activation column, prepared once per call (not per weight row): the
// block scales as floats and, for dpbusd, each lane's sum of x times 128.
struct PrepQ8_0 {
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
};

template <class WB, __m256i (*Weights)(const WB &)>
struct SignedTimesQ8_0 : PrepQ8_0 {
    template <int NC>
    static void dot(const uint8_t * wp, const uint8_t * const * xp, const uint8_t * const * prep, int64_t k, float * out) {
        const WB * w = (const WB *) wp;
        const int64_t nb = k / kQK;
        const BlockQ8_0 * x[NC];
        const __m256i * corr[NC];
        const float * dx[NC];
        __m256 acc[NC];
        for (int c = 0; c < NC; ++c) {
            x[c] = (const BlockQ8_0 *) xp[c];
            corr[c] = (const __m256i *) prep[c];
            dx[c] = (const float *) (prep[c] + nb * sizeof(__m256i));
            acc[c] = _mm256_setzero_ps();
        }
        for (int64_t i = 0; i < nb; ++i) {
            const __m256i qw = Weights(w[i]);
            const __m256 dw = _mm256_set1_ps(fp16(w[i].d));
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
            // sum((w + 128) x) - 128 sum(x) = sum(w x) per lane, exactly as ggml's |w| * sign(x, w)
            const __m256i uw = _mm256_xor_si256(qw, _mm256_set1_epi8((char) 0x80));
            for (int c = 0; c < NC; ++c) {
                const __m256 q = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(corr[c][i], uw, load256(x[c][i].qs)));
                acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(&dx[c][i])), q, acc[c]);
            }
#else
            const __m256i aw = _mm256_sign_epi8(qw, qw);
            for (int c = 0; c < NC; ++c) {
                const __m256i sx = _mm256_sign_epi8(load256(x[c][i].qs), qw);
                acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(&dx[c][i])), dot_us8(aw, sx), acc[c]);
            }
#endif
        }
        for (int c = 0; c < NC; ++c) out[c] = hsum8(acc[c]);
    }
};
using Q8_0 = SignedTimesQ8_0<BlockQ8_0, q8_0_weights>;
using Q5_0 = SignedTimesQ8_0<BlockQ5_0, q5_0_weights>;

// ---- Q4_1 weights, Q8_1 activations: d_w*d_x*sum(q_w*q_x) + m_w*s_x

struct Q4_1 {
    static size_t bytes(int64_t k) { return (size_t) (k / kQK) * 2 * sizeof(float); }
    static void prepare(const uint8_t * xp, int64_t k, uint8_t * out) {  // d[nb], then s[nb]
        const BlockQ8_1 * x = (const BlockQ8_1 *) xp;
        const int64_t nb = k / kQK;
        float * d = (float *) out;
        for (int64_t i = 0; i < nb; ++i) d[i] = fp16(x[i].d), d[nb + i] = fp16(x[i].s);
    }

    template <int NC>
    static void dot(const uint8_t * wp, const uint8_t * const * xp, const uint8_t * const * prep, int64_t k, float * out) {
        const BlockQ4_1 * w = (const BlockQ4_1 *) wp;
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
            const __m256i qw = nibbles32(w[i].qs);
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
};

// K-quant activations (Q8_K) carry float scales and block sums already
struct NoPrep {
    static size_t bytes(int64_t) { return 0; }
    static void prepare(const uint8_t *, int64_t, uint8_t *) {}
};

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

struct Q4_K : NoPrep {
    template <int NC>
    static void dot(const uint8_t * wp, const uint8_t * const * xp, const uint8_t * const *, int64_t k, float * out) {
        const BlockQ4_K * w = (const BlockQ4_K *) wp;
        const BlockQ8_K * x[NC];
        __m256 acc[NC];
        __m128 acc_m[NC];
        for (int c = 0; c < NC; ++c) x[c] = (const BlockQ8_K *) xp[c], acc[c] = _mm256_setzero_ps(), acc_m[c] = _mm_setzero_ps();
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        for (int64_t i = 0; i < k / kQK_K; ++i) {
            uint32_t sc4[2], mn4[2];
            q4_K_scales(w[i].scales, sc4, mn4);
            const __m128i mins = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int) mn4[1], (int) mn4[0]));
            // scale j as int16 in every lane: a byte shuffle of the widened scales
            const __m128i sc16 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int) sc4[1], (int) sc4[0]));
            const __m256i scales = _mm256_inserti128_si256(_mm256_castsi128_si256(sc16), sc16, 1);
            const float dw = fp16(w[i].d), dminw = fp16(w[i].dmin);
            for (int c = 0; c < NC; ++c) {  // the mins times the activation's 32-element sums
                const __m256i bs = load256(x[c][i].bsums);
                const __m128i sums = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
                const float dmin = -x[c][i].d * dminw;
                acc_m[c] = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(_mm_madd_epi16(mins, sums)), acc_m[c]);
            }
            __m256i sumi[NC];
            for (int c = 0; c < NC; ++c) sumi[c] = _mm256_setzero_si256();
            for (int j = 0; j < kQK_K / 64; ++j) {
                const __m256i sl = _mm256_shuffle_epi8(scales, _mm256_set1_epi16((short) (0x0100 + 0x0202 * (2 * j))));
                const __m256i sh = _mm256_shuffle_epi8(scales, _mm256_set1_epi16((short) (0x0100 + 0x0202 * (2 * j + 1))));
                const __m256i bits = load256(w[i].qs + 32 * j);
                const __m256i ql = _mm256_and_si256(bits, m4), qh = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
                for (int c = 0; c < NC; ++c) {
                    const int8_t * q8 = x[c][i].qs + 64 * j;
                    const __m256i pl = _mm256_madd_epi16(sl, _mm256_maddubs_epi16(ql, load256(q8)));
                    const __m256i ph = _mm256_madd_epi16(sh, _mm256_maddubs_epi16(qh, load256(q8 + 32)));
                    sumi[c] = _mm256_add_epi32(sumi[c], _mm256_add_epi32(pl, ph));
                }
            }
            for (int c = 0; c < NC; ++c)
                acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(x[c][i].d * dw), _mm256_cvtepi32_ps(sumi[c]), acc[c]);
        }
        for (int c = 0; c < NC; ++c) {
            __m128 m = _mm_add_ps(acc_m[c], _mm_movehl_ps(acc_m[c], acc_m[c]));
            m = _mm_add_ss(m, _mm_movehdup_ps(m));
            out[c] = hsum8(acc[c]) + _mm_cvtss_f32(m);
        }
    }
};

// ---- Q6_K weights, Q8_K activations: values q - 32, 16 signed 8-bit scales

struct Q6_K : NoPrep {
    template <int NC>
    static void dot(const uint8_t * wp, const uint8_t * const * xp, const uint8_t * const *, int64_t k, float * out) {
        const BlockQ6_K * w = (const BlockQ6_K *) wp;
        const BlockQ8_K * x[NC];
        __m256 acc[NC];
        for (int c = 0; c < NC; ++c) x[c] = (const BlockQ8_K *) xp[c], acc[c] = _mm256_setzero_ps();
        const __m256i m15 = _mm256_set1_epi8(15), m3 = _mm256_set1_epi8(3);
        for (int64_t i = 0; i < k / kQK_K; ++i) {
            const __m128i s8 = _mm_loadu_si128((const __m128i *) w[i].scales);
            const __m256i scales16 = _mm256_cvtepi8_epi16(s8);
            __m256i sumi[NC], offset[NC];  // offset: 32 * sum(scale * activation sums), the "- 32"
            for (int c = 0; c < NC; ++c) {
                sumi[c] = _mm256_setzero_si256();
                offset[c] = _mm256_slli_epi32(_mm256_madd_epi16(load256(x[c][i].bsums), scales16), 5);
            }
            for (int j = 0; j < kQK_K / 128; ++j) {
                const uint8_t * ql = w[i].ql + 64 * j;
                const __m256i b1 = load256(ql), b2 = load256(ql + 32), bh = load256(w[i].qh + 32 * j);
                __m256i q[4], scale[4];
                q[0] = _mm256_or_si256(_mm256_and_si256(b1, m15), _mm256_slli_epi16(_mm256_and_si256(bh, m3), 4));
                q[1] = _mm256_or_si256(_mm256_and_si256(b2, m15),
                                       _mm256_slli_epi16(_mm256_and_si256(bh, _mm256_set1_epi8(12)), 2));
                q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b1, 4), m15),
                                       _mm256_and_si256(bh, _mm256_set1_epi8(48)));
                q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b2, 4), m15),
                                       _mm256_srli_epi16(_mm256_and_si256(bh, _mm256_set1_epi8((char) 0xC0)), 2));
                for (int t = 0; t < 4; ++t) {  // 16 elements per scale: scale is, then is + 1, widened
                    const long long is = 8 * j + 2 * t;
                    const __m128i pick = _mm_set_epi64x((is + 1) * 0x0101010101010101LL, is * 0x0101010101010101LL);
                    scale[t] = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s8, pick));
                }
                for (int c = 0; c < NC; ++c) {
                    const int8_t * q8 = x[c][i].qs + 128 * j;
                    __m256i p[4];
                    for (int t = 0; t < 4; ++t) p[t] = _mm256_madd_epi16(scale[t], _mm256_maddubs_epi16(q[t], load256(q8 + 32 * t)));
                    sumi[c] = _mm256_add_epi32(sumi[c], _mm256_add_epi32(p[0], p[1]));
                    sumi[c] = _mm256_add_epi32(sumi[c], _mm256_add_epi32(p[2], p[3]));
                }
            }
            const float dw = fp16(w[i].d);
            for (int c = 0; c < NC; ++c) {
                const __m256i v = _mm256_sub_epi32(sumi[c], offset[c]);
                acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(x[c][i].d * dw), _mm256_cvtepi32_ps(v), acc[c]);
            }
        }
        for (int c = 0; c < NC; ++c) out[c] = hsum8(acc[c]);
    }
};

// Rows [r0, r1), all columns, kCols columns per pass over a weight row (the
// row stays in L1 between passes). Column c's arithmetic is T::dot's for one
// column whatever the pass width: that is the invariance. A single column
// (n = 1, or the last one of an odd batch) goes to ggml's own vec_dot, whose
// arithmetic T::dot reproduces, so plain decoding runs at exactly its speed.
template <class T>
void dot_columns(int nc, const uint8_t * wr, const uint8_t * const * xs, const uint8_t * const * ps, const Args & a,
                 float * out) {
    switch (nc) {
        case 1: a.vec_dot((int) a.k, out, 0, wr, 0, xs[0], 0, 1); break;
        case 2: T::template dot<2>(wr, xs, ps, a.k, out); break;
        case 3: T::template dot<3>(wr, xs, ps, a.k, out); break;
        case 4: T::template dot<4>(wr, xs, ps, a.k, out); break;
#if defined(__AVX512VL__)
        case 5: T::template dot<5>(wr, xs, ps, a.k, out); break;
        case 6: T::template dot<6>(wr, xs, ps, a.k, out); break;
        case 7: T::template dot<7>(wr, xs, ps, a.k, out); break;
        case 8: T::template dot<8>(wr, xs, ps, a.k, out); break;
#endif
    }
}

// Rows [r0, r1), all columns, kCols columns per pass over a weight row (the
// row stays in L1 between passes). Column c's arithmetic is T::dot's for one
// column whatever the pass width: that is the invariance. A single column
// (n = 1, or the last one of an odd batch) goes to ggml's own vec_dot, whose
// arithmetic T::dot reproduces, so plain decoding runs at exactly its speed.
template <class T>
void rows(const Args & a, int64_t r0, int64_t r1) {
    // per-column data prepared once per call and thread (cheap: n * k / 32 blocks)
    thread_local std::vector<__m256i> scratch;
    const size_t prep = (T::bytes(a.k) + sizeof(__m256i) - 1) / sizeof(__m256i) * sizeof(__m256i);
    if (scratch.size() * sizeof(__m256i) < prep * a.n) scratch.resize(prep * a.n / sizeof(__m256i) + 1);
    uint8_t * base = (uint8_t *) scratch.data();
    // (n == 1 needs none: ggml's vec_dot computes it)
    for (int64_t c = 0; c < a.n && prep > 0 && a.n > 1; ++c) T::prepare(a.x + c * a.x_col, a.k, base + c * prep);

    const uint8_t * xs[kCols], * ps[kCols];
    float out[kCols];
    for (int64_t r = r0; r < r1; ++r) {
        const uint8_t * wr = a.w + r * a.w_row;
        for (int64_t c0 = 0; c0 < a.n; c0 += kCols) {
            const int nc = (int) std::min<int64_t>(kCols, a.n - c0);
            for (int c = 0; c < nc; ++c) xs[c] = a.x + (c0 + c) * a.x_col, ps[c] = base + (c0 + c) * prep;
            dot_columns<T>(nc, wr, xs, ps, a, out);
            for (int c = 0; c < nc; ++c) a.dst[(c0 + c) * a.dst_col + r] = out[c];
        }
    }
}

const Kernel kKernels[] = {
    { SB_X86_ISA "_q8_0", GGML_TYPE_Q8_0, GGML_TYPE_Q8_0, rows<Q8_0> },
    { SB_X86_ISA "_q5_0", GGML_TYPE_Q5_0, GGML_TYPE_Q8_0, rows<Q5_0> },
    { SB_X86_ISA "_q4_1", GGML_TYPE_Q4_1, GGML_TYPE_Q8_1, rows<Q4_1> },
    { SB_X86_ISA "_q4_K", GGML_TYPE_Q4_K, GGML_TYPE_Q8_K, rows<Q4_K> },
    { SB_X86_ISA "_q6_K", GGML_TYPE_Q6_K, GGML_TYPE_Q8_K, rows<Q6_K> },
};

} // namespace

const Kernel * SB_X86_ENTRY(ggml_type t) {
    for (const Kernel & k : kKernels)
        if (k.type == t) return &k;
    return nullptr;
}

} // namespace sb::kernels
