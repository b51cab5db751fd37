#include "kernels/repacked.h"

#include "kernels/kernels.h"

#include <ggml-cpu.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#endif

namespace sb::kernels {

static GemvFn lookup_gemv(const char * name) {
#if defined(__unix__) || defined(__APPLE__)
    return (GemvFn) dlsym(RTLD_DEFAULT, name);  // exported by libggml-cpu, which we link
#else
    (void) name;
    return nullptr;
#endif
}

// ggml's choice of repack type on x86 (ggml-cpu/repack.cpp): the 8x8 layouts
// with AVX2, Q2_K's with AVX-512 only
static bool x86_repacks(ggml_type t) {
#if defined(__x86_64__) || defined(_M_X64)
    switch (t) {
        case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_K: case GGML_TYPE_IQ4_NL: case GGML_TYPE_MXFP4:
            return ggml_cpu_has_avx2();
        case GGML_TYPE_Q2_K:
            return ggml_cpu_has_avx512();
        default:
            return false;
    }
#else
    (void) t;
    return false;
#endif
}

const RepackedKernel * find_repacked(ggml_type t) {
    const char * env = std::getenv("SPECBOUND_REPACK");
    if (env && std::strcmp(env, "0") == 0) return nullptr;
    // one table per SPECBOUND_KERNELS setting, read at each load: "ggml"
    // (ggml's gemv per column), "avx2" (our AVX2 build), unset (our best build)
    static RepackedKernel table[3][5] = {};
    static const bool filled = [] {
        // a single column of Q4_0 / IQ4_NL through ours: it beat ggml's gemv on a
        // 7B Q4_0; Q4_K's stays with the gemv (ours was slower on the 1.5B)
        const RepackedKernel base[5] = {
            { "ggml_gemv_q4_0_8x8_q8_0", GGML_TYPE_Q4_0, GGML_TYPE_Q8_0, 8, nullptr, nullptr, nullptr, true },
            { "ggml_gemv_q4_K_8x8_q8_K", GGML_TYPE_Q4_K, GGML_TYPE_Q8_K, 8, nullptr, nullptr },
            { "ggml_gemv_iq4_nl_8x8_q8_0", GGML_TYPE_IQ4_NL, GGML_TYPE_Q8_0, 8, nullptr, nullptr, nullptr, true },
            { "ggml_gemv_mxfp4_8x8_q8_0", GGML_TYPE_MXFP4, GGML_TYPE_Q8_0, 8, nullptr, nullptr },
            { "ggml_gemv_q2_K_8x8_q8_K", GGML_TYPE_Q2_K, GGML_TYPE_Q8_K, 8, nullptr, nullptr },
        };
        const bool avx512 = cpu_has_avx512_vnni(), avx2 = cpu_has_avx2_fma_f16c();
        for (int i = 0; i < 5; ++i) {
            for (auto & by_setting : table) {
                by_setting[i] = base[i];
                by_setting[i].gemv = lookup_gemv(base[i].name);
                by_setting[i].columns_for_one = false;
            }
            if (avx2) {
                table[1][i].columns = x86_avx2_repacked_columns(base[i].type), table[1][i].columns_isa = "sb_avx2";
                // every type the AVX2 build has a kernel for takes a single column
                // too: Q4_K straight from the packed block, 1.3x ggml's AVX2 gemv;
                // Q4_0 1.2x; IQ4_NL about even (docs/bench/avx2-q4k-2026-12-07)
                table[1][i].columns_for_one = table[1][i].columns != nullptr;
            }
            table[2][i] = table[1][i];
            // with AVX-512, one column of Q4_0 / IQ4_NL through ours (Q4_K: the gemv)
            if (avx512) {
                table[2][i].columns = x86_avx512vnni_repacked_columns(base[i].type);
                table[2][i].columns_isa = "sb_avx512vnni";
                table[2][i].columns_for_one = base[i].columns_for_one;
            }
        }
        return true;
    }();
    (void) filled;
    if (!x86_repacks(t)) return nullptr;
    const char * kern = std::getenv("SPECBOUND_KERNELS");
    const int setting = !kern || !*kern ? 2 : std::strcmp(kern, "avx2") == 0 ? 1 : 0;
    for (RepackedKernel & k : table[setting])
        if (k.type == t) return k.gemv ? &k : nullptr;
    return nullptr;
}

// Rows split across threads in whole groups; within a thread, blocks of rows
// of about 32 KiB, each passed over by every column before the next block.
static void repacked_compute(ggml_tensor * dst, int ith, int nth, void * userdata) {
    const RepackedWeight & rw = *(const RepackedWeight *) userdata;
    const ggml_tensor * w = rw.w, * xq = dst->src[0];
    const int64_t il = rw.kernel->interleave, groups = w->ne[1] / il, n = xq->ne[1];
    const int64_t r0 = groups * ith / nth * il, r1 = groups * (ith + 1) / nth * il;
    const size_t row_bytes = w->nb[1];
    if (rw.kernel->columns && (n > 1 || rw.kernel->columns_for_one)) {  // ours: the gemv's arithmetic, several columns per pass
        rw.kernel->columns(w->data, row_bytes, w->ne[0], xq->data, xq->nb[1], n, (float *) dst->data,
                           dst->nb[1] / sizeof(float), r0, r1);
        return;
    }
    const int64_t block = n == 1 ? r1 - r0 : std::max<int64_t>(il, (int64_t) (32768 / row_bytes) / il * il);
    for (int64_t b0 = r0; b0 < r1; b0 += block) {
        const int nc = (int) std::min<int64_t>(block, r1 - b0);
        const char * wb = (const char *) w->data + b0 * row_bytes;
        for (int64_t c = 0; c < n; ++c) {
            float * out = (float *) ((char *) dst->data + c * dst->nb[1]) + b0;
            rw.kernel->gemv((int) w->ne[0], out, 0, wb, (const char *) xq->data + c * xq->nb[1], 1, nc);
        }
    }
}

ggml_tensor * repacked_matmul_op(ggml_context * ctx, const RepackedWeight * rw, ggml_tensor * xq) {
    ggml_tensor * args[] = { xq };
    return ggml_custom_4d(ctx, GGML_TYPE_F32, rw->w->ne[1], xq->ne[1], 1, 1, args, 1, repacked_compute,
                          GGML_N_TASKS_MAX, (void *) rw);
}

} // namespace sb::kernels
