#include "graph/builder.h"

#include <ggml-cpu.h>

#include "kernels/kernels.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace sb {

ggml_tensor * GraphBuilder::rms_norm(ggml_tensor * x, ggml_tensor * w) {
    return ggml_mul(ctx, ggml_rms_norm(ctx, x, m.hp.rms_eps), w);
}

// Batch invariance. ggml's CPU mul_mat computes a batch of n >= 2 columns with
// llamafile's sgemm (or the tiled K-quant path) when the weight type allows it,
// and n == 1 with vec_dot: different summation orders, so a token's logits
// would depend on how many tokens share its batch. In the decode phase:
//
// 0. Weights repacked as llama.cpp repacks them take ggml's own single-token
//    gemv for them, column by column (kernels/repacked.h).
// 1. Where the model's weight type has a kernel of ours that passed its
//    self-check at load (kernels/kernels.h), the matmul is that kernel: each
//    column gets exactly vec_dot's arithmetic, several columns per weight pass.
// 2. Otherwise, for the types sgemm may take (F32, F16, BF16, Q8_0, Q4_0, Q5_0,
//    IQ4_NL), we hand mul_mat an activation already in the weight's vec_dot type
//    and not contiguous: both sgemm entry points are skipped and every output
//    element is one vec_dot of (weight row, activation row), whatever the batch.
// 3. Every other type always takes vec_dot when use_ref is set (the engine
//    requires it), so the plain op is already batch-invariant.
//
// The quantized activation is shared by all weights of the same activation
// type that read it (q/k/v, gate/up).
//
// Weights on a GPU: see device_columns (builder.h) and matmul_by_columns().
ggml_tensor * GraphBuilder::base_matmul(ggml_tensor * w, ggml_tensor * x) {
    // repacked weights are on the CPU, in a buffer that is not "host"
    if (const kernels::RepackedWeight * rw = kernel_table ? kernel_table->repacked_of(w) : nullptr)
        return invariant ? kernels::repacked_matmul_op(ctx, rw, quantized(x, rw->kernel->act_type, true))
                         : ggml_mul_mat(ctx, w, x);
    if (device_path(w->buffer)) return matmul_by_columns(w, x);
    const bool on_cpu = !w->buffer || ggml_backend_buffer_is_host(w->buffer);
    if (!invariant || !on_cpu) return ggml_mul_mat(ctx, w, x);
    if (const kernels::Kernel * k = kernel_table ? kernel_table->get(w->type) : nullptr)
        return kernels::matmul_op(ctx, k, w, quantized(x, k->act_type, true));
    if (!kernels::sgemm_may_take(w->type)) return ggml_mul_mat(ctx, w, x);
    return ggml_mul_mat(ctx, w, quantized(x, ggml_get_type_traits_cpu(w->type)->vec_dot_type, false));
}

bool GraphBuilder::device_path(ggml_backend_buffer_t buf) const {
    if (!invariant || device_columns == 0) return false;
    return device_path_on_cpu || (buf && !ggml_backend_buffer_is_host(buf));
}

// ggml-cuda computes 1-8 columns with mmvq, whose split of the dot product
// changes with the column count, and more with MMQ or cuBLAS: a chunk of
// device_columns columns always takes the kernel a chunk of that size takes.
// Each chunk's product is copied (cont) before anything reads it: ggml-cuda
// fuses a lone matmul with the bias add or GLU after it, which would give a
// single-token pass arithmetic that the chunks of a batch do not get.
ggml_tensor * GraphBuilder::matmul_by_columns(ggml_tensor * w, ggml_tensor * x) {
    const int64_t n = x->ne[1];
    ggml_tensor * out = nullptr;
    for (int64_t c0 = 0; c0 < n; c0 += device_columns) {
        const int64_t nc = std::min<int64_t>(device_columns, n - c0);
        ggml_tensor * xc = ggml_view_2d(ctx, x, x->ne[0], nc, x->nb[1], (size_t) c0 * x->nb[1]);
        ggml_tensor * r = ggml_cont(ctx, ggml_mul_mat(ctx, w, xc));
        out = out ? ggml_concat(ctx, out, r, 1) : r;
    }
    return out;
}

ggml_tensor * GraphBuilder::quantized(ggml_tensor * x, ggml_type type, bool ours) {
    for (const auto & qi : quantized_)
        if (qi.x == x && qi.type == type && qi.ours == ours) return qi.q;
    ggml_tensor * q;
    if (ours) {
        q = kernels::quantize_op(ctx, x, type);
    } else {
        const int64_t k = x->ne[0], n = x->ne[1];
        const int64_t pad = ggml_blck_size(type);
        ggml_tensor * xp = ggml_pad(ctx, x, (int) pad, 0, 0, 0);                   // [k + pad, n]
        ggml_tensor * xq = ggml_cpy(ctx, xp, ggml_new_tensor_2d(ctx, type, k + pad, n));
        q = ggml_view_2d(ctx, xq, k, n, xq->nb[1], 0);                            // row stride > row size
    }
    quantized_.push_back({ x, type, ours, q });
    return q;
}

