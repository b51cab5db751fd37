// Q6_K with 512-bit registers (included by x86_kernels.inl in its AVX-512
// VNNI build): the same integers and float operations as Q6_K_Step, that is
// as ggml's AVX2 vec_dot_q6_K, with about half the instructions per column.
//
// ggml's bits are fixed by 8 int32 lanes per super-block: lane l sums, over
// the 8 chunks of 32 values, scale(chunk, l < 4 ? first 16 : last 16) times
// the 4-product dot of bytes 4l..4l+3 of the chunk, minus the "- 32" offset
// 32 * (bsum[2l] scale[2l] + bsum[2l+1] scale[2l+1]); then
// acc = fma(d_x d_w, float(lane), acc) and one horizontal sum at the end.
// Integers are exact however they are formed, so here:
//   - the dwords of two chunks are interleaved (a0 b0 a1 b1 ...), in the
//     weights (per row, shared by the columns) and in the activations (once
//     per call), so one dpbusd over 64 bytes gives 16 four-product dots;
//   - packs_epi32 of two such (each dot fits in int16: 4 * 63 * 128 < 2^15)
//     puts lane l of chunks a and b side by side, and dpwssd multiplies them
//     by their scales and adds both into one int32 lane: per 128-bit lane L,
//     int32 lanes 4L, 4L+1 collect ggml's lanes 2L, 2L+1 from chunks 0, 1 of
//     each half, lanes 4L+2, 4L+3 the same from chunks 2, 3;
//   - the offset starts lanes 4L, 4L+1 (zero in 4L+2, 4L+3), and one shuffle
//     and add leaves ggml's lane 2L + m in lane 4L + m.
// The float lanes 4L+2, 4L+3 carry a second copy along and are dropped at
// the end, where lanes (4L, 4L+1) become ggml's 8 lanes for its horizontal sum.

// one activation super-block as the kernel reads it
struct Q6_K_x16_Act {
    int8_t x[4][64];    // chunk pairs (0, 1), (2, 3), (4, 5), (6, 7), dwords interleaved
    int16_t bsums[32];  // per 128-bit lane L: bsums 4L..4L+3, then four zeros
};

// dword m of a at 2m, of b at 2m + 1
inline __m512i interleave_dwords(__m256i a, __m256i b) {
    const __m512i idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutex2var_epi32(_mm512_castsi256_si512(a), idx, _mm512_castsi256_si512(b));
}

// 16 int16 (a ymm) -> per 128-bit lane L: words 4L..4L+3, then four zeros
inline __m512i spread_quads(__m256i v) { return _mm512_maskz_expand_epi64(0x55, _mm512_castsi256_si512(v)); }

struct Q6_K_x16 {
    using WBlock = BlockQ6_K;
    using XBlock = BlockQ8_K;
    using State = __m512;  // one column's float lanes (tiled_rows)
    static constexpr int64_t kBlock = kQK_K;
    static constexpr size_t kActBytes = sizeof(Q6_K_x16_Act);  // prepared activations per block and column
    static State zero() { return _mm512_setzero_ps(); }
    static size_t bytes(int64_t k) { return (size_t) (k / kQK_K) * sizeof(Q6_K_x16_Act); }
    static void prepare(const uint8_t * xp, int64_t k, uint8_t * out) {
        const BlockQ8_K * x = (const BlockQ8_K *) xp;
        Q6_K_x16_Act * a = (Q6_K_x16_Act *) out;
        for (int64_t i = 0; i < k / kQK_K; ++i) {
            for (int p = 0; p < 4; ++p)
                _mm512_storeu_si512(a[i].x[p], interleave_dwords(load256(x[i].qs + 64 * p), load256(x[i].qs + 64 * p + 32)));
            _mm512_storeu_si512(a[i].bsums, spread_quads(load256(x[i].bsums)));
        }
    }

