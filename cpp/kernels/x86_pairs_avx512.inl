// The 32-value block types (Q8_0, Q5_0, Q4_0 and Q4_1, Q5_1 in their plain
// layout) with two activation columns per 512-bit register (included by
// x86_kernels.inl in its AVX-512 VNNI build, after rows() and tiled_rows()):
// the same integers and float operations per column as SignedTimesQ8_0 and
// UnsignedTimesQ8_1, that is as ggml's vec_dot for one token, with half the
// instructions per column and, for the signed types, a third of the loads.
//
// ggml's bits are fixed per 32-value block by 8 int32 lanes (lane l: the
// 4-product dot of bytes 4l..4l+3), their conversion to float, the product
// d_w * d_x rounded to float, one FMA into the column's 8 float lanes, and one
// horizontal sum at the end. Here:
//   - the activations are prepared once per call as x + 128 (unsigned bytes)
//     and the weights stay signed, so dpbusd gives sum(x w) + 128 sum(w); the
//     -128 sum(w) that cancels it is one per weight block and lane, shared by
//     every column (SignedTimesQ8_0 keeps one per activation block instead,
//     which costs a load per column and block);
//   - columns 2p and 2p + 1 are one pair: their dwords interleaved (lane 2l
//     is column 2p's lane l, lane 2l + 1 column 2p + 1's), the weight dwords
//     doubled to match, the two d_x side by side so that one 64-bit broadcast
//     gives each lane its column's scale;
//   - the horizontal sum takes a column's 8 lanes back in order: hsum8.
// On the 2-core Zen 5 EPYC of docs/bench/pairs-2026-12-07, 16 columns of a
// Q5_0 matrix, one thread, all in L1/L2: 0.38 ns per row, column and block,
// against 0.74 for SignedTimesQ8_0.

// one pair's prepared activations: nb blocks of 64 interleaved bytes, then nb
// pairs of scales (separate arrays, so every 64-byte load is aligned)
struct PairPrep {
    __m512i * x;
    double * d;  // (d_x of column 2p, d_x of column 2p + 1) as 8 bytes
    double * s;  // the same for Q8_1's s = d_x * sum(x) (the Q8_1 types only)
};

// the 32 bytes of columns 2p and 2p + 1, dword l of each at 2l and 2l + 1
inline __m512i interleave_pair(const int8_t * q0, const int8_t * q1) {
    const __m512i idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutex2var_epi32(_mm512_castsi256_si512(load256(q0)), idx, _mm512_castsi256_si512(load256(q1)));
}
inline double half_pair(half a, half b) {
    const float f[2] = { fp16(a), fp16(b) };
    double d;
    std::memcpy(&d, f, sizeof d);
    return d;
}
// both values of a pair in every lane pair: lane 2l the first, 2l + 1 the second
inline __m512 pair_broadcast(double d) { return _mm512_castpd_ps(_mm512_set1_pd(d)); }

// a pair's two sums, each ggml's hsum8 of its column's lanes in order
inline void hsum8_pair(__m512 acc, float * first, float * second) {
    const __m512i split = _mm512_set_epi32(15, 13, 11, 9, 7, 5, 3, 1, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512 v = _mm512_permutexvar_ps(split, acc);
    *first = hsum8(_mm512_castps512_ps256(v));
    *second = hsum8(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));  // (AVX-512 F, not DQ)
}

