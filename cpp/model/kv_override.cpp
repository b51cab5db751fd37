#include "model/kv_override.h"

#include <llama.h>

#include <cstring>
#include <stdexcept>

namespace sb {

// the override's kind as a GGUF value type class: which file types it may replace
static bool same_kind(KvOverride::Tag tag, gguf_type t) {
    switch (t) {
        case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16:
        case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64:
            return tag == KvOverride::Int;
        case GGUF_TYPE_FLOAT32: case GGUF_TYPE_FLOAT64: return tag == KvOverride::Float;
        case GGUF_TYPE_BOOL: return tag == KvOverride::Bool;
        case GGUF_TYPE_STRING: return tag == KvOverride::Str;
        default: return false;  // arrays: llama.cpp reads them without overrides
    }
}

// an integer override stored in the key's own integer type (llama.cpp assigns
// the int64 to the variable it reads into, of that type)
static void set_int(gguf_context * g, const char * key, gguf_type t, int64_t v) {
    switch (t) {
        case GGUF_TYPE_UINT8:  gguf_set_val_u8(g, key, (uint8_t) v); break;
        case GGUF_TYPE_INT8:   gguf_set_val_i8(g, key, (int8_t) v); break;
        case GGUF_TYPE_UINT16: gguf_set_val_u16(g, key, (uint16_t) v); break;
        case GGUF_TYPE_INT16:  gguf_set_val_i16(g, key, (int16_t) v); break;
        case GGUF_TYPE_UINT32: gguf_set_val_u32(g, key, (uint32_t) v); break;
        case GGUF_TYPE_INT32:  gguf_set_val_i32(g, key, (int32_t) v); break;
        case GGUF_TYPE_UINT64: gguf_set_val_u64(g, key, (uint64_t) v); break;
        default:               gguf_set_val_i64(g, key, v); break;
    }
}

void apply_kv_overrides(gguf_context * g, const std::vector<KvOverride> & overrides) {
    for (const KvOverride & o : overrides) {
        const char * key = o.key.c_str();
        const int64_t id = gguf_find_key(g, key);
        // a missing key takes the override's natural type: our reader accepts any integer width
        const gguf_type t = id >= 0 ? gguf_get_kv_type(g, id)
                          : o.tag == KvOverride::Int ? GGUF_TYPE_UINT32
                          : o.tag == KvOverride::Float ? GGUF_TYPE_FLOAT32
                          : o.tag == KvOverride::Bool ? GGUF_TYPE_BOOL : GGUF_TYPE_STRING;
        if (!same_kind(o.tag, t)) continue;
        switch (o.tag) {
            case KvOverride::Int: set_int(g, key, t, o.i); break;
            case KvOverride::Float:
                if (t == GGUF_TYPE_FLOAT64) gguf_set_val_f64(g, key, o.f);
                else gguf_set_val_f32(g, key, (float) o.f);
                break;
            case KvOverride::Bool: gguf_set_val_bool(g, key, o.b); break;
            case KvOverride::Str: gguf_set_val_str(g, key, o.s.c_str()); break;
        }
    }
}

std::vector<llama_model_kv_override> llama_overrides(const std::vector<KvOverride> & overrides) {
    std::vector<llama_model_kv_override> out;
    if (overrides.empty()) return out;
    for (const KvOverride & o : overrides) {
        llama_model_kv_override l{};
        if (o.key.size() >= sizeof(l.key)) throw std::invalid_argument("kv_overrides key is too long: " + o.key);
        if (o.s.size() >= sizeof(l.val_str)) throw std::invalid_argument("kv_overrides value is too long: " + o.key);
        std::memcpy(l.key, o.key.c_str(), o.key.size() + 1);
        l.tag = (llama_model_kv_override_type) o.tag;
        switch (o.tag) {
            case KvOverride::Int: l.val_i64 = o.i; break;
            case KvOverride::Float: l.val_f64 = o.f; break;
            case KvOverride::Bool: l.val_bool = o.b; break;
            case KvOverride::Str: std::memcpy(l.val_str, o.s.c_str(), o.s.size() + 1); break;
        }
        out.push_back(l);
    }
    out.push_back(llama_model_kv_override{});  // key[0] == 0 ends the list
    return out;
}

} // namespace sb