    // one weight super-block, ready for every column
    struct Unpacked {
        __m512i w[4];         // values of chunk pairs, as the activations
        __m512i scales[2];    // dpwssd's words for half j (chunk pairs 2j, 2j + 1)
        __m512i offset;       // -32 * scales, spread as the activations' bsums
        float d;
    };
    static void unpack(const BlockQ6_K & w, Unpacked & u) {
        // scale word (L, p) of half j: chunk t = (p & 1) + 2 (p >> 2) of the half, its
        // first or last 16 values for ggml's lanes 2L, 2L+1 below or above 4
        alignas(32) static const int8_t pick[2][32] = {
#define SB_Q6_PICK(j, h) 8 * (j) + (h), 8 * (j) + 2 + (h), 8 * (j) + (h), 8 * (j) + 2 + (h), \
                         8 * (j) + 4 + (h), 8 * (j) + 6 + (h), 8 * (j) + 4 + (h), 8 * (j) + 6 + (h)
            { SB_Q6_PICK(0, 0), SB_Q6_PICK(0, 0), SB_Q6_PICK(0, 1), SB_Q6_PICK(0, 1) },
            { SB_Q6_PICK(1, 0), SB_Q6_PICK(1, 0), SB_Q6_PICK(1, 1), SB_Q6_PICK(1, 1) },
#undef SB_Q6_PICK
        };
        const __m128i s8 = _mm_loadu_si128((const __m128i *) w.scales);
        const __m256i s8x2 = _mm256_broadcastsi128_si256(s8);
        for (int j = 0; j < kQK_K / 128; ++j) {
            __m256i q[4];
            q6_K_values(w, j, q);
            u.w[2 * j] = interleave_dwords(q[0], q[1]);
            u.w[2 * j + 1] = interleave_dwords(q[2], q[3]);
            u.scales[j] = _mm512_cvtepi8_epi16(_mm256_shuffle_epi8(s8x2, load256(pick[j])));
        }
        u.offset = spread_quads(_mm256_mullo_epi16(_mm256_cvtepi8_epi16(s8), _mm256_set1_epi16(-32)));
        u.d = fp16(w.d);
    }

    // acc + d_x d_w * (the super-block's lanes), for one column
    static __m512 column(const Unpacked & u, const Q6_K_x16_Act & a, float dx, __m512 acc) {
        __m512i t = _mm512_madd_epi16(_mm512_loadu_si512(a.bsums), u.offset);
        for (int j = 0; j < kQK_K / 128; ++j) {
            const __m512i d0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u.w[2 * j], _mm512_loadu_si512(a.x[2 * j]));
            const __m512i d1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u.w[2 * j + 1], _mm512_loadu_si512(a.x[2 * j + 1]));
            t = _mm512_dpwssd_epi32(t, _mm512_packs_epi32(d0, d1), u.scales[j]);
        }
        t = _mm512_add_epi32(t, _mm512_shuffle_epi32(t, _MM_PERM_BADC));
        return _mm512_fmadd_ps(_mm512_set1_ps(dx * u.d), _mm512_cvtepi32_ps(t), acc);
    }

    // lanes (4L, 4L+1) are ggml's lanes 2L, 2L+1: its horizontal sum of them
    static float finish(__m512 acc) {
        const __m512i idx = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 13, 12, 9, 8, 5, 4, 1, 0);
        return hsum8(_mm512_castps512_ps256(_mm512_permutexvar_ps(idx, acc)));
    }

    // super-blocks [b0, b1) of one weight row into NC columns' accumulators
    template <int NC>
    static void run(const uint8_t * wp, const uint8_t * const * xp, const uint8_t * const * prep, int64_t b0, int64_t b1,
                    __m512 * acc) {
        const BlockQ6_K * w = (const BlockQ6_K *) wp;
        __m512 a[NC];
        for (int c = 0; c < NC; ++c) a[c] = acc[c];
        Unpacked u;
        for (int64_t i = b0; i < b1; ++i) {
            unpack(w[i], u);
            for (int c = 0; c < NC; ++c)
                a[c] = column(u, ((const Q6_K_x16_Act *) prep[c])[i], ((const BlockQ8_K *) xp[c])[i].d, a[c]);
        }
        for (int c = 0; c < NC; ++c) acc[c] = a[c];
    }
    template <int NC>
    static void dot(const uint8_t * wp, const uint8_t * const * xp, const uint8_t * const * prep, int64_t k, float * out) {
        const BlockQ6_K * w = (const BlockQ6_K *) wp;
        __m512 acc[NC];
        for (int c = 0; c < NC; ++c) acc[c] = _mm512_setzero_ps();
        Unpacked u;
        for (int64_t i = 0; i < k / kQK_K; ++i) {
            unpack(w[i], u);
            for (int c = 0; c < NC; ++c)
                acc[c] = column(u, ((const Q6_K_x16_Act *) prep[c])[i], ((const BlockQ8_K *) xp[c])[i].d, acc[c]);
        }
        for (int c = 0; c < NC; ++c) out[c] = finish(acc[c]);
    }
    static void dot_two_rows(const uint8_t * wp0, const uint8_t * wp1, const uint8_t * xp, const uint8_t * prep, int64_t k,
                             float * out) {
        const BlockQ6_K * w0 = (const BlockQ6_K *) wp0, * w1 = (const BlockQ6_K *) wp1;
        const BlockQ8_K * x = (const BlockQ8_K *) xp;
        const Q6_K_x16_Act * a = (const Q6_K_x16_Act *) prep;
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        Unpacked u0, u1;
        for (int64_t i = 0; i < k / kQK_K; ++i) {
            unpack(w0[i], u0);
            unpack(w1[i], u1);
            acc0 = column(u0, a[i], x[i].d, acc0);
            acc1 = column(u1, a[i], x[i].d, acc1);
        }
        out[0] = finish(acc0), out[1] = finish(acc1);
    }
};