// A weight block's 32 signed values in the pairs' layout: dword l (values
// 4l..4l+3) at dwords 2l and 2l + 1, one copy for each column of a pair.
inline __m512i twice_dwords(__m256i q) {
    const __m512i idx = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    return _mm512_permutexvar_epi32(idx, _mm512_castsi256_si512(q));
}
// The 16 bytes of 4-bit values, each dword twice and unpacked in place:
// values 4l..4l+3 are the low nibbles of bytes 4l..4l+3 for l < 4, the high
// nibbles of bytes 4(l - 4).. for l >= 4 (ggml's order), so dwords 0-7 take
// byte dwords 0-3 as they are and dwords 8-15 the same shifted right by 4;
// the mask drops what the shift brought in from the next byte
inline __m512i nibbles_twice(const uint8_t * qs) {
    const __m512i idx = _mm512_set_epi32(3, 3, 2, 2, 1, 1, 0, 0, 3, 3, 2, 2, 1, 1, 0, 0);
    const __m512i shift = _mm512_set_epi32(4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i v = _mm512_permutexvar_epi32(idx, _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *) qs)));
    return _mm512_and_si512(_mm512_srlv_epi32(v, shift), _mm512_set1_epi8(0x0F));
}
inline __m512i q8_0_weights_twice(const BlockQ8_0 & b) { return twice_dwords(load256(b.qs)); }
inline __m512i q4_0_weights_twice(const BlockQ4_0 & b) { return _mm512_sub_epi8(nibbles_twice(b.qs), _mm512_set1_epi8(8)); }
// The fifth bits of a Q5_0 / Q5_1 block (bit v of qh for value v) as a byte
// mask over the pairs' layout: byte B holds value 4 (B >> 3) + (B & 3), so
// pdep spreads qh's nibbles to the low halves of the mask's bytes, and the
// shift copies them to the high halves.
inline __mmask64 fifth_bits_twice(const uint8_t * qh_bytes) {
    uint32_t qh;
    std::memcpy(&qh, qh_bytes, 4);
    const uint64_t bit = _pdep_u64(qh, 0x0F0F0F0F0F0F0F0FULL);
    return (__mmask64) (bit | bit << 4);
}
// Q5_0: q - 16 = the nibble, less 16 where the fifth bit is clear
inline __m512i q5_0_weights_twice(const BlockQ5_0 & b) {
    const __m512i nib = nibbles_twice(b.qs);
    return _mm512_mask_sub_epi8(nib, (__mmask64) ~fifth_bits_twice(b.qh), nib, _mm512_set1_epi8(16));
}

template <class WB, __m256i (*Weights)(const WB &), __m512i (*WeightsTwice)(const WB &)>
struct SignedTimesQ8_0Pairs {
    using WBlock = WB;
    using XBlock = BlockQ8_0;
    using Single = SignedTimesQ8_0<WB, Weights>;  // one column: its two streams
    static constexpr size_t kPairBytes = sizeof(__m512i) + sizeof(double);  // per block and pair

    using State = __m512;
    static State zero() { return _mm512_setzero_ps(); }

    // columns c0 and c1 (the same column where a batch is odd), x + 128
    static void prepare(const uint8_t * c0, const uint8_t * c1, int64_t nb, const PairPrep & out) {
        const BlockQ8_0 * x0 = (const BlockQ8_0 *) c0, * x1 = (const BlockQ8_0 *) c1;
        for (int64_t i = 0; i < nb; ++i) {
            _mm512_store_si512(out.x + i, _mm512_xor_si512(interleave_pair(x0[i].qs, x1[i].qs), _mm512_set1_epi8((char) 0x80)));
            out.d[i] = half_pair(x0[i].d, x1[i].d);
        }
    }

    struct Unpacked {
        __m512i w;     // the block's dwords, each twice (one per column of a pair)
        __m512i corr;  // -128 * (sum of the 4 weights) per lane
        __m512 dw;
    };
    static void unpack(const WB & b, Unpacked & u) {
        u.w = WeightsTwice(b);
        const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char) 0x80), u.w);
        u.corr = _mm512_sub_epi32(_mm512_setzero_si512(), sums);
        u.dw = _mm512_set1_ps(fp16(b.d));
    }

    // blocks [b0, b1) of one weight row into NP pairs' accumulators
    template <int NP>
    static void run(const uint8_t * wp, const PairPrep * pp, int64_t b0, int64_t b1, State * acc) {
        const WB * w = (const WB *) wp;
        __m512 a[NP];
        for (int p = 0; p < NP; ++p) a[p] = acc[p];
        Unpacked u;
        for (int64_t i = b0; i < b1; ++i) {
            unpack(w[i], u);
            for (int p = 0; p < NP; ++p) {
                const __m512 q = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(u.corr, pp[p].x[i], u.w));
                a[p] = _mm512_fmadd_ps(_mm512_mul_ps(u.dw, pair_broadcast(pp[p].d[i])), q, a[p]);
            }
        }
        for (int p = 0; p < NP; ++p) acc[p] = a[p];
    }

    static void finish(const State & acc, float * first, float * second) { hsum8_pair(acc, first, second); }
};
using Q8_0Pairs = SignedTimesQ8_0Pairs<BlockQ8_0, q8_0_weights, q8_0_weights_twice>;
using Q5_0Pairs = SignedTimesQ8_0Pairs<BlockQ5_0, q5_0_weights, q5_0_weights_twice>;
using Q4_0Pairs = SignedTimesQ8_0Pairs<BlockQ4_0, q4_0_weights, q4_0_weights_twice>;

