// llama-cpp-python's kv_overrides: metadata values that replace the GGUF's
// own, for our GGUF reader (hyperparameters) and for libllama's loading of the
// vocabulary, so both see the same model.
#pragma once

#include <gguf.h>

#include <cstdint>
#include <string>
#include <vector>

struct llama_model_kv_override;

namespace sb {

struct KvOverride {
    // llama.cpp's llama_model_kv_override_type, in its order
    enum Tag { Int = 0, Float = 1, Bool = 2, Str = 3 };
    std::string key;
    Tag tag = Int;
    int64_t i = 0;
    double f = 0;
    bool b = false;
    std::string s;  // at most 127 bytes (llama.cpp's val_str holds 128 with the NUL)
};

// Applies the overrides to g as llama.cpp's loader applies them to the values
// it reads: an override whose kind (integer, float, bool, string) is the key's
// replaces it, converted to the key's own type; one of another kind is ignored
// (llama.cpp warns and keeps the file's value); a key the file lacks is added.
void apply_kv_overrides(gguf_context * g, const std::vector<KvOverride> & overrides);

// The same overrides as libllama's model parameters take them (terminated by an
// entry with an empty key); empty when there are none.
std::vector<llama_model_kv_override> llama_overrides(const std::vector<KvOverride> & overrides);

} // namespace sb
