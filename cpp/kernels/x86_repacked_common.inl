// The instruction-set-neutral half of our multi-column kernels over llama.cpp's
// 8x8 repacked layouts (block_q4_Kx8, block_q4_0x8, block_iq4_nlx8): ggml's
// block layouts, the Q4_K scale unpacking, the order in which rows and columns
// are visited, and the drivers. Included inside the unnamed namespace of
// x86_repacked_avx2.cpp and x86_repacked_avx512.cpp, which are compiled for
// their instruction sets; each defines the kernels declared below (after the
// block layouts) and exports repacked_columns<its Q4_0Values, IQ4_NLValues>.

constexpr int kQK_K = 256;

struct BlockQ4_Kx8 {  // ggml's block_q4_Kx8 (repack.h)
    uint16_t d[8], dmin[8];
    uint8_t scales[96];  // per sub-block j: 12 bytes packing the 8 rows' scale and min (Q4_K's 6-bit scheme)
    uint8_t qs[1024];    // per sub-block pair p: 4 x (8 rows x 8 bytes), low nibble sub-block 2p, high 2p+1
};
struct BlockQ8_K {
    float d;
    int8_t qs[kQK_K];
    int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(BlockQ4_Kx8) == 8 * 144 && sizeof(BlockQ8_K) == 292, "ggml block layout");

struct BlockX8 {  // block_q4_0x8 / block_iq4_nlx8: 8 fp16 scales, 8 rows x 16 bytes interleaved by 8
    uint16_t d[8];
    uint8_t qs[128];  // [offset 0: rows 0..7 x 8 bytes][offset 1: ...]; low nibbles elements 8o.., high 16 + 8o..
};
struct BlockQ8_0 {
    uint16_t d;
    int8_t qs[32];
};
static_assert(sizeof(BlockX8) == 144 && sizeof(BlockQ8_0) == 34, "ggml block layout");

// Defined by each instruction set's file: one group of 8 rows times NC <=
// kCols columns, out[c][r] for r < 8 (sums[c][b]: column c's block sums)
template <int NC>
void q4_K_columns(const BlockQ4_Kx8 * w, const BlockQ8_K * const * x, int64_t nb, float * const * out);
template <class V, int NC>
void b32_columns(const BlockX8 * w, const BlockQ8_0 * const * x, const int32_t * const * sums, int64_t nb,
                 float * const * out);
// the sum of each block's 32 activation values (exact)
void block_sums_q8_0(const BlockQ8_0 * x, int64_t nb, int32_t * out);

// the sum of the 8 int32 lanes
inline int32_t hsum_epi32(__m256i s) {
    const __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    const __m128i q = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
    return _mm_cvtsi128_si32(_mm_add_epi32(q, _mm_shuffle_epi32(q, 0xB1)));
}

// The 8 rows' 6-bit scales (or mins) of sub-block j as bytes, row r in byte r
inline uint64_t scales8(const uint8_t * s12, bool mins) {
    uint32_t a, b, c;
    std::memcpy(&a, s12, 4);
    std::memcpy(&b, s12 + 4, 4);
    std::memcpy(&c, s12 + 8, 4);
    const uint32_t lo = mins ? b & 0x3f3f3f3f : a & 0x3f3f3f3f;
    const uint32_t hi = mins ? ((c >> 4) & 0x0f0f0f0f) | (((b >> 6) & 0x03030303) << 4)
                             : (c & 0x0f0f0f0f) | (((a >> 6) & 0x03030303) << 4);
    return (uint64_t) lo | ((uint64_t) hi << 32);
}

// Columns per call of a group kernel: 8 (the AVX-512 build keeps a column's
// sums in registers for 8 beside the unpacked weights; the AVX2 build takes
// them one after another over weights unpacked once per block)
constexpr int kCols = 8;

// Every group of 8 rows in [r0, r1) times every column, kCols columns per
// call of group(r, c0, nc). Beyond kCols columns, a block of about 256 KB of
// weights (in L2) takes one pass of kCols columns after another, so that a
// pass's activations stay in L1 through the block (all columns at once do
// not); a column's arithmetic is the same in any order.
template <class Group>
void groups_by_passes(int64_t n, size_t row_bytes, int64_t r0, int64_t r1, const Group & group) {
    const int64_t block = n <= kCols ? r1 - r0 : std::max<int64_t>(8, (int64_t) ((256 << 10) / (8 * row_bytes)) * 8);
    for (int64_t rb = r0; rb < r1; rb += block)
        for (int64_t c0 = 0; c0 < n; c0 += kCols)
            for (int64_t r = rb; r < std::min(r1, rb + block); r += 8) group(r, c0, (int) std::min<int64_t>(kCols, n - c0));
}