GraphBuilder::Qkv GraphBuilder::qkv(const Layer & L, ggml_tensor * h, const Segment & s, int il) {
    const HParams & hp = m.hp;
    const int64_t n = h->ne[1];
    ggml_tensor * q = matmul(L.wq, h), * k = matmul(L.wk, h), * v = matmul(L.wv, h);
    if (L.bq) q = ggml_add(ctx, q, L.bq);  // qwen2 always (checked at load), others optional
    if (L.bk) k = ggml_add(ctx, k, L.bk);
    if (L.bv) v = ggml_add(ctx, v, L.bv);
    q = ggml_reshape_3d(ctx, q, hp.head_dim, hp.n_head, n);
    k = ggml_reshape_3d(ctx, k, hp.head_dim, hp.n_head_kv, n);
    v = ggml_reshape_3d(ctx, v, hp.head_dim, hp.n_head_kv, n);
    // per-head norms: bound at load only for the architectures that have them (qwen3, gemma3)
    if (L.attn_q_norm) q = rms_norm(q, L.attn_q_norm);
    q = rope(q, s, il);
    if (L.attn_k_norm) k = rms_norm(k, L.attn_k_norm);
    k = rope(k, s, il);
    return { q, k, v };
}

ggml_tensor * GraphBuilder::rope(ggml_tensor * x, const Segment & s, int il) {
    const HParams & hp = m.hp;
    const bool swa = hp.is_swa(il);
    const RopeParams & r = hp.rope;  // sliding layers keep the file's own base and scale, as in llama.cpp
    return ggml_rope_ext(ctx, x, s.pos, m.rope_freqs, hp.n_rot, hp.rope_mode, r.n_ctx_orig,
                         swa ? hp.rope_freq_base_swa : r.freq_base, swa ? hp.rope_freq_scale_swa : r.freq_scale,
                         r.ext_factor, r.attn_factor, r.beta_fast, r.beta_slow);
}

// x's rows of n values (n a power of two) times the normalized Hadamard matrix
// H_n / sqrt(n), with the arithmetic ggml's CPU backend gives a matmul hinted
// GGML_HINT_SRC0_IS_HADAMARD (llama.cpp's rotation of a quantized KV cache,
// without use_ref): each value scaled by 1/sqrt(n) first, then the butterfly
// passes of span 1, 2, 4, ... (u + v, u - v, each rounded once). ggml itself
// computes a plain matmul instead when use_ref is set (the decode phase here):
// this op keeps the prompt phase's arithmetic, row by row, whatever the batch.
static void hadamard_rows(ggml_tensor * dst, const ggml_tensor * a, int ith, int nth, void * userdata) {
    const int64_t n = (int64_t) (intptr_t) userdata;
    const int64_t rows = ggml_nelements(a) / n;
    const float scale = 1.0f / sqrtf((float) n);
    for (int64_t r = ith; r < rows; r += nth) {
        const float * x = (const float *) a->data + r * n;
        float * y = (float *) dst->data + r * n;
        for (int64_t j = 0; j < n; ++j) y[j] = x[j] * scale;
        for (int64_t span = 1; span < n; span <<= 1)
            for (int64_t i = 0; i < n; i += 2 * span)
                for (int64_t j = i; j < i + span; ++j) {
                    const float u = y[j], w = y[j + span];
                    y[j] = u + w;
                    y[j + span] = u - w;
                }
    }
}

ggml_tensor * GraphBuilder::hadamard(ggml_tensor * x, int n) {
    ggml_tensor * c = ggml_is_contiguous(x) ? x : ggml_cont(ctx, x);
    ggml_tensor * r = ggml_map_custom1(ctx, c, hadamard_rows, GGML_N_TASKS_MAX, (void *) (intptr_t) n);
    return ggml_reshape(ctx, r, x);
}

ggml_tensor * GraphBuilder::attention(int il, ggml_tensor * q, ggml_tensor * k, ggml_tensor * v, const Segment & s,
                                      float kq_scale) {
    if (kv.rot_k) {  // quantized K: the cache holds rotated keys, queries rotate alike (q.k unchanged)
        q = hadamard(q, kv.rot_k);
        k = hadamard(k, kv.rot_k);
    }
    if (kv.rot_v) return hadamard(attention_rotated(il, q, k, hadamard(v, kv.rot_v), s, kq_scale), kv.rot_v);
    return attention_rotated(il, q, k, v, s, kq_scale);
}

