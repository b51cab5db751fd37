// What one generation is asked to do (GenerateParams) and what it did
// (GenerateResult): plain structs, bound as they are to Python, which builds
// one GenerateParams per request and passes it whole.
#pragma once

#include "sample/sampler.h"
#include "speculation/params.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sb {

class Vocab;

// The conditions a request puts on the full model's choice, as the caller
// gives them; make_constraints turns them into the sampler's Constraints. The
// Python logits processor is not here: it is lent to each engine call (see
// bindings/session_decode.cpp), so a request only says whether it has one.
struct ConstraintParams {
    std::optional<std::string> grammar;  // GBNF text (libllama's grammar sampler)
    std::string grammar_root = "root";
    std::vector<std::pair<int32_t, float>> logit_bias;  // (token id, bias)
    float typical_p = 1.0f;  // < 1: locally typical sampling
    int mirostat = 0;        // 0: off, 1 or 2
    float mirostat_tau = 5.0f, mirostat_eta = 0.1f;
};

struct GenerateParams {
    int max_tokens = 16;          // <= 0: until the context is full
    SamplingParams sampling;
    std::vector<std::string> stop;
    bool specbound = false;
    SpecParams spec;              // with specbound: checked by check_spec_params
    bool keep_logits = false;     // keep each emitted token's logits row (for logprobs)
    bool spec_gate = false;       // with specbound: the online gate (speculation/gate.h) picks each round's kind
    ConstraintParams constraints;
};

// Each field of GenerateResult that Python reads, declared once, as
// X(type, name, doc): the struct, its read-only binding and
// GenerateResult.fields (python/specbound_cpp/params.py's RESULT_FIELDS).
#define SB_GENERATE_RESULT(X)                                                                                      \
    X(std::vector<int32_t>, tokens, "emitted tokens (stop-string tokens included; Python trims text)")           \
    X(std::string, finish_reason, "'stop' or 'length'")                                                            \
    X(int, n_prompt, "prompt tokens")                                                                              \
    X(int, n_prompt_reused, "prompt tokens whose KV was kept from the previous call")                              \
    X(double, prompt_ms, "time of the prompt's pass")                                                              \
    X(double, decode_ms, "time of the decoding after it")                                                          \
    X(int, rounds, "decoding rounds")

struct GenerateResult {
#define SB_GENERATE_RESULT_FIELD(type, name, doc) type name{};
    SB_GENERATE_RESULT(SB_GENERATE_RESULT_FIELD)
#undef SB_GENERATE_RESULT_FIELD
    // with keep_logits: row i (n_vocab floats) is the full model's logits that
    // chose tokens[i], before penalties - the same bits in both decoding modes
    // (Python reads them through Session.result_logits, not as a field)
    std::vector<float> logits;
};

// Throws std::invalid_argument unless each field keeps its rule
// (SB_SPEC_PARAMS, speculation/params.h), exit_layers ascend within
// (0, n_layer) and d_max < n_layer.
void check_spec_params(const SpecParams & p, int n_layer);

// The logits processor callback of a request that has one (null: none).
using ProcessorFn = void (*)(float * logits, int n_vocab, const int32_t * generated, size_t n_generated);

// The sampler's Constraints for these conditions (null when none applies).
// Throws std::invalid_argument for a logit bias outside the vocabulary or a
// grammar libllama cannot parse.
std::shared_ptr<Constraints> make_constraints(const ConstraintParams & c, const Vocab & vocab, int n_vocab,
                                              ProcessorFn processor);

} // namespace sb
