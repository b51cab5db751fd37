// Several columns at once over weights llama.cpp repacks 8x8 (Q4_K, Q4_0,
// IQ4_NL), built for AVX2 + FMA + F16C (compiled with those flags, entered
// after a run-time CPU check): the AVX2 counterpart of x86_repacked_avx512.cpp,
// with exactly the per-row arithmetic of ggml's gemv for one token.
//
// The gemv's bits are fixed by exact int32 totals per row and block and by its
// float epilogue (x86_repacked_avx512.cpp spells it out); the totals may be
// formed in any way. ggml's AVX2 gemv unpacks, blends and shuffles the weights
// again for every column. Here the weights of a block are unpacked once, to a
// small buffer in L1, and every column of the call runs over them with one
// maddubs per 4 rows x 8 values: about a third of the gemv's instructions per
// column. 16 vector registers hold the sums of two columns at a time, so
// columns go in pairs, each weight register loaded once for both. Up to
// kDirectCols columns skip the buffer (q4_K_columns_direct).
#include "kernels/isa_scratch.h"
#include "kernels/repacked.h"

#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace sb::kernels {
namespace {

#include "kernels/x86_repacked_common.inl"

// int32 lanes (2r, 2r + 1) of a (rows 0-3) and of b (rows 4-7) -> lane r = row r's total
inline __m256i add_row_lane_pairs(__m256i a, __m256i b) {
    const __m256i h = _mm256_hadd_epi32(a, b);  // rows 0 1 4 5 | 2 3 6 7
    return _mm256_permutevar8x32_epi32(h, _mm256_set_epi32(7, 6, 3, 2, 5, 4, 1, 0));
}

inline __m256i bcast8(const int8_t * p) {
    int64_t v;
    std::memcpy(&v, p, 8);
    return _mm256_set1_epi64x(v);
}

// ---- Q4_K

// Scales as maddubs/madd want them, by one byte shuffle of a 64-bit word that
// holds the 8 rows' 6-bit values (row r in byte r): int16 words, row 4h + i's
// value in words 4i..4i+3 of half h (bytes 0x80: zero high bytes).
inline __m256i spread_rows(__m256i v8, int h) {
    const __m256i pick = h == 0 ? _mm256_set_epi8(-128, 3, -128, 3, -128, 3, -128, 3, -128, 2, -128, 2, -128, 2, -128, 2,
                                                  -128, 1, -128, 1, -128, 1, -128, 1, -128, 0, -128, 0, -128, 0, -128, 0)
                                : _mm256_set_epi8(-128, 7, -128, 7, -128, 7, -128, 7, -128, 6, -128, 6, -128, 6, -128, 6,
                                                  -128, 5, -128, 5, -128, 5, -128, 5, -128, 4, -128, 4, -128, 4, -128, 4);
    return _mm256_shuffle_epi8(v8, pick);
}

// The mins of sub-blocks 2p and 2p + 1 as words (min_2p(r), min_2p+1(r)), r = 0..7
inline __m256i mins_pair(const uint8_t * scales, int p) {
    const __m128i m = _mm_set_epi64x((long long) scales8(scales + 12 * (2 * p + 1), true),
                                     (long long) scales8(scales + 12 * (2 * p), true));
    const __m256i both = _mm256_broadcastsi128_si256(m);
    return _mm256_shuffle_epi8(both, _mm256_set_epi8(-128, 15, -128, 7, -128, 14, -128, 6, -128, 13, -128, 5, -128, 12,
                                                     -128, 4, -128, 11, -128, 3, -128, 10, -128, 2, -128, 9, -128, 1,
                                                     -128, 8, -128, 0));
}

// A block of 8 rows unpacked for maddubs: w[8 j + 2 o + h] holds sub-block j,
// values 8o..8o+7, of rows 4h..4h+3 (8 bytes each, 0..15); scale[2 j + h] the
// int16 scales of sub-block j for rows 4h..4h+3, each repeated over its row's
// 4 words; mins[p] the words (min_2p(r), min_2p+1(r)) for r = 0..7.
struct alignas(32) Q4_KUnpacked {
    __m256i w[64];
    __m256i scale[16];
    __m256i mins[4];
};

void unpack_q4_K(const BlockQ4_Kx8 & wb, Q4_KUnpacked & u) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int p = 0; p < 4; ++p)
        for (int o = 0; o < 4; ++o)
            for (int h = 0; h < 2; ++h) {  // the low nibbles are sub-block 2p, the high ones 2p + 1
                const __m256i q = _mm256_loadu_si256((const __m256i *) (wb.qs + 256 * p + 64 * o + 32 * h));
                u.w[16 * p + 2 * o + h] = _mm256_and_si256(q, m4);
                u.w[16 * p + 8 + 2 * o + h] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            }
    for (int j = 0; j < 8; ++j) {
        const __m256i v8 = _mm256_set1_epi64x((long long) scales8(wb.scales + 12 * j, false));
        for (int h = 0; h < 2; ++h) u.scale[2 * j + h] = spread_rows(v8, h);
    }
    for (int p = 0; p < 4; ++p) u.mins[p] = mins_pair(wb.scales, p);
}

