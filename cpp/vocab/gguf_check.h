// Checks of a GGUF's tokenizer metadata that libllama's vocabulary loader
// asserts on (GGML_ASSERT aborts the process) rather than reports: run before
// the file is handed to llama_model_load_from_file, they throw instead.
#pragma once

#include <string>

namespace sb {

// Throws std::invalid_argument naming the problem: no token list, duplicate
// token strings, score / token-type arrays of another type or shorter than the
// token list, merges that are not "left right" strings, or a tokenizer model
// libllama cannot tokenize with. (Special token ids out of range are left to
// libllama, which replaces them with its defaults.)
void check_vocab_metadata(const std::string & path);

} // namespace sb
