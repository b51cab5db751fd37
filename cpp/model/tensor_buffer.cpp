#include "model/tensor_buffer.h"

#include <stdexcept>
#include <string>

namespace sb {

ggml_backend_buffer_t alloc_tensor_buffer(ggml_backend_buffer_type_t buft, const std::vector<ggml_tensor *> & tensors,
                                          ggml_backend_buffer_usage usage, const char * error) {
    const size_t align = ggml_backend_buft_get_alignment(buft);
    size_t total = 0;
    for (const ggml_tensor * t : tensors) total += GGML_PAD(ggml_backend_buft_get_alloc_size(buft, t), align);
    ggml_backend_buffer_t buf = ggml_backend_buft_alloc_buffer(buft, total + align);
    if (!buf) throw std::runtime_error(error);
    ggml_backend_buffer_set_usage(buf, usage);
    char * base = (char *) ggml_backend_buffer_get_base(buf);
    size_t off = 0;
    for (ggml_tensor * t : tensors) {
        if (ggml_backend_tensor_alloc(buf, t, base + off) != GGML_STATUS_SUCCESS) {
            ggml_backend_buffer_free(buf);
            throw std::runtime_error(std::string("cannot place tensor ") + ggml_get_name(t) + " in its buffer");
        }
        off += GGML_PAD(ggml_backend_buft_get_alloc_size(buft, t), align);
    }
    return buf;
}

} // namespace sb
