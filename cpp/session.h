// One loaded model as Python sees it: vocabulary (libllama), engine (our
// graphs over the GGUF weights) and the decoding loop, built in that order.
#pragma once

#include "decode/generator.h"
#include "decode/params.h"
#include "engine/engine.h"
#include "vocab/vocab.h"

#include <string>
#include <vector>

namespace sb {

struct SessionParams {
    EngineParams engine;
    int n_batch = 512;
    bool verbose = false;
};

// `path` itself, once it names a file: a missing path or a directory raises
// std::invalid_argument naming it (before libllama or the GGUF reader see it).
const std::string & checked_model_path(const std::string & path);

// the engine's parameters, with the session's verbosity
inline EngineParams with_verbose(const SessionParams & p) {
    EngineParams e = p.engine;
    e.verbose = p.verbose;
    return e;
}

struct Session {
    // The engine loads first: its GGUF checks name the problem with a bad file
    // (magic, truncation, architecture) before libllama reads the vocabulary.
    Session(const std::string & path, const SessionParams & p)
        : engine(checked_model_path(path), with_verbose(p)), vocab(path, p.verbose, p.engine.kv_overrides), gen(engine, vocab, p.n_batch) {}

    // SpecBound parameters without a calibrated profile (speculation/params.h)
    SpecParams default_spec() const { return default_spec_params(engine.hparams()); }

    // A generation from `prompt`, driven by gen.step(): params.constraints
    // become the sampler's, with `processor` as the logits processor (null: none).
    void begin(const std::vector<int32_t> & prompt, GenerateParams params, ProcessorFn processor) {
        params.sampling.constraints = make_constraints(params.constraints, vocab, engine.hparams().n_vocab, processor);
        gen.begin(prompt, params);
    }
    // The same generation run to its end (Generator::generate; no logits processor).
    GenerateResult generate(const std::vector<int32_t> & prompt, GenerateParams params, const TokenCallback & on_round) {
        params.sampling.constraints = make_constraints(params.constraints, vocab, engine.hparams().n_vocab, nullptr);
        return gen.generate(prompt, params, on_round);
    }
    // The logits rows kept by a generation begun with keep_logits, from row
    // `since` on (a stream reads the new ones only), n_rows of n_vocab floats.
    std::vector<float> kept_logits(size_t since, size_t & n_rows) const;

    Engine engine;
    Vocab vocab;
    Generator gen;
};

} // namespace sb