// Q4_1 and Q5_1 (UnsignedTimesQ8_1): unsigned weights times signed x need no
// correction; ggml adds m_w * s_x per block into one scalar (one FMA), here
// lanes 0 and 1 of a 128-bit register for the pair's two columns.
inline __m512i q4_1_weights_twice(const BlockQ4_1 & b) { return nibbles_twice(b.qs); }
inline __m512i q5_1_weights_twice(const BlockQ5_1 & b) {  // the fifth bit as 16
    const __m512i nib = nibbles_twice(b.qs);
    return _mm512_mask_add_epi8(nib, fifth_bits_twice(b.qh), nib, _mm512_set1_epi8(16));
}

template <class WB, __m256i (*Weights)(const WB &), __m512i (*WeightsTwice)(const WB &)>
struct UnsignedTimesQ8_1Pairs {
    using WBlock = WB;
    using XBlock = BlockQ8_1;
    using Single = UnsignedTimesQ8_1<WB, Weights>;
    static constexpr size_t kPairBytes = sizeof(__m512i) + 2 * sizeof(double);
    struct State {
        __m512 acc;
        __m128 summs;  // lane 0: column 2p's, lane 1: column 2p + 1's
    };
    static State zero() { return { _mm512_setzero_ps(), _mm_setzero_ps() }; }

    static void prepare(const uint8_t * c0, const uint8_t * c1, int64_t nb, const PairPrep & out) {
        const BlockQ8_1 * x0 = (const BlockQ8_1 *) c0, * x1 = (const BlockQ8_1 *) c1;
        for (int64_t i = 0; i < nb; ++i) {
            _mm512_store_si512(out.x + i, interleave_pair(x0[i].qs, x1[i].qs));
            out.d[i] = half_pair(x0[i].d, x1[i].d);
            out.s[i] = half_pair(x0[i].s, x1[i].s);
        }
    }

    template <int NP>
    static void run(const uint8_t * wp, const PairPrep * pp, int64_t b0, int64_t b1, State * st) {
        const WB * w = (const WB *) wp;
        __m512 a[NP];
        __m128 m[NP];
        for (int p = 0; p < NP; ++p) a[p] = st[p].acc, m[p] = st[p].summs;
        for (int64_t i = b0; i < b1; ++i) {
            const __m512i q = WeightsTwice(w[i]);
            const __m128 dm_w = fp16_pair(&w[i].d);  // d_w, m_w
            const __m512 d_w = _mm512_broadcastss_ps(dm_w);
            const __m128 m_w = _mm_permute_ps(dm_w, 0x55);
            for (int p = 0; p < NP; ++p) {
                m[p] = _mm_fmadd_ps(m_w, _mm_castpd_ps(_mm_load_sd(pp[p].s + i)), m[p]);
                const __m512 dot = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q, pp[p].x[i]));
                a[p] = _mm512_fmadd_ps(_mm512_mul_ps(d_w, pair_broadcast(pp[p].d[i])), dot, a[p]);
            }
        }
        for (int p = 0; p < NP; ++p) st[p] = { a[p], m[p] };
    }

    static void finish(const State & st, float * first, float * second) {
        hsum8_pair(st.acc, first, second);
        *first += _mm_cvtss_f32(st.summs);
        *second += _mm_cvtss_f32(_mm_movehdup_ps(st.summs));
    }
};
using Q4_1Pairs = UnsignedTimesQ8_1Pairs<BlockQ4_1, q4_1_weights, q4_1_weights_twice>;
using Q5_1Pairs = UnsignedTimesQ8_1Pairs<BlockQ5_1, q5_1_weights, q5_1_weights_twice>;