// The same pointer, opaque to the optimiser: the unpacked block is the same
// for every column, and without this GCC hoists its 84 loads out of the
// column loop into as many spills and reloads (docs/bench/avx2-pairs-2026-12-07)
inline const Q4_KUnpacked * opaque(const Q4_KUnpacked * u) {
    asm("" : "+r"(u));
    return u;
}

inline __m256i maddubs_add(__m256i acc, __m256i w, __m256i x, bool first) {
    const __m256i p = _mm256_maddubs_epi16(w, x);
    return first ? p : _mm256_add_epi16(acc, p);
}

// T (scales x sub-block dots) of the 8 rows for two columns a and b (lane r =
// row r), each weight register loaded once for both. A maddubs lane sums two
// products |u4 * s8| <= 15 * 128, four of them stay within int16; madd with
// the scales (<= 63) then gives int32.
inline void q4_K_scaled_dots(const Q4_KUnpacked * u, const int8_t * a, const int8_t * b, __m256i & ta, __m256i & tb) {
    __m256i t0a = _mm256_setzero_si256(), t1a = t0a, t0b = t0a, t1b = t0a;
    for (int j = 0; j < 8; ++j) {
        const __m256i z = _mm256_setzero_si256();
        __m256i i0a = z, i1a = z, i0b = z, i1b = z;  // rows 0-3 and 4-7 of each column (set at o = 0)
        for (int o = 0; o < 4; ++o) {
            const __m256i xa = bcast8(a + 32 * j + 8 * o), xb = bcast8(b + 32 * j + 8 * o);
            const __m256i w0 = _mm256_load_si256(u->w + 8 * j + 2 * o);
            i0a = maddubs_add(i0a, w0, xa, o == 0), i0b = maddubs_add(i0b, w0, xb, o == 0);
            const __m256i w1 = _mm256_load_si256(u->w + 8 * j + 2 * o + 1);
            i1a = maddubs_add(i1a, w1, xa, o == 0), i1b = maddubs_add(i1b, w1, xb, o == 0);
        }
        const __m256i s0 = _mm256_load_si256(u->scale + 2 * j), s1 = _mm256_load_si256(u->scale + 2 * j + 1);
        t0a = _mm256_add_epi32(t0a, _mm256_madd_epi16(i0a, s0)), t0b = _mm256_add_epi32(t0b, _mm256_madd_epi16(i0b, s0));
        t1a = _mm256_add_epi32(t1a, _mm256_madd_epi16(i1a, s1)), t1b = _mm256_add_epi32(t1b, _mm256_madd_epi16(i1b, s1));
    }
    ta = add_row_lane_pairs(t0a, t1a), tb = add_row_lane_pairs(t0b, t1b);
}