ggml_tensor * GraphBuilder::attention_rotated(int il, ggml_tensor * q, ggml_tensor * k, ggml_tensor * v,
                                              const Segment & s, float kq_scale) {
    const HParams & hp = m.hp;
    const int64_t m_rows = q->ne[2];
    const int64_t row = (int64_t) hp.head_dim * hp.n_head_kv;
    ggml_tensor * kc = kv.k[il], * vc = kv.v[il];
    // write this batch's keys/values first; attention below reads them back
    ggml_build_forward_expand(gf, ggml_set_rows(ctx, kc, ggml_reshape_2d(ctx, k, row, m_rows), s.kv_idx));
    if (kv.v_trans)  // one element a row: each value to its channel's cell
        ggml_build_forward_expand(gf, ggml_set_rows(ctx, ggml_reshape_2d(ctx, vc, 1, ggml_nelements(vc)),
                                                    ggml_reshape_2d(ctx, v, 1, row * m_rows), s.v_idx));
    else
        ggml_build_forward_expand(gf, ggml_set_rows(ctx, vc, ggml_reshape_2d(ctx, v, row, m_rows), s.kv_idx));
    ggml_tensor * qp = ggml_permute(ctx, q, 0, 2, 1, 3);  // [head_dim, m, n_head]
    if (kq_scale == 0.0f) kq_scale = 1.0f / sqrtf((float) hp.head_dim);
    ggml_tensor * mask = hp.is_swa(il) ? s.mask_swa : s.mask;
    // With use_ref set on the CPU backend (decode phase) ggml's flash attention
    // computes each query row on its own and skips masked cells; the unfused
    // path gets the same property from rows_apart (attend_unfused): the result
    // does not depend on the batch or on how many cells are padded in.
    if (!device_path(kc->buffer)) {
        const bool one_query_each = !flash_attn && invariant;
        if (one_query_each) qp = rows_apart(qp, ggml_get_type_traits_cpu(kc->type)->vec_dot_type);
        return attend(il, qp, s.n_kv, mask, kq_scale, one_query_each);
    }
    // On a GPU the kernel and its split over the cells depend on the number of
    // queries and cells: each query alone, over the cells it would attend alone.
    ggml_tensor * out = nullptr;
    for (int64_t j = 0; j < m_rows; ++j) {
        const int n_kv = s.n_kv_row[j];
        ggml_tensor * qj = ggml_view_3d(ctx, qp, hp.head_dim, 1, hp.n_head, qp->nb[1], qp->nb[2], (size_t) j * qp->nb[1]);
        ggml_tensor * mj = ggml_view_2d(ctx, mask, n_kv, 1, mask->nb[1], (size_t) j * mask->nb[1]);
        ggml_tensor * oj = attend(il, qj, n_kv, mj, kq_scale, false);
        out = out ? ggml_concat(ctx, out, oj, 1) : oj;
    }
    return out;
}

ggml_tensor * GraphBuilder::attend(int il, ggml_tensor * q, int n_kv, ggml_tensor * mask, float kq_scale,
                                   bool one_query_each) {
    if (!flash_attn) return attend_unfused(il, q, n_kv, mask, kq_scale, one_query_each);
    if (kv.v_trans) throw std::logic_error("flash attention needs the values untransposed");
    const HParams & hp = m.hp;
    ggml_tensor * kc = kv.k[il], * vc = kv.v[il];
    const size_t head_nb = ggml_row_size(kc->type, hp.head_dim);
    ggml_tensor * kview = ggml_view_3d(ctx, kc, hp.head_dim, n_kv, hp.n_head_kv, kc->nb[1], head_nb, 0);
    ggml_tensor * vview = ggml_view_3d(ctx, vc, hp.head_dim, n_kv, hp.n_head_kv, vc->nb[1],
                                       ggml_row_size(vc->type, hp.head_dim), 0);
    // llama.cpp's build_attn_mha hands the flash-attention op an F16 copy of an
    // F32 cache (type_k / type_v = f32), so the dot products round as F16 ones
    if (kview->type == GGML_TYPE_F32) kview = ggml_cast(ctx, kview, GGML_TYPE_F16);
    if (vview->type == GGML_TYPE_F32) vview = ggml_cast(ctx, vview, GGML_TYPE_F16);
    ggml_tensor * out = ggml_flash_attn_ext(ctx, q, kview, vview, mask, kq_scale, 0.0f, 0.0f);
    ggml_prec_set_acc(out, GGML_PREC_F32);
    return ggml_reshape_2d(ctx, out, (int64_t) hp.head_dim * hp.n_head, q->ne[1]);
}

