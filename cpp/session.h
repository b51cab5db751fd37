// One loaded model as Python sees it: vocabulary (libllama), engine (our
// graphs over the GGUF weights) and the decoding loop, built in that order.
#pragma once

#include "decode/generator.h"
#include "engine/engine.h"
#include "vocab/vocab.h"

#include <memory>

namespace sb {

struct SessionParams {
    EngineParams engine;
    int n_batch = 512;
    bool verbose = false;
};

struct Session {
    // The engine loads first: its GGUF checks name the problem with a bad file
    // (magic, truncation, architecture) before libllama reads the vocabulary.
    Session(const std::string & path, const SessionParams & p)
        : engine(path, p.engine), vocab(path, p.verbose), gen(engine, vocab, p.n_batch) {
        spec = default_spec_params(engine.hparams());
    }
    Engine engine;
    Vocab vocab;
    Generator gen;
    SpecParams spec;  // used by generations with specbound on
};

} // namespace sb