// The mins' term of sub-blocks 2p and 2p + 1 (mins_p: mins_pair's words) for
// one column: lane r = min_2p(r) s_2p + min_2p+1(r) s_2p+1, s_j the sum of the
// activation's sub-block j (a pair of bsums, as int16: |s_j| <= 32 * 128)
inline __m256i q4_K_min_term(__m256i mins_p, const BlockQ8_K & x, int p) {
    const int16_t * q8s = x.bsums + 4 * p;
    const int16_t pair[2] = { (int16_t) (q8s[0] + q8s[1]), (int16_t) (q8s[2] + q8s[3]) };
    int32_t bs;
    std::memcpy(&bs, pair, 4);
    return _mm256_madd_epi16(mins_p, _mm256_set1_epi32(bs));
}

// M (mins x sub-block sums of the activation) of the 8 rows: lane r = row r.
// The same terms as q4_K_min_term's, all four pairs at once: the 8 sub-block
// sums s_j from one hadd of the 16 bsums (dword p holds s_2p, s_2p+1), each
// pair broadcast by an in-lane shuffle. (The direct kernel takes one pair per
// step of its sub-block loop, where a shuffle's immediate cannot follow p.)
inline __m256i q4_K_min_terms(const Q4_KUnpacked * u, const BlockQ8_K & x) {
    const __m128i s = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *) x.bsums), _mm_loadu_si128((const __m128i *) (x.bsums + 8)));
    const __m256i s2 = _mm256_broadcastsi128_si256(s);
    __m256i m = _mm256_madd_epi16(u->mins[0], _mm256_shuffle_epi32(s2, 0x00));
    m = _mm256_add_epi32(m, _mm256_madd_epi16(u->mins[1], _mm256_shuffle_epi32(s2, 0x55)));
    m = _mm256_add_epi32(m, _mm256_madd_epi16(u->mins[2], _mm256_shuffle_epi32(s2, 0xAA)));
    return _mm256_add_epi32(m, _mm256_madd_epi16(u->mins[3], _mm256_shuffle_epi32(s2, 0xFF)));
}

// ---- Q4_K, a few columns straight from the packed block (no unpacked copy)

// Up to this many columns, q4_K_columns_direct; from 7 on, the unpacked block
// (per column on Zen 3, docs/bench/avx2-q4k-2026-12-07: 1.3x ggml's gemv for
// one column, below the unpacked block's time up to 6 columns, above from 7)
constexpr int kDirectCols = 6;

