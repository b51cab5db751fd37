// Several columns at once over Q4_K weights repacked 8x8 (block_q4_Kx8), with
// exactly the per-row arithmetic of ggml's ggml_gemv_q4_K_8x8_q8_K, built for
// AVX-512 VNNI (compiled with its flags, entered after a run-time CPU check).
//
// What fixes the gemv's bits, per row r and super-block b (its AVX2 code):
//   T = sum_j scale_j(r) * dot(sub-block j of row r, of the activation)  (int32)
//   M = sum_j min_j(r) * (sum of the activation's sub-block j)            (int32)
//   acc(r)     = fma(float(T), d(r) * d_x, acc(r))
//   acc_min(r) = fma(float(M), dmin(r) * d_x, acc_min(r))
// and at the end out(r) = acc(r) - acc_min(r). The integers are exact however
// they are formed (no overflow: |T| < 2^25), so here they come from dpbusd over
// 8 rows at once, one column after another over the same unpacked weights,
// and the float operations are the gemv's, in its order, one lane per row.
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

// The int16 scales for dpwssd over packs(lo, hi) of two sub-blocks' dpbusd
// sums. packs_epi32 works per 128-bit lane L, whose int32 lanes 4L..4L+3 hold
// rows 2L and 2L + 1 (two lanes per row, each row's 8 bytes): it gives the
// words lo(4L..4L+3), hi(4L..4L+3), so dpwssd's word pairs are one row's two
// lanes, times that row's scale. Words per 128-bit lane L: s_lo(2L) twice,
// s_lo(2L + 1) twice, s_hi(2L) twice, s_hi(2L + 1) twice.
inline __m512i scale_words(uint64_t s_lo, uint64_t s_hi) {
    const __m128i v = _mm_set_epi64x((long long) s_hi, (long long) s_lo);  // bytes 0-7 lo rows, 8-15 hi rows
    const __m256i pick = _mm256_set_epi8(15, 15, 14, 14, 7, 7, 6, 6, 13, 13, 12, 12, 5, 5, 4, 4,
                                         11, 11, 10, 10, 3, 3, 2, 2, 9, 9, 8, 8, 1, 1, 0, 0);
    return _mm512_cvtepu8_epi16(_mm256_shuffle_epi8(_mm256_broadcastsi128_si256(v), pick));
}

// int32 lanes of dpwssd's totals (per 128-bit lane L: row 2L lo, row 2L + 1
// lo, row 2L hi, row 2L + 1 hi) -> lane r of a ymm = row r's total
inline __m256i add_row_halves(__m512i t) {
    const __m512i s = _mm512_add_epi32(t, _mm512_shuffle_epi32(t, _MM_PERM_BADC));
    const __m512i idx = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 13, 12, 9, 8, 5, 4, 1, 0);
    return _mm512_castsi512_si256(_mm512_permutexvar_epi32(idx, s));
}

// The 64 mins of a super-block as int16, lane 8r + j = min_j(r): rows 0-3, then rows 4-7
struct Mins {
    __m512i rows03, rows47;
};
inline Mins mins_by_row(const uint8_t * scales) {
    // word 8j + r of (lo, hi) = min_j(r), j < 4 in lo: then transposed to 8r + j
    const __m512i lo = _mm512_cvtepu8_epi16(_mm256_set_epi64x(
        (long long) scales8(scales + 36, true), (long long) scales8(scales + 24, true),
        (long long) scales8(scales + 12, true), (long long) scales8(scales, true)));
    const __m512i hi = _mm512_cvtepu8_epi16(_mm256_set_epi64x(
        (long long) scales8(scales + 84, true), (long long) scales8(scales + 72, true),
        (long long) scales8(scales + 60, true), (long long) scales8(scales + 48, true)));
    alignas(64) static const int16_t idx[2][32] = {
#define SB_MIN_IDX(r) (r), 8 + (r), 16 + (r), 24 + (r), 32 + (r), 40 + (r), 48 + (r), 56 + (r)
        { SB_MIN_IDX(0), SB_MIN_IDX(1), SB_MIN_IDX(2), SB_MIN_IDX(3) },
        { SB_MIN_IDX(4), SB_MIN_IDX(5), SB_MIN_IDX(6), SB_MIN_IDX(7) },
#undef SB_MIN_IDX
    };
    return { _mm512_permutex2var_epi16(lo, _mm512_load_si512(idx[0]), hi),
             _mm512_permutex2var_epi16(lo, _mm512_load_si512(idx[1]), hi) };
}

