#include "vocab/vocab.h"

#include "model/quiet_log.h"
#include "vocab/gguf_check.h"

#include <llama.h>

#include <stdexcept>

namespace sb {

Vocab::Vocab(const std::string & path, bool verbose, const std::vector<KvOverride> & kv_overrides) {
    check_vocab_metadata(path);  // what libllama would abort on: refuse it here
    llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    const std::vector<llama_model_kv_override> overrides = llama_overrides(kv_overrides);
    mp.kv_overrides = overrides.empty() ? nullptr : overrides.data();
    {
        QuietLog quiet(!verbose);  // only for the duration of this load
        model_ = llama_model_load_from_file(path.c_str(), mp);
    }
    if (!model_) throw std::invalid_argument("llama.cpp could not load the vocabulary of " + path);
    vocab_ = llama_model_get_vocab(model_);
}

Vocab::~Vocab() {
    if (model_) llama_model_free(model_);
}

std::vector<int32_t> Vocab::tokenize(const std::string & text, bool add_special, bool parse_special) const {
    std::vector<int32_t> out(text.size() + 8);
    int32_t n = llama_tokenize(vocab_, text.data(), (int32_t) text.size(), out.data(), (int32_t) out.size(), add_special, parse_special);
    if (n < 0) {
        out.resize(-n);
        n = llama_tokenize(vocab_, text.data(), (int32_t) text.size(), out.data(), (int32_t) out.size(), add_special, parse_special);
    }
    if (n < 0) throw std::runtime_error("tokenization failed");
    out.resize(n);
    return out;
}

std::string Vocab::piece(int32_t token, bool special) const {
    char buf[256];
    int32_t n = llama_token_to_piece(vocab_, token, buf, sizeof(buf), 0, special);
    if (n < 0) {
        std::string s(-n, '\0');
        llama_token_to_piece(vocab_, token, s.data(), (int32_t) s.size(), 0, special);
        return s;
    }
    return std::string(buf, n);
}

std::string Vocab::detokenize(const std::vector<int32_t> & tokens, bool special) const {
    std::string s(tokens.size() * 8 + 16, '\0');
    int32_t n = llama_detokenize(vocab_, tokens.data(), (int32_t) tokens.size(), s.data(), (int32_t) s.size(), false, special);
    if (n < 0) {
        s.resize(-n);
        n = llama_detokenize(vocab_, tokens.data(), (int32_t) tokens.size(), s.data(), (int32_t) s.size(), false, special);
    }
    s.resize(n < 0 ? 0 : n);
    return s;
}

int32_t Vocab::n_vocab() const { return llama_vocab_n_tokens(vocab_); }
int32_t Vocab::bos() const { return llama_vocab_bos(vocab_); }
int32_t Vocab::eos() const { return llama_vocab_eos(vocab_); }
bool Vocab::add_bos() const { return llama_vocab_get_add_bos(vocab_); }
bool Vocab::is_eog(int32_t token) const { return llama_vocab_is_eog(vocab_, token); }

std::string Vocab::chat_template() const {
    const char * t = llama_model_chat_template(model_, nullptr);
    return t ? t : "";
}

std::vector<std::pair<std::string, std::string>> Vocab::metadata() const {
    std::vector<std::pair<std::string, std::string>> out;
    const int32_t n = llama_model_meta_count(model_);
    std::vector<char> k(256), v(4096);
    for (int32_t i = 0; i < n; ++i) {
        int32_t nk = llama_model_meta_key_by_index(model_, i, k.data(), k.size());
        int32_t nv = llama_model_meta_val_str_by_index(model_, i, v.data(), v.size());
        if (nv >= (int32_t) v.size()) {
            v.resize(nv + 1);
            nv = llama_model_meta_val_str_by_index(model_, i, v.data(), v.size());
        }
        if (nk < 0 || nv < 0) continue;
        out.emplace_back(std::string(k.data(), std::min<int32_t>(nk, (int32_t) k.size() - 1)), std::string(v.data(), nv));
    }
    return out;
}

} // namespace sb
