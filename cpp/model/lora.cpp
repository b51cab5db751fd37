// Loading a GGUF LoRA adapter, with the checks of llama.cpp's
// llama_adapter_lora_init (llama-adapter.cpp) and those it leaves to ggml's
// asserts (a key of the wrong type, a pair of the wrong shapes) made errors.
#include "model/lora.h"
#include "model/model.h"
#include "model/tensor_buffer.h"

#include <ggml-cpu.h>

#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <vector>

namespace sb {

Lora::~Lora() {
    if (buffer) ggml_backend_buffer_free(buffer);
    if (ctx_meta) ggml_free(ctx_meta);
    if (gguf) gguf_free(gguf);
}

size_t Lora::bytes() const {
    size_t n = 0;
    for (const auto & [w, lw] : weights) n += ggml_nbytes(lw.a) + ggml_nbytes(lw.b);
    return n;
}

std::string Lora::describe() const {
    std::string types;
    for (const auto & [w, lw] : weights) {
        for (const ggml_tensor * t : { lw.a, lw.b }) {
            const std::string name = ggml_type_name(t->type);
            if (types.find(name) == std::string::npos) types += (types.empty() ? "" : ",") + name;
        }
    }
    return "LoRA adapter " + path + ": " + std::to_string(weights.size()) + " weights (" + types + "), scale " +
           std::to_string(user_scale) + (in_graph() ? "" : " (not in the graph)");
}

namespace {

[[noreturn]] void bad(const std::string & path, const std::string & what) {
    throw std::invalid_argument("LoRA adapter " + path + ": " + what);
}

[[noreturn]] void unsupported(const std::string & path, const std::string & what) {
    throw std::invalid_argument(std::string(kLoraUnsupported) + path + ": " + what);
}

// A string key's value ("" where absent, as llama.cpp reads it); another type
// is an error (gguf_get_val_str would assert on it).
std::string str_key(const Lora & l, const char * key) {
    const int64_t id = gguf_find_key(l.gguf, key);
    if (id < 0) return "";
    if (gguf_get_kv_type(l.gguf, id) != GGUF_TYPE_STRING) bad(l.path, std::string(key) + " is not a string");
    return gguf_get_val_str(l.gguf, id);
}

void check_metadata(Lora & l, const Model & m) {
    const std::string general_type = str_key(l, "general.type");
    if (general_type != "adapter") bad(l.path, "general.type is '" + general_type + "', not 'adapter'");
    const std::string arch = str_key(l, "general.architecture");
    if (arch != m.hp.arch_name)
        bad(l.path, "is for architecture '" + arch + "', the model is '" + m.hp.arch_name + "'");
    const std::string adapter_type = str_key(l, "adapter.type");
    if (adapter_type != "lora") bad(l.path, "adapter.type is '" + adapter_type + "', not 'lora'");
    const int64_t id = gguf_find_key(l.gguf, "adapter.lora.alpha");
    if (id >= 0 && gguf_get_kv_type(l.gguf, id) != GGUF_TYPE_FLOAT32) bad(l.path, "adapter.lora.alpha is not an f32");
    l.alpha = id < 0 ? 0.0f : gguf_get_val_f32(l.gguf, id);
    // llama.cpp parses (and checks) the aLoRA invocation tokens, then never uses them
    const int64_t inv = gguf_find_key(l.gguf, "adapter.alora.invocation_tokens");
    if (inv >= 0 && (gguf_get_kv_type(l.gguf, inv) != GGUF_TYPE_ARRAY || gguf_get_arr_type(l.gguf, inv) != GGUF_TYPE_UINT32))
        bad(l.path, "adapter.alora.invocation_tokens is not an array of u32");
}

bool ends_with(const std::string & s, const std::string & suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// base weight name -> (lora_a, lora_b), by llama.cpp's naming rules
std::map<std::string, LoraWeight> pair_tensors(const Lora & l) {
    std::map<std::string, LoraWeight> pairs;
    for (ggml_tensor * t = ggml_get_first_tensor(l.ctx_meta); t; t = ggml_get_next_tensor(l.ctx_meta, t)) {
        const std::string name = ggml_get_name(t);
        if (ends_with(name, ".lora_a")) pairs[name.substr(0, name.size() - 7)].a = t;
        else if (ends_with(name, ".lora_b")) pairs[name.substr(0, name.size() - 7)].b = t;
        else if (ends_with(name, "_norm.weight")) continue;  // llama.cpp skips norm vectors too
        else bad(l.path, "tensor '" + name + "' is neither a .lora_a nor a .lora_b");
    }
    return pairs;
}

// The types a lora_a/lora_b may have here: ggml's CPU multiplies by them with
// vec_dot for one column, and GraphBuilder's detour keeps sgemm out for more.
bool type_supported(ggml_type t) {
    return t == GGML_TYPE_F32 || t == GGML_TYPE_F16 || t == GGML_TYPE_BF16 || t == GGML_TYPE_Q8_0;
}

void check_pair(const Lora & l, const std::string & name, const LoraWeight & w, const ggml_tensor * base) {
    if (!w.a || !w.b) bad(l.path, "the pair of '" + name + "' lacks its " + (w.a ? "lora_b" : "lora_a"));
    if (!base) bad(l.path, "adapts '" + name + "', which the model does not have (an adapter of another model?)");
    if (name == "token_embd.weight") unsupported(l.path, "adapts the token embeddings");
    if (base->ne[0] != w.a->ne[0] || base->ne[1] != w.b->ne[1] || ggml_n_dims(w.a) > 2 || ggml_n_dims(w.b) > 2)
        bad(l.path, "the shapes of '" + name + "' do not match the model's (an adapter of another model?)");
    if (w.a->ne[1] != w.b->ne[0]) bad(l.path, "lora_a of '" + name + "' is not transposed (rank of a != rank of b)");
    for (const ggml_tensor * t : { w.a, w.b })
        if (!type_supported(t->type))
            unsupported(l.path, std::string(ggml_get_name(t)) + " is " + ggml_type_name(t->type) +
                                    " (supported: f32, f16, bf16, q8_0)");
}

struct FileCloser {
    void operator()(FILE * f) const { if (f) fclose(f); }
};

// The pairs' bytes from the file into one CPU buffer, each checked to lie inside it.
void read_weights(Lora & l, const std::vector<ggml_tensor *> & tensors) {
    std::unique_ptr<FILE, FileCloser> f(fopen(l.path.c_str(), "rb"));
    if (!f) bad(l.path, "cannot be opened");
    if (fseek(f.get(), 0, SEEK_END) != 0) bad(l.path, "cannot be read");
    const long size = ftell(f.get());
    l.buffer = alloc_tensor_buffer(ggml_backend_cpu_buffer_type(), tensors, GGML_BACKEND_BUFFER_USAGE_WEIGHTS,
                                   "cannot allocate the LoRA adapter's buffer");
    for (ggml_tensor * t : tensors) {
        const int64_t i = gguf_find_tensor(l.gguf, ggml_get_name(t));
        const size_t off = gguf_get_data_offset(l.gguf) + gguf_get_tensor_offset(l.gguf, i);
        const size_t n = ggml_nbytes(t);
        if (size < 0 || off + n < off || off + n > (size_t) size)
            bad(l.path, "is truncated: tensor '" + std::string(ggml_get_name(t)) + "' extends past its end");
        if (fseek(f.get(), (long) off, SEEK_SET) != 0 || fread(t->data, 1, n, f.get()) != n)
            bad(l.path, "cannot be read");
    }
}

} // namespace

void load_lora(Model & m, const std::string & path, float scale) {
    Lora & l = m.lora;
    l.path = path;
    l.user_scale = scale;
    gguf_init_params gp = { /*no_alloc*/ true, /*ctx*/ &l.ctx_meta };
    l.gguf = gguf_init_from_file(path.c_str(), gp);
    if (!l.gguf) bad(path, "is not a valid GGUF file (bad magic, truncated or corrupt header)");
    check_metadata(l, m);
    std::vector<ggml_tensor *> tensors;
    for (const auto & [name, w] : pair_tensors(l)) {
        const ggml_tensor * base = ggml_get_tensor(m.ctx_meta, name.c_str());
        check_pair(l, name, w, base);
        LoraWeight lw = w;
        // llama_adapter_lora_weight::get_scale, in its float arithmetic
        const float rank = (float) w.b->ne[0];
        lw.scale = l.alpha != 0.0f ? scale * l.alpha / rank : scale;
        l.weights[base] = lw;
        tensors.push_back(w.a);
        tensors.push_back(w.b);
    }
    if (!tensors.empty()) read_weights(l, tensors);
}

} // namespace sb
