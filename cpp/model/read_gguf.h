// The steps of load_model that read the GGUF's metadata and tensor table
// (hparams.cpp, tensors.cpp); both throw std::invalid_argument for a bad file.
#pragma once

#include "model/model.h"

namespace sb {

// Architecture and hyper-parameters from the metadata, checked for values
// ggml's ops would assert on.
void read_hparams(gguf_context * g, HParams & hp);

// Points the model's named tensors (m.ctx_meta) at the file's, checking the
// architecture's required tensors and their shapes.
void bind_tensors(Model & m);

} // namespace sb
