#include "model/gguf_meta.h"

#include <stdexcept>

namespace sb {

std::string arch_key(const HParams & hp, const char * suffix) { return hp.arch_name + "." + suffix; }

int64_t find_key(gguf_context * g, const std::string & key) { return gguf_find_key(g, key.c_str()); }

uint32_t get_u32(gguf_context * g, const std::string & key, bool required, uint32_t def) {
    int64_t id = find_key(g, key);
    if (id < 0) {
        if (required) throw std::invalid_argument("GGUF metadata is missing required key '" + key + "'");
        return def;
    }
    switch (gguf_get_kv_type(g, id)) {
        case GGUF_TYPE_UINT32: return gguf_get_val_u32(g, id);
        case GGUF_TYPE_INT32:  return (uint32_t) gguf_get_val_i32(g, id);
        case GGUF_TYPE_UINT64: return (uint32_t) gguf_get_val_u64(g, id);
        case GGUF_TYPE_ARRAY:  // per-layer arrays (e.g. head counts): take the first entry
            if (gguf_get_arr_type(g, id) == GGUF_TYPE_INT32 || gguf_get_arr_type(g, id) == GGUF_TYPE_UINT32)
                return ((const uint32_t *) gguf_get_arr_data(g, id))[0];
            break;
        default: break;
    }
    throw std::invalid_argument("GGUF metadata key '" + key + "' has an unexpected type");
}

float get_f32(gguf_context * g, const std::string & key, float def) {
    int64_t id = find_key(g, key);
    if (id < 0) return def;
    if (gguf_get_kv_type(g, id) != GGUF_TYPE_FLOAT32) throw std::invalid_argument("GGUF key '" + key + "' is not a float");
    return gguf_get_val_f32(g, id);
}

} // namespace sb