// One group of 8 rows times NC (small) columns, the weights unpacked in
// registers as they are loaded: the same integer totals and float epilogue
// as q4_K_columns, without storing and reloading the unpacked block, which a
// single column (plain decoding) cannot amortise.
template <int NC>
void q4_K_columns_direct(const BlockQ4_Kx8 * w, const BlockQ8_K * const * x, int64_t nb, float * const * out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[NC], acc_min[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm256_setzero_ps(), acc_min[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        const BlockQ4_Kx8 & wb = w[b];
        // two blocks ahead: one column alone reads faster than the hardware
        // prefetcher keeps up with (docs/bench/avx2-q4k-2026-12-07)
        for (int l = 0; l < (int) sizeof(BlockQ4_Kx8); l += 64) _mm_prefetch((const char *) (w + b + 2) + l, _MM_HINT_T0);
        __m256i t[NC][2], m[NC];
        for (int c = 0; c < NC; ++c) t[c][0] = t[c][1] = m[c] = _mm256_setzero_si256();
        for (int p = 0; p < 4; ++p) {
            __m256i sc[2][2];  // [s][h]
            for (int s = 0; s < 2; ++s) {
                const __m256i v8 = _mm256_set1_epi64x((long long) scales8(wb.scales + 12 * (2 * p + s), false));
                sc[s][0] = spread_rows(v8, 0), sc[s][1] = spread_rows(v8, 1);
            }
            __m256i i[NC][2][2];  // [c][s][h]
            for (int o = 0; o < 4; ++o)
                for (int h = 0; h < 2; ++h) {
                    const __m256i q = _mm256_loadu_si256((const __m256i *) (wb.qs + 256 * p + 64 * o + 32 * h));
                    const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                    for (int c = 0; c < NC; ++c) {
                        const int8_t * a = x[c][b].qs + 64 * p + 8 * o;
                        // (not maddubs_add: written with it, and i zero-initialised for it,
                        // GCC 12 ran 5 and 6 columns 15-25% slower; this form is kept as measured)
                        const __m256i plo = _mm256_maddubs_epi16(lo, bcast8(a));
                        const __m256i phi = _mm256_maddubs_epi16(hi, bcast8(a + 32));
                        i[c][0][h] = o == 0 ? plo : _mm256_add_epi16(i[c][0][h], plo);
                        i[c][1][h] = o == 0 ? phi : _mm256_add_epi16(i[c][1][h], phi);
                    }
                }
            const __m256i mp = mins_pair(wb.scales, p);
            for (int c = 0; c < NC; ++c) {
                for (int s = 0; s < 2; ++s)
                    for (int h = 0; h < 2; ++h) t[c][h] = _mm256_add_epi32(t[c][h], _mm256_madd_epi16(i[c][s][h], sc[s][h]));
                m[c] = _mm256_add_epi32(m[c], q4_K_min_term(mp, x[c][b], p));
            }
        }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) wb.d));
        const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) wb.dmin));
        for (int c = 0; c < NC; ++c) {
            const __m256 dx = _mm256_set1_ps(x[c][b].d);
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(add_row_lane_pairs(t[c][0], t[c][1])), _mm256_mul_ps(d, dx), acc[c]);
            acc_min[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m[c]), _mm256_mul_ps(dmin, dx), acc_min[c]);
        }
    }
    for (int c = 0; c < NC; ++c) _mm256_storeu_ps(out[c], _mm256_sub_ps(acc[c], acc_min[c]));
}

// One group of 8 rows, NC columns: out[c][r] for r < 8, with the gemv's float
// epilogue per row lane (acc, acc_min; out = acc - acc_min). Columns go in
// pairs over the block unpacked once (an odd last one pairs with itself).
template <int NC>
void q4_K_columns_unpacked(const BlockQ4_Kx8 * w, const BlockQ8_K * const * x, int64_t nb, float * const * out) {
    Q4_KUnpacked u;
    __m256 acc[NC], acc_min[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm256_setzero_ps(), acc_min[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        unpack_q4_K(w[b], u);
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) w[b].d));
        const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) w[b].dmin));
        for (int c = 0; c < NC; c += 2) {
            const int c1 = std::min(c + 1, NC - 1);
            __m256i t[2];
            q4_K_scaled_dots(opaque(&u), x[c][b].qs, x[c1][b].qs, t[0], t[1]);
            for (int e = 0; e < 2 && c + e < NC; ++e) {
                const BlockQ8_K & xb = x[c + e][b];
                const __m256i m = q4_K_min_terms(opaque(&u), xb);
                const __m256 dx = _mm256_set1_ps(xb.d);
                acc[c + e] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t[e]), _mm256_mul_ps(d, dx), acc[c + e]);
                acc_min[c + e] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m), _mm256_mul_ps(dmin, dx), acc_min[c + e]);
            }
        }
    }
    for (int c = 0; c < NC; ++c) _mm256_storeu_ps(out[c], _mm256_sub_ps(acc[c], acc_min[c]));
}

template <int NC>
void q4_K_columns(const BlockQ4_Kx8 * w, const BlockQ8_K * const * x, int64_t nb, float * const * out) {
    if constexpr (NC <= kDirectCols) q4_K_columns_direct<NC>(w, x, nb, out);
    else q4_K_columns_unpacked<NC>(w, x, nb, out);
}

// ---- Q4_0 and IQ4_NL
//
// Per row and block of 32 the gemv's acc(r) = fma(float(sum_i w_i x_i),
// d(r) * d_x, acc(r)). The block unpacked: v[k][h], k = (offset, nibble half)
// as the weights' order (elements 0-7, 16-23, 8-15, 24-31), rows 4h..4h+3.

