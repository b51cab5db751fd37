#include "kv/kv_cache.h"
#include "model/tensor_buffer.h"

#include <stdexcept>

namespace sb {

KvCache::~KvCache() {
    for (auto b : buffers) ggml_backend_buffer_free(b);
    if (ctx) ggml_free(ctx);
}

void init_kv_cache(KvCache & kv, const Model & m, int n_ctx, bool v_trans) {
    const HParams & hp = m.hp;
    kv.n_ctx = n_ctx;
    kv.n_cells = GGML_PAD(n_ctx, kKvPad);
    kv.v_trans = v_trans;
    ggml_init_params ip = { ggml_tensor_overhead() * (size_t) hp.n_layer * 2 + 1024, nullptr, true };
    kv.ctx = ggml_init(ip);
    const int64_t row = (int64_t) hp.head_dim * hp.n_head_kv;
    for (int il = 0; il < hp.n_layer; ++il) {
        kv.k.push_back(ggml_new_tensor_2d(kv.ctx, GGML_TYPE_F16, row, kv.n_cells));
        kv.v.push_back(v_trans ? ggml_new_tensor_2d(kv.ctx, GGML_TYPE_F16, kv.n_cells, row)
                               : ggml_new_tensor_2d(kv.ctx, GGML_TYPE_F16, row, kv.n_cells));
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
        // zero: cells never written must hold finite values (0 * NaN would poison sums)
        ggml_backend_buffer_clear(buf, 0);
    }
}

} // namespace sb