// llama.cpp's attention with flash_attn off, which llama-cpp-python runs by
// default: kq = k.q (dot products in the K cache type's vec_dot type: F16 for
// F16, Q8_0 or Q8_1 for a quantized K), softmax(kq * scale + mask), then v.kq.
// A single query (llama.cpp decoding one token) gets ggml's vec_dot for every
// dot product. With one_query_each (decode phase) q and the probabilities go in
// already converted to that vec_dot type, as copies whose rows are not
// contiguous: mul_mat then converts nothing and skips llamafile's sgemm (another
// summation order, taken for 2 or more columns), so every column gets a single
// query's arithmetic. Cells past a query's own are masked: their probabilities
// are exactly 0 and add nothing, so the padding to n_kv (a multiple of 256, as
// llama.cpp's) does not move a bit either.
ggml_tensor * GraphBuilder::attend_unfused(int il, ggml_tensor * q, int n_kv, ggml_tensor * mask, float kq_scale,
                                           bool one_query_each) {
    const HParams & hp = m.hp;
    ggml_tensor * kc = kv.k[il], * vc = kv.v[il];
    const size_t head_nb = ggml_row_size(kc->type, hp.head_dim);
    ggml_tensor * kview = ggml_view_3d(ctx, kc, hp.head_dim, n_kv, hp.n_head_kv, kc->nb[1], head_nb, 0);
    ggml_tensor * kq = ggml_mul_mat(ctx, kview, q);  // [n_kv, m, n_head]
    ggml_prec_set_acc(kq, GGML_PREC_F32);
    kq = ggml_soft_max_ext(ctx, kq, mask, kq_scale, 0.0f);
    // [n_kv, head_dim, n_head_kv]: in place where the cache keeps values transposed
    ggml_tensor * vt = kv.v_trans
        ? ggml_view_3d(ctx, vc, n_kv, hp.head_dim, hp.n_head_kv, vc->nb[1], vc->nb[1] * hp.head_dim, 0)
        : ggml_cont(ctx, ggml_transpose(ctx, ggml_view_3d(ctx, vc, hp.head_dim, n_kv, hp.n_head_kv, vc->nb[1],
                                                          ggml_row_size(vc->type, hp.head_dim), 0)));
    if (one_query_each) kq = rows_apart(kq, ggml_get_type_traits_cpu(vc->type)->vec_dot_type);
    ggml_tensor * kqv = ggml_mul_mat(ctx, vt, kq);  // [head_dim, m, n_head]
    ggml_tensor * out = ggml_permute(ctx, kqv, 0, 2, 1, 3);
    return ggml_cont_2d(ctx, out, (int64_t) hp.head_dim * hp.n_head, q->ne[1]);
}

// A copy of x [a, b, c] in `type` (F16, BF16, F32, or the Q8 type a quantized
// cache's vec_dot takes), laid out as [a, c, b] and viewed back as [a, b, c]:
// its rows are not contiguous, so ggml's mul_mat takes it as already in its
// vec_dot type and runs vec_dot per output element, never llamafile's sgemm.
// The copy converts each row with that type's own CPU from_float, the function
// mul_mat itself would convert a single query with, so the bits are the same.
ggml_tensor * GraphBuilder::rows_apart(ggml_tensor * x, ggml_type type) {
    ggml_tensor * swapped = ggml_new_tensor_3d(ctx, type, x->ne[0], x->ne[2], x->ne[1]);
    ggml_tensor * h = ggml_cpy(ctx, ggml_permute(ctx, x, 0, 2, 1, 3), swapped);
    return ggml_permute(ctx, h, 0, 2, 1, 3);
}

ggml_tensor * GraphBuilder::ffn_swiglu(const Layer & L, ggml_tensor * x) {
    ggml_tensor * g = matmul(L.ffn_gate, x);
    ggml_tensor * u = matmul(L.ffn_up, x);
    return matmul(L.ffn_down, ggml_mul(ctx, ggml_silu(ctx, g), u));
}

// The fused op, as llama.cpp computes it: ggml's separate gelu may go through
// an F16 lookup table, which would round differently.
ggml_tensor * GraphBuilder::ffn_geglu(const Layer & L, ggml_tensor * x) {
    ggml_tensor * g = matmul(L.ffn_gate, x);
    ggml_tensor * u = matmul(L.ffn_up, x);
    return matmul(L.ffn_down, ggml_geglu_split(ctx, g, u));
}

} // namespace sb