// int32 lanes (2r, 2r + 1) -> lane r of a ymm
inline __m256i add_lane_pairs(__m512i t) {
    const __m512i s = _mm512_add_epi32(t, _mm512_shuffle_epi32(t, _MM_PERM_CDAB));
    return _mm512_cvtepi64_epi32(s);
}

// int32 lanes (4r .. 4r + 3) of a (rows 0-3) and of b (rows 4-7) -> lane r of a ymm
inline __m256i add_lane_quads(__m512i a, __m512i b) {
    a = _mm512_add_epi32(a, _mm512_shuffle_epi32(a, _MM_PERM_CDAB));
    a = _mm512_add_epi32(a, _mm512_shuffle_epi32(a, _MM_PERM_BADC));
    b = _mm512_add_epi32(b, _mm512_shuffle_epi32(b, _MM_PERM_CDAB));
    b = _mm512_add_epi32(b, _mm512_shuffle_epi32(b, _MM_PERM_BADC));
    // lanes 4r now hold the rows' totals: lanes 0, 4, 8, 12 of a, then of b
    const __m512i idx = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 28, 24, 20, 16, 12, 8, 4, 0);
    return _mm512_castsi512_si256(_mm512_permutex2var_epi32(a, idx, b));
}

// One group of 8 rows, NC columns: out[c][r] for r < 8.
template <int NC>
void q4_K_columns(const BlockQ4_Kx8 * w, const BlockQ8_K * const * x, int64_t nb, float * const * out) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m256 acc[NC], acc_min[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm256_setzero_ps(), acc_min[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        const BlockQ4_Kx8 & wb = w[b];
        __m512i t[NC];
        for (int c = 0; c < NC; ++c) t[c] = _mm512_setzero_si512();
        for (int p = 0; p < 4; ++p) {
            __m512i lo[4], hi[4];
            for (int o = 0; o < 4; ++o) {
                const __m512i q = _mm512_loadu_si512(wb.qs + 256 * p + 64 * o);
                lo[o] = _mm512_and_si512(q, m4);
                hi[o] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
            }
            const __m512i s = scale_words(scales8(wb.scales + 12 * (2 * p), false), scales8(wb.scales + 12 * (2 * p + 1), false));
            for (int c = 0; c < NC; ++c) {
                const int8_t * a = x[c][b].qs + 64 * p;
                __m512i dl = _mm512_setzero_si512(), dh = _mm512_setzero_si512();
                for (int o = 0; o < 4; ++o) {
                    int64_t al, ah;
                    std::memcpy(&al, a + 8 * o, 8);
                    std::memcpy(&ah, a + 32 + 8 * o, 8);
                    dl = _mm512_dpbusd_epi32(dl, lo[o], _mm512_set1_epi64(al));
                    dh = _mm512_dpbusd_epi32(dh, hi[o], _mm512_set1_epi64(ah));
                }
                // a lane of dl or dh sums 16 products |u4 * s8| <= 15 * 128: packs cannot saturate
                t[c] = _mm512_dpwssd_epi32(t[c], _mm512_packs_epi32(dl, dh), s);
            }
        }
        const Mins mins = mins_by_row(wb.scales);
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) wb.d));
        const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) wb.dmin));
        for (int c = 0; c < NC; ++c) {
            const __m256i bs = _mm256_loadu_si256((const __m256i *) x[c][b].bsums);
            const __m128i s32 = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
            const __m512i s4 = _mm512_broadcast_i32x4(s32);
            const __m256i m = add_lane_quads(_mm512_madd_epi16(mins.rows03, s4), _mm512_madd_epi16(mins.rows47, s4));
            const __m256 dx = _mm256_set1_ps(x[c][b].d);
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(add_row_halves(t[c])), _mm256_mul_ps(d, dx), acc[c]);
            acc_min[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m), _mm256_mul_ps(dmin, dx), acc_min[c]);
        }
    }
    for (int c = 0; c < NC; ++c) _mm256_storeu_ps(out[c], _mm256_sub_ps(acc[c], acc_min[c]));
}

