// Tokenizer, detokenizer and chat template: llama.cpp's own, from libllama
// loaded with vocab_only (no weights).
#pragma once

#include "model/kv_override.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

struct llama_model;
struct llama_vocab;

namespace sb {

class Vocab {
  public:
    // kv_overrides: as libllama applies them (model/kv_override.h)
    Vocab(const std::string & path, bool verbose, const std::vector<KvOverride> & kv_overrides = {});
    ~Vocab();
    Vocab(const Vocab &) = delete;
    Vocab & operator=(const Vocab &) = delete;

    std::vector<int32_t> tokenize(const std::string & text, bool add_special, bool parse_special) const;
    std::string piece(int32_t token, bool special) const;
    std::string detokenize(const std::vector<int32_t> & tokens, bool special) const;
    int32_t n_vocab() const;
    int32_t bos() const;
    int32_t eos() const;
    bool add_bos() const;
    bool is_eog(int32_t token) const;
    std::string chat_template() const;
    std::vector<std::pair<std::string, std::string>> metadata() const;

    const llama_vocab * handle() const { return vocab_; }  // for libllama's samplers (grammar)

  private:
    llama_model * model_ = nullptr;
    const llama_vocab * vocab_ = nullptr;
};

} // namespace sb
