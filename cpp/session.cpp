#include "session.h"

#include <algorithm>
#include <stdexcept>
#include <sys/stat.h>

namespace sb {

const std::string & checked_model_path(const std::string & path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) throw std::invalid_argument("model file not found: " + path);
    if (S_ISDIR(st.st_mode)) throw std::invalid_argument("model path is a directory, not a GGUF file: " + path);
    return path;
}

std::vector<float> Session::kept_logits(size_t since, size_t & n_rows) const {
    const GenerateResult & r = gen.result();
    const size_t n_vocab = (size_t) engine.hparams().n_vocab;
    n_rows = std::min(r.tokens.size(), r.logits.size() / n_vocab);  // a dropped EOG keeps its row
    since = std::min(since, n_rows);
    std::vector<float> rows(r.logits.begin() + since * n_vocab, r.logits.begin() + n_rows * n_vocab);
    n_rows -= since;
    return rows;
}

} // namespace sb
