// Placing a set of tensors in one backend buffer: the weights offloaded to a
// GPU (model/load.cpp) and the KV cache (kv/kv_cache.cpp).
#pragma once

#include <ggml.h>
#include <ggml-backend.h>

#include <vector>

namespace sb {

// A new buffer of type buft holding `tensors` back to back, each at an offset
// aligned for buft, with `usage` set before the tensors are placed (backends
// initialise a tensor according to it). The caller owns the buffer.
// Throws std::runtime_error(error) if it cannot be allocated.
ggml_backend_buffer_t alloc_tensor_buffer(ggml_backend_buffer_type_t buft, const std::vector<ggml_tensor *> & tensors,
                                          ggml_backend_buffer_usage usage, const char * error);

} // namespace sb