// Every pair's prepared activations, once per call and thread, in
// thread-local scratch; pp[p] points into it
template <class T>
void prepare_pairs(const Args & a, int64_t nb, ScratchVector<PairPrep> & pp) {
    thread_local ScratchVector<__m512i> scratch;
    const int64_t np = (a.n + 1) / 2;
    const size_t d_vectors = ((size_t) nb * sizeof(double) + sizeof(__m512i) - 1) / sizeof(__m512i);
    const size_t per_pair = (size_t) nb + 2 * d_vectors;  // in 64-byte vectors: x, d, s
    if (scratch.size() < per_pair * np) scratch.resize(per_pair * np);
    pp.resize(np);
    for (int64_t p = 0; p < np; ++p) {
        __m512i * x = scratch.data() + p * per_pair;
        pp[p] = { x, (double *) (x + nb), (double *) (x + nb + d_vectors) };
        const int64_t c0 = 2 * p, c1 = std::min(a.n - 1, c0 + 1);
        T::prepare(a.x + c0 * a.x_col, a.x + c1 * a.x_col, nb, pp[p]);
    }
}

template <class T>
void run_pairs(int np, const uint8_t * wr, const PairPrep * pp, int64_t b0, int64_t b1, typename T::State * acc) {
    switch (np) {
        case 1: T::template run<1>(wr, pp, b0, b1, acc); break;
        case 2: T::template run<2>(wr, pp, b0, b1, acc); break;
        case 3: T::template run<3>(wr, pp, b0, b1, acc); break;
        case 4: T::template run<4>(wr, pp, b0, b1, acc); break;
        case 5: T::template run<5>(wr, pp, b0, b1, acc); break;
        case 6: T::template run<6>(wr, pp, b0, b1, acc); break;
        case 7: T::template run<7>(wr, pp, b0, b1, acc); break;
        case 8: T::template run<8>(wr, pp, b0, b1, acc); break;
    }
}

// Rows [r0, r1), all columns as pairs, kPassPairs pairs (16 columns) per pass:
// tiled_rows' order (a group of rows, every pass over it, k in tiles whose
// activations stay in L1), each accumulator taking its row's blocks in order.
// One column alone goes to the 256-bit kernel's two streams: reading the
// weights is what it waits on.
template <class T>
void paired_rows(const Args & a, int64_t r0, int64_t r1) {
    if (a.n == 1) return rows<typename T::Single>(a, r0, r1);
    constexpr int kTileRows = 8, kPassPairs = 8;
    constexpr size_t kTileBytes = 16 << 10;
    const int64_t nb = a.k / kQK, np = (a.n + 1) / 2;
    thread_local ScratchVector<PairPrep> pp;
    prepare_pairs<T>(a, nb, pp);
    typename T::State acc[kTileRows][kPassPairs];
    for (int64_t g = r0; g < r1; g += kTileRows) {
        const int rows_here = (int) std::min<int64_t>(kTileRows, r1 - g);
        for (int64_t p0 = 0; p0 < np; p0 += kPassPairs) {
            const int npp = (int) std::min<int64_t>(kPassPairs, np - p0);
            const int64_t tile = std::max<int64_t>(1, (int64_t) (kTileBytes / (T::kPairBytes * npp)));
            for (int i = 0; i < rows_here; ++i)
                for (int p = 0; p < npp; ++p) acc[i][p] = T::zero();
            for (int64_t b0 = 0; b0 < nb; b0 += tile)
                for (int i = 0; i < rows_here; ++i)
                    run_pairs<T>(npp, a.w + (g + i) * a.w_row, pp.data() + p0, b0, std::min(nb, b0 + tile), acc[i]);
            for (int i = 0; i < rows_here; ++i)
                for (int p = 0; p < npp; ++p) {
                    const int64_t c = 2 * (p0 + p);
                    float first, second;
                    T::finish(acc[i][p], &first, &second);
                    a.dst[c * a.dst_col + g + i] = first;
                    if (c + 1 < a.n) a.dst[(c + 1) * a.dst_col + g + i] = second;
                }
        }
    }
}
