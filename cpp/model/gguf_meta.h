// Typed reads of GGUF metadata, with the errors the loader reports for a bad
// file (std::invalid_argument).
#pragma once

#include "model/model.h"

#include <cstdint>
#include <string>

namespace sb {

// "<arch>.<suffix>", the architecture-scoped key name
std::string arch_key(const HParams & hp, const char * suffix);

int64_t find_key(gguf_context * g, const std::string & key);

// Integer value of `key` (any integer type; the first entry of an integer
// array). Missing: throws if required, else returns def.
uint32_t get_u32(gguf_context * g, const std::string & key, bool required, uint32_t def = 0);

// F32 value of `key`, def when missing.
float get_f32(gguf_context * g, const std::string & key, float def);

} // namespace sb
