#include "kv/kv_cache.h"
#include "model/tensor_buffer.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace sb {

// What llama.cpp's KV cache can hold: a row type ggml_set_rows can write (a
// CPU quantizer) whose blocks are small enough for a head. The K-quants (256
// per block) are refused by llama.cpp with flash attention and crash it
// without; Q8_1 has no dequantizer for flash attention's V.
static const ggml_type kKvTypes[] = {
    GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16,   GGML_TYPE_Q8_0,  GGML_TYPE_Q4_0, GGML_TYPE_Q4_1,
    GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_IQ4_NL, GGML_TYPE_MXFP4, GGML_TYPE_NVFP4,
};

static std::string type_label(ggml_type t) {
    const bool known = t >= 0 && t < GGML_TYPE_COUNT && ggml_type_name(t);
    return std::to_string((int) t) + (known ? std::string(" (") + ggml_type_name(t) + ")" : std::string());
}

void check_kv_types(ggml_type type_k, ggml_type type_v, bool flash_attn, int head_dim) {
    const std::string supported = "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, mxfp4, nvfp4";
    for (const auto & [what, t] : { std::pair<const char *, ggml_type>{ "type_k", type_k }, { "type_v", type_v } }) {
        if (std::find(std::begin(kKvTypes), std::end(kKvTypes), t) == std::end(kKvTypes))
            throw std::invalid_argument(std::string(what) + " " + type_label(t) +
                                        " is not a KV cache type llama.cpp supports (" + supported + ")");
        if (head_dim % ggml_blck_size(t) != 0)
            throw std::invalid_argument(std::string(what) + " " + type_label(t) + ": its block of " +
                                        std::to_string(ggml_blck_size(t)) + " does not divide head_dim " +
                                        std::to_string(head_dim));
    }
    if (ggml_is_quantized(type_v) && !flash_attn)
        throw std::invalid_argument("type_v " + type_label(type_v) +
                                    ": a quantized V cache requires flash_attn=True (as in llama.cpp)");
}

// llama_kv_cache's attn_rot_k / attn_rot_v: K rotated in the largest power-of-two
// block (from 64) that divides head_dim, V in blocks of 64, each only for a
// quantized type and a head_dim that 64 divides.
static void set_rotations(KvCache & kv, int head_dim) {
    const char * off = getenv("LLAMA_ATTN_ROT_DISABLE");
    if ((off && atoi(off)) || head_dim % 64 != 0) return;
    if (ggml_is_quantized(kv.type_k)) {
        int n = 64;
        while (head_dim % (n * 2) == 0) n *= 2;
        kv.rot_k = n;
    }
    if (ggml_is_quantized(kv.type_v)) kv.rot_v = 64;
}

size_t KvCache::bytes_per_token() const {
    size_t b = 0;
    for (size_t il = 0; il < k.size(); ++il) {
        const int64_t row = v_trans ? v[il]->ne[1] : v[il]->ne[0];
        b += ggml_row_size(k[il]->type, k[il]->ne[0]) + ggml_row_size(v[il]->type, row);
    }
    return b;
}

KvCache::~KvCache() {
    for (auto b : buffers) ggml_backend_buffer_free(b);
    if (ctx) ggml_free(ctx);
}

void init_kv_cache(KvCache & kv, const Model & m, int n_ctx, bool v_trans, ggml_type type_k, ggml_type type_v) {
    const HParams & hp = m.hp;
    check_kv_types(type_k, type_v, !v_trans, hp.head_dim);
    kv.type_k = type_k;
    kv.type_v = type_v;
    set_rotations(kv, hp.head_dim);
    kv.n_ctx = n_ctx;
    kv.n_cells = GGML_PAD(n_ctx, kKvPad);
    kv.v_trans = v_trans;
    ggml_init_params ip = { ggml_tensor_overhead() * (size_t) hp.n_layer * 2 + 1024, nullptr, true };
    kv.ctx = ggml_init(ip);
    const int64_t row = (int64_t) hp.head_dim * hp.n_head_kv;
    for (int il = 0; il < hp.n_layer; ++il) {
        kv.k.push_back(ggml_new_tensor_2d(kv.ctx, type_k, row, kv.n_cells));
        kv.v.push_back(v_trans ? ggml_new_tensor_2d(kv.ctx, type_v, kv.n_cells, row)
                               : ggml_new_tensor_2d(kv.ctx, type_v, row, kv.n_cells));
        ggml_format_name(kv.k.back(), "cache_k_l%d", il);
        ggml_format_name(kv.v.back(), "cache_v_l%d", il);
    }
    // one buffer per device: the CPU's layers, then each offload device's
    for (int dev = -1; dev < (int) m.devices.size(); ++dev) {
        ggml_backend_buffer_type_t buft = dev >= 0 ? ggml_backend_dev_buffer_type(m.devices[(size_t) dev])
                                                   : ggml_backend_cpu_buffer_type();
        std::vector<ggml_tensor *> ts;
        for (int il = 0; il < hp.n_layer; ++il) {
            if ((m.layer_on_gpu(il) ? m.layer_device[(size_t) il] : -1) != dev) continue;
            ts.push_back(kv.k[il]);
            ts.push_back(kv.v[il]);
        }
        if (ts.empty()) continue;
        ggml_backend_buffer_t buf = alloc_tensor_buffer(buft, ts, GGML_BACKEND_BUFFER_USAGE_ANY,
                                                        "cannot allocate the KV cache (n_ctx too large?)");
        kv.buffers.push_back(buf);
        // zero: cells never written must hold finite values (0 * NaN would poison
        // sums); all-zero bytes are 0 in every cache type (quantized blocks: scale 0)
        ggml_backend_buffer_clear(buf, 0);
    }
}

} // namespace sb
