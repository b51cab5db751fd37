#include "kernels/kernels.h"

#include <ggml-cpu.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

namespace sb::kernels {

bool cpu_has_avx2_fma_f16c() {
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
    return false;
#endif
}

bool cpu_has_avx512_vnni() {
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("bmi2");
#else
    return false;
#endif
}

const Kernel * find_kernel(ggml_type t) {
    const char * env = std::getenv("SPECBOUND_KERNELS");
    if (env && std::strcmp(env, "ggml") == 0) return nullptr;
    // Our x86 kernels mirror ggml's AVX2 vec_dot: only where ggml runs that one.
    if (cpu_has_avx2_fma_f16c() && ggml_cpu_has_avx2() && ggml_cpu_has_fma()) {
        const bool avx512 = cpu_has_avx512_vnni() && !(env && std::strcmp(env, "avx2") == 0);
        const Kernel * k = avx512 ? x86_avx512vnni_kernel(t) : nullptr;
        // the AVX2 build where the AVX-512 one has none for this ggml (F16/BF16
        // of a ggml built without AVX-512 run ggml's AVX2 arithmetic)
        if (!k) k = x86_avx2_kernel(t);
        if (k && ggml_get_type_traits_cpu(t)->vec_dot_type == k->act_type) return k;
    }
    return nullptr;
}

std::vector<uint8_t> quantize_columns(ggml_type act_type, const float * x, int64_t n, int64_t k) {
    const size_t row = ggml_row_size(act_type, k);
    std::vector<uint8_t> q(row * n);
    const ggml_from_float_t from_float = ggml_get_type_traits_cpu(act_type)->from_float;
    for (int64_t c = 0; c < n; ++c) from_float(x + c * k, q.data() + c * row, k);
    return q;
}

// ---- graph ops

static void quantize_compute(ggml_tensor * dst, int ith, int nth, void * userdata) {
    const ggml_tensor * x = dst->src[0];
    const ggml_type act_type = (ggml_type) (intptr_t) userdata;
    const ggml_from_float_t from_float = ggml_get_type_traits_cpu(act_type)->from_float;
    // columns split across threads; each column is quantized whole, as mul_mat's would be
    for (int64_t c = ith; c < x->ne[1]; c += nth)
        from_float((const float *) ((const char *) x->data + c * x->nb[1]), (char *) dst->data + c * dst->nb[1], x->ne[0]);
}

ggml_tensor * quantize_op(ggml_context * ctx, ggml_tensor * x, ggml_type act_type) {
    if (!ggml_is_contiguous_rows(x) || x->type != GGML_TYPE_F32) x = ggml_cont(ctx, ggml_cast(ctx, x, GGML_TYPE_F32));
    const int64_t row_bytes = (int64_t) ggml_row_size(act_type, x->ne[0]);
    ggml_tensor * args[] = { x };
    return ggml_custom_4d(ctx, GGML_TYPE_I8, row_bytes, x->ne[1], 1, 1, args, 1, quantize_compute, GGML_N_TASKS_MAX,
                          (void *) (intptr_t) act_type);
}

static void matmul_compute(ggml_tensor * dst, int ith, int nth, void * userdata) {
    const Kernel * k = (const Kernel *) userdata;
    const ggml_tensor * w = dst->src[0], * xq = dst->src[1];
    const Args a = { (const uint8_t *) w->data, w->nb[1], (const uint8_t *) xq->data, xq->nb[1], w->ne[0], xq->ne[1],
                     (float *) dst->data, (int64_t) (dst->nb[1] / sizeof(float)), ggml_get_type_traits_cpu(k->type)->vec_dot };
    const int64_t m = w->ne[1];
    k->rows(a, m * ith / nth, m * (ith + 1) / nth);  // rows split across threads, never K
}

ggml_tensor * matmul_op(ggml_context * ctx, const Kernel * k, ggml_tensor * w, ggml_tensor * xq) {
    ggml_tensor * args[] = { w, xq };
    return ggml_custom_4d(ctx, GGML_TYPE_F32, w->ne[1], xq->ne[1], 1, 1, args, 2, matmul_compute, GGML_N_TASKS_MAX,
                          (void *) k);
}

// ---- self-check against ggml's vec_dot

// Activation columns that probe rounding: random normals, zeros, ties at
// +-max, a wide dynamic range, one spike.
static std::vector<float> probe_columns(int64_t k, int n) {
    std::mt19937 rng(1234);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x((size_t) k * n);
    for (int c = 0; c < n; ++c) {
        float * col = x.data() + (size_t) c * k;
        for (int64_t i = 0; i < k; ++i) {
            switch (c % 6) {
                case 0: case 1: col[i] = normal(rng); break;
                case 2: col[i] = 0.0f; break;
                case 3: col[i] = (i % 3 == 0) ? 4.0f : (i % 3 == 1 ? -4.0f : 0.5f); break;
                case 4: col[i] = normal(rng) * std::ldexp(1.0f, (int) (i % 40) - 20); break;
                default: col[i] = (i == k / 2) ? 1000.0f : normal(rng) * 1e-3f; break;
            }
        }
    }
    return x;
}

bool self_check(const Kernel & k, const ggml_tensor * w, std::string * why) {
    const ggml_type_traits_cpu * tr = ggml_get_type_traits_cpu(k.type);
    if (w->type != k.type || !w->data || !tr->vec_dot || tr->nrows != 1) {
        if (why) *why = "no vec_dot reference";
        return false;
    }
    ggml_cpu_init();  // ggml's fp16 tables, used by vec_dot (idempotent)
    const int n_max = 16;
    const int64_t kk = w->ne[0], rows = std::min<int64_t>(w->ne[1], 37);  // not a multiple of anything
    const size_t xrow = ggml_row_size(k.act_type, kk);
    std::vector<float> x = probe_columns(kk, n_max);
    const std::vector<uint8_t> xq = quantize_columns(k.act_type, x.data(), n_max, kk);

    std::vector<float> ref((size_t) rows * n_max);
    for (int c = 0; c < n_max; ++c)
        for (int64_t r = 0; r < rows; ++r)
            tr->vec_dot((int) kk, &ref[(size_t) c * rows + r], 0, (const char *) w->data + r * w->nb[1], 0,
                        xq.data() + c * xrow, 0, 1);
    for (int n : { 1, 2, 3, 5, 8, 16 }) {
        std::vector<float> out((size_t) rows * n, NAN);
        k.rows({ (const uint8_t *) w->data, w->nb[1], xq.data(), xrow, kk, n, out.data(), rows, tr->vec_dot }, 0, rows);
        if (std::memcmp(out.data(), ref.data(), out.size() * sizeof(float)) != 0) {
            if (why) *why = std::string(k.name) + " differs from ggml's vec_dot at batch " + std::to_string(n);
            return false;
        }
    }
    return true;
}

} // namespace sb::kernels

