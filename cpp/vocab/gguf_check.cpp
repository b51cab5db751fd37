#include "vocab/gguf_check.h"

#include <gguf.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_set>

namespace sb {

namespace {

struct GgufFree {
    void operator()(gguf_context * g) const { gguf_free(g); }
};

[[noreturn]] void bad(const std::string & path, const std::string & what) {
    throw std::invalid_argument(path + ": corrupt tokenizer metadata: " + what);
}

// the array at `key` if present, after checking its element type
int64_t array_key(gguf_context * g, const char * key, std::initializer_list<gguf_type> types, const std::string & path) {
    const int64_t id = gguf_find_key(g, key);
    if (id < 0) return -1;
    if (gguf_get_kv_type(g, id) != GGUF_TYPE_ARRAY) bad(path, std::string(key) + " is not an array");
    const gguf_type t = gguf_get_arr_type(g, id);
    for (gguf_type ok : types)
        if (t == ok) return id;
    bad(path, std::string(key) + " has elements of the wrong type");
}

void check_tokens(gguf_context * g, const std::string & path, size_t & n_tokens) {
    const int64_t id = array_key(g, "tokenizer.ggml.tokens", { GGUF_TYPE_STRING }, path);
    if (id < 0) bad(path, "no tokenizer.ggml.tokens");
    n_tokens = gguf_get_arr_n(g, id);
    if (n_tokens == 0 || n_tokens > (size_t) INT32_MAX) bad(path, "the token list is empty or too long");
    // libllama maps each string to its id and asserts that no two are equal
    // (an empty token is renamed "[EMPTY_<id>]" first, as it does)
    std::unordered_set<std::string> seen;
    seen.reserve(n_tokens);
    for (size_t i = 0; i < n_tokens; ++i) {
        std::string word = gguf_get_arr_str(g, id, i);
        if (word.empty()) word = "[EMPTY_" + std::to_string(i) + "]";
        if (!seen.insert(std::move(word)).second) bad(path, "token " + std::to_string(i) + " repeats an earlier token's string");
    }
    for (const char * key : { "tokenizer.ggml.scores", "tokenizer.ggml.token_type" }) {
        const bool scores = std::strcmp(key, "tokenizer.ggml.scores") == 0;
        const int64_t a = scores ? array_key(g, key, { GGUF_TYPE_FLOAT32, GGUF_TYPE_INT32 }, path)
                                 : array_key(g, key, { GGUF_TYPE_INT32 }, path);
        if (a >= 0 && gguf_get_arr_n(g, a) < n_tokens) bad(path, std::string(key) + " is shorter than the token list");
    }
}

void check_merges(gguf_context * g, const std::string & path) {
    const int64_t id = array_key(g, "tokenizer.ggml.merges", { GGUF_TYPE_STRING }, path);
    if (id < 0) return;
    const size_t n = gguf_get_arr_n(g, id);
    for (size_t i = 0; i < n; ++i) {
        const std::string m = gguf_get_arr_str(g, id, i);
        const size_t pos = m.find(' ', 1);
        if (pos == std::string::npos || pos + 1 >= m.size())
            bad(path, "merge " + std::to_string(i) + " is not two tokens separated by a space");
    }
}

} // namespace

void check_vocab_metadata(const std::string & path) {
    gguf_init_params gp = { /*no_alloc*/ true, /*ctx*/ nullptr };
    std::unique_ptr<gguf_context, GgufFree> g(gguf_init_from_file(path.c_str(), gp));
    if (!g) throw std::invalid_argument("not a valid GGUF file (bad magic, truncated or corrupt header): " + path);
    const int64_t model = gguf_find_key(g.get(), "tokenizer.ggml.model");
    if (model < 0 || gguf_get_kv_type(g.get(), model) != GGUF_TYPE_STRING) bad(path, "no tokenizer.ggml.model");
    const std::string name = gguf_get_val_str(g.get(), model);
    // "no"/"none": a vocabulary libllama cannot tokenize with (it asserts)
    if (name == "no" || name == "none" || name.empty()) bad(path, "the GGUF has no tokenizer");
    size_t n_tokens = 0;
    check_tokens(g.get(), path, n_tokens);
    check_merges(g.get(), path);
}

} // namespace sb