template <int NC>
void q4_K_group(const BlockQ4_Kx8 * w, const void * xq, size_t x_col, int64_t nb, float * dst, size_t dst_col, int64_t c0) {
    const BlockQ8_K * x[NC];
    float * out[NC];
    for (int c = 0; c < NC; ++c) {
        x[c] = (const BlockQ8_K *) ((const char *) xq + (c0 + c) * x_col);
        out[c] = dst + (c0 + c) * dst_col;
    }
    q4_K_columns<NC>(w, x, nb, out);
}

void q4_K_8x8_columns(const void * w, size_t row_bytes, int64_t k, const void * xq, size_t x_col, int64_t n,
                      float * dst, size_t dst_col, int64_t r0, int64_t r1) {
    const int64_t nb = k / kQK_K;
    groups_by_passes(n, row_bytes, r0, r1, [&](int64_t r, int64_t c0, int nc) {
        const BlockQ4_Kx8 * wg = (const BlockQ4_Kx8 *) ((const char *) w + r * row_bytes);
        float * d = dst + r;
        switch (nc) {
            case 1: return q4_K_group<1>(wg, xq, x_col, nb, d, dst_col, c0);
            case 2: return q4_K_group<2>(wg, xq, x_col, nb, d, dst_col, c0);
            case 3: return q4_K_group<3>(wg, xq, x_col, nb, d, dst_col, c0);
            case 4: return q4_K_group<4>(wg, xq, x_col, nb, d, dst_col, c0);
            case 5: return q4_K_group<5>(wg, xq, x_col, nb, d, dst_col, c0);
            case 6: return q4_K_group<6>(wg, xq, x_col, nb, d, dst_col, c0);
            case 7: return q4_K_group<7>(wg, xq, x_col, nb, d, dst_col, c0);
            default: return q4_K_group<8>(wg, xq, x_col, nb, d, dst_col, c0);
        }
    });
}

template <class V, int NC>
void b32_group(const BlockX8 * w, const void * xq, size_t x_col, const int32_t * sums_buf, int64_t nb, float * dst,
               size_t dst_col, int64_t c0) {
    const BlockQ8_0 * x[NC];
    const int32_t * sums[NC];
    float * out[NC];
    for (int c = 0; c < NC; ++c) {
        x[c] = (const BlockQ8_0 *) ((const char *) xq + (c0 + c) * x_col);
        sums[c] = sums_buf + (c0 + c) * nb;
        out[c] = dst + (c0 + c) * dst_col;
    }
    b32_columns<V, NC>(w, x, sums, nb, out);
}

template <class V>
void b32_8x8_columns(const void * w, size_t row_bytes, int64_t k, const void * xq, size_t x_col, int64_t n,
                     float * dst, size_t dst_col, int64_t r0, int64_t r1) {
    const int64_t nb = k / 32;
    thread_local ScratchVector<int32_t> sums_buf;
    sums_buf.resize((size_t) (n * nb));
    for (int64_t c = 0; c < n; ++c)
        block_sums_q8_0((const BlockQ8_0 *) ((const char *) xq + c * x_col), nb, sums_buf.data() + c * nb);
    const int32_t * sums = sums_buf.data();
    groups_by_passes(n, row_bytes, r0, r1, [&](int64_t r, int64_t c0, int nc) {
        const BlockX8 * wg = (const BlockX8 *) ((const char *) w + r * row_bytes);
        float * d = dst + r;
        switch (nc) {
            case 1: return b32_group<V, 1>(wg, xq, x_col, sums, nb, d, dst_col, c0);
            case 2: return b32_group<V, 2>(wg, xq, x_col, sums, nb, d, dst_col, c0);
            case 3: return b32_group<V, 3>(wg, xq, x_col, sums, nb, d, dst_col, c0);
            case 4: return b32_group<V, 4>(wg, xq, x_col, sums, nb, d, dst_col, c0);
            case 5: return b32_group<V, 5>(wg, xq, x_col, sums, nb, d, dst_col, c0);
            case 6: return b32_group<V, 6>(wg, xq, x_col, sums, nb, d, dst_col, c0);
            case 7: return b32_group<V, 7>(wg, xq, x_col, sums, nb, d, dst_col, c0);
            default: return b32_group<V, 8>(wg, xq, x_col, sums, nb, d, dst_col, c0);
        }
    });
}

// One build's kernels by weight type (its value tables for Q4_0 and IQ4_NL)
template <class Q4_0V, class IQ4_NLV>
RepackedColumnsFn repacked_columns(ggml_type t) {
    switch (t) {
        case GGML_TYPE_Q4_K: return q4_K_8x8_columns;
        case GGML_TYPE_Q4_0: return b32_8x8_columns<Q4_0V>;
        case GGML_TYPE_IQ4_NL: return b32_8x8_columns<IQ4_NLV>;
        default: return nullptr;
    }
}