// Q4_0: u = w + 8 in 0..15 (the stored nibble n' = n ^ 8, value n - 8), and
// sum w x = sum u x - 8 sum x; four maddubs of |u * x| <= 15 * 128 pairs stay
// within int16
struct Q4_0Values {
    static __m256i table() {
        return _mm256_broadcastsi128_si256(_mm_set_epi8(7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8));
    }
    static __m256i dots(const __m256i (&v)[4][2], const __m256i (&x)[4], int h) {
        __m256i s = _mm256_maddubs_epi16(v[0][h], x[0]);
        for (int k = 1; k < 4; ++k) s = _mm256_add_epi16(s, _mm256_maddubs_epi16(v[k][h], x[k]));
        return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
    }
    static __m256i correction(int32_t sum) { return _mm256_set1_epi32(8 * sum); }
};

// IQ4_NL: signed values up to 127 in magnitude, so maddubs takes |w| and x with
// w's sign (a pair then reaches 2 * 127 * 127: each maddubs goes to int32 alone)
struct IQ4_NLValues {
    static __m256i table() {
        return _mm256_broadcastsi128_si256(_mm_set_epi8(113, 89, 69, 53, 38, 25, 13, 1, -10, -22, -35, -49, -65, -83,
                                                        -104, -127));
    }
    static __m256i dots(const __m256i (&v)[4][2], const __m256i (&x)[4], int h) {
        const __m256i ones = _mm256_set1_epi16(1);
        __m256i s = _mm256_setzero_si256();
        for (int k = 0; k < 4; ++k) {
            const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(v[k][h], v[k][h]), _mm256_sign_epi8(x[k], v[k][h]));
            s = _mm256_add_epi32(s, _mm256_madd_epi16(p, ones));
        }
        return s;
    }
    static __m256i correction(int32_t) { return _mm256_setzero_si256(); }
};

template <class V, int NC>
void b32_columns(const BlockX8 * w, const BlockQ8_0 * const * x, const int32_t * const * sums, int64_t nb,
                 float * const * out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), lut = V::table();
    __m256 acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        __m256i v[4][2];  // offset 0 low, offset 0 high, offset 1 low, offset 1 high
        for (int o = 0; o < 2; ++o)
            for (int h = 0; h < 2; ++h) {
                const __m256i q = _mm256_loadu_si256((const __m256i *) (w[b].qs + 64 * o + 32 * h));
                v[2 * o][h] = _mm256_shuffle_epi8(lut, _mm256_and_si256(q, m4));
                v[2 * o + 1][h] = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(q, 4), m4));
            }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) w[b].d));
        for (int c = 0; c < NC; ++c) {
            const int8_t * a = x[c][b].qs;
            const __m256i xs[4] = { bcast8(a), bcast8(a + 16), bcast8(a + 8), bcast8(a + 24) };
            const __m256i t = add_row_lane_pairs(V::dots(v, xs, 0), V::dots(v, xs, 1));
            const __m256i sumi = _mm256_sub_epi32(t, V::correction(sums[c][b]));
            const __m256 dx = _mm256_set1_ps(_cvtsh_ss(x[c][b].d));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(d, dx), acc[c]);
        }
    }
    for (int c = 0; c < NC; ++c) _mm256_storeu_ps(out[c], acc[c]);
}

void block_sums_q8_0(const BlockQ8_0 * x, int64_t nb, int32_t * out) {
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; ++b) {
        const __m256i v = _mm256_loadu_si256((const __m256i *) x[b].qs);
        const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, v), ones16);
        out[b] = hsum_epi32(s);
    }
}

} // namespace

RepackedColumnsFn x86_avx2_repacked_columns(ggml_type t) { return repacked_columns<Q4_0Values, IQ4_NLValues>(t); }

} // namespace sb::kernels

#else
namespace sb::kernels {
RepackedColumnsFn x86_avx2_repacked_columns(ggml_type) { return nullptr; }
}
#endif
