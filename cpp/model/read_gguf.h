// The steps of load_model that read the GGUF's metadata and tensor table
// (hparams.cpp, tensors.cpp); both throw std::invalid_argument for a bad file.
#pragma once

#include "model/model.h"

namespace sb {

// Architecture and hyper-parameters from the metadata, checked for values
// ggml's ops would assert on.
void read_hparams(gguf_context * g, HParams & hp);

// The rope scaling keys (rope.scaling.type and the YaRN keys) into hp.
void read_rope_scaling(gguf_context * g, HParams & hp);

// hp.rope from the file's values and the Llama's overrides, as llama.cpp
// resolves its context parameters; std::invalid_argument for values it
// would refuse or that would make ggml's rope assert.
void resolve_rope(HParams & hp, const RopeOverrides & o);

// Points the model's named tensors (m.ctx_meta) at the file's, checking the
// architecture's required tensors and their shapes.
void bind_tensors(Model & m);

} // namespace sb