namespace sb::kernels {

void KernelTable::decide(const ggml_tensor * w) {
    const ggml_type t = w->type;
    if (!report[t].empty()) return;
    const Kernel * k = find_kernel(t);
    std::string why;
    if (k && self_check(*k, w, &why)) {
        by_type[t] = k;
        report[t] = k->name;
    } else {
        const char * ggml_path = sgemm_may_take(t) ? "ggml vec_dot (pre-quantized input)" : "ggml vec_dot";
        report[t] = std::string(ggml_path) + (k ? " [self-check failed: " + why + "]" : "");
    }
}

void KernelTable::add_repacked(const ggml_tensor * w, const RepackedKernel * k) {
    repacked.push_back({ k, w });
    repacked_index_[w] = &repacked.back();
    // one column: ggml's gemv itself or ours; several: ours with its arithmetic, where this CPU has one
    const std::string ours = std::string(k->columns_for_one ? "; every width: " : "; batches: ") +
                             (k->columns_isa ? k->columns_isa : "") + ", the gemv's arithmetic";
    repacked_report[w->type] = std::string(k->name) + " (repacked, as llama.cpp)" + (k->columns ? ours : "");
}

bool sgemm_may_take(ggml_type t) {
    switch (t) {
        case GGML_TYPE_F32: case GGML_TYPE_F16: case GGML_TYPE_BF16: case GGML_TYPE_Q8_0:
        case GGML_TYPE_Q4_0: case GGML_TYPE_Q5_0: case GGML_TYPE_IQ4_NL:
            return true;
        default:
            return false;
    }
}

} // namespace sb::kernels