// ---- Q4_0 and IQ4_NL repacked 8x8 (block_q4_0x8, block_iq4_nlx8), Q8_0 activations
//
// ggml's gemv (gemv_q4_b32_8x8_q8_0_lut_avx), per row r and block b of 32:
//   acc(r) = fma(float(sum_i w_i x_i), d(r) * d_x, acc(r)),
// w_i the signed weight value (Q4_0: nibble - 8; IQ4_NL: its table's value).
// Here the same exact integer sum is sum_i u_i x_i - C * sum_i x_i with
// u_i = w_i + C unsigned, so dpbusd can form it over 8 rows at once.

struct Q4_0Values {  // stored nibble n' = n ^ 8 (ggml's repack flips it), value n - 8
    static constexpr int kOffset = 8;
    static __m512i table() { return _mm512_broadcast_i32x4(_mm_set_epi8(7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8)); }
};
struct IQ4_NLValues {  // value kvalues_iq4nl[n], unsigned + 128
    static constexpr int kOffset = 128;
    static __m512i table() {
        return _mm512_broadcast_i32x4(_mm_set_epi8((char) 241, (char) 217, (char) 197, (char) 181, (char) 166, (char) 153,
                                                   (char) 141, (char) 129, 118, 106, 93, 79, 63, 45, 24, 1));
    }
};

template <class V, int NC>
void b32_columns(const BlockX8 * w, const BlockQ8_0 * const * x, const int32_t * const * sums, int64_t nb,
                       float * const * out) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), lut = V::table();
    __m256 acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        __m512i u[4];  // offset 0 low, offset 0 high, offset 1 low, offset 1 high
        for (int o = 0; o < 2; ++o) {
            const __m512i q = _mm512_loadu_si512(w[b].qs + 64 * o);
            u[2 * o] = _mm512_shuffle_epi8(lut, _mm512_and_si512(q, m4));
            u[2 * o + 1] = _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(q, 4), m4));
        }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) w[b].d));
        for (int c = 0; c < NC; ++c) {
            const int8_t * a = x[c][b].qs;
            int64_t a0, a1, a2, a3;  // elements 0-7, 16-23, 8-15, 24-31: the weights' order
            std::memcpy(&a0, a, 8), std::memcpy(&a1, a + 16, 8), std::memcpy(&a2, a + 8, 8), std::memcpy(&a3, a + 24, 8);
            __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[0], _mm512_set1_epi64(a0));
            s = _mm512_dpbusd_epi32(s, u[1], _mm512_set1_epi64(a1));
            s = _mm512_dpbusd_epi32(s, u[2], _mm512_set1_epi64(a2));
            s = _mm512_dpbusd_epi32(s, u[3], _mm512_set1_epi64(a3));
            const __m256i sumi = _mm256_sub_epi32(add_lane_pairs(s), _mm256_set1_epi32(V::kOffset * sums[c][b]));
            const __m256 dx = _mm256_set1_ps(_cvtsh_ss(x[c][b].d));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(d, dx), acc[c]);
        }
    }
    for (int c = 0; c < NC; ++c) _mm256_storeu_ps(out[c], acc[c]);
}

void block_sums_q8_0(const BlockQ8_0 * x, int64_t nb, int32_t * out) {
    for (int64_t b = 0; b < nb; ++b) {
        const __m256i v = _mm256_loadu_si256((const __m256i *) x[b].qs);
        const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), v);
        out[b] = hsum_epi32(s);
    }
}

} // namespace

RepackedColumnsFn x86_avx512vnni_repacked_columns(ggml_type t) { return repacked_columns<Q4_0Values, IQ4_NLValues>(t); }

} // namespace sb::kernels

#else
namespace sb::kernels {
RepackedColumnsFn x86_avx512vnni_repacked_columns(ggml_type) { return nullptr; }
}
#endif
