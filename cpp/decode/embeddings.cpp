#include "decode/embeddings.h"

#include <ggml-backend.h>

#include <cmath>
#include <stdexcept>

namespace sb {

// ggml's rms_norm then its mul by the norm's weight, as its CPU ops compute
// them: the sum of squares in double, one float scale, then the weight
static void final_norm(float * h, const float * weight, int n_embd, float eps) {
    double sum = 0.0;
    for (int i = 0; i < n_embd; ++i) sum += (double) (h[i] * h[i]);
    const float mean = (float) (sum / n_embd);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int i = 0; i < n_embd; ++i) h[i] = (h[i] * scale) * weight[i];
}

std::vector<float> token_embeddings(Engine & engine, const std::vector<int32_t> & tokens, int n_batch) {
    const HParams & hp = engine.hparams();
    const int n = (int) tokens.size(), n_embd = hp.n_embd;
    if (n == 0) return {};
    if (n > engine.n_ctx()) throw std::length_error("the input is longer than the context");
    const ggml_tensor * norm = engine.output_norm();
    if (!norm || norm->type != GGML_TYPE_F32 || norm->ne[0] != n_embd)
        throw std::invalid_argument("this model's output norm is not an F32 vector of n_embd");
    std::vector<float> weight(n_embd);
    ggml_backend_tensor_get(norm, weight.data(), 0, sizeof(float) * n_embd);

    std::vector<float> out((size_t) n * n_embd);
    engine.kv().cells.clear();
    for (int start = 0; start < n; start += n_batch) {
        const int end = std::min(n, start + n_batch);
        std::vector<Row> rows;
        for (int i = start; i < end; ++i) rows.push_back({ tokens[i], i, 0, hp.n_layer, false, false });
        engine.forward(rows, nullptr, out.data() + (size_t) start * n_embd, nullptr, false);  // (it keeps the cells)
    }
    for (int i = 0; i < n; ++i) final_norm(out.data() + (size_t) i * n_embd, weight.data(), n_embd, hp.rms_eps);
    return out;
}

std::vector<float> pool_embeddings(std::vector<float> tokens, int n_embd, Pooling pooling) {
    const size_t n = tokens.size() / (size_t) n_embd;
    if (pooling == Pooling::none) return tokens;
    if (n == 0) throw std::invalid_argument("cannot pool the embeddings of an empty input");
    if (pooling == Pooling::cls) return { tokens.begin(), tokens.begin() + n_embd };
    if (pooling == Pooling::last) return { tokens.end() - n_embd, tokens.end() };
    // mean: llama.cpp multiplies by a matrix of 1/n, a sum of x / n per column
    std::vector<float> mean(n_embd, 0.0f);
    const float w = 1.0f / (float) n;
    for (size_t t = 0; t < n; ++t)
        for (int i = 0; i < n_embd; ++i) mean[i] += tokens[t * n_embd + i] * w;
    return mean;
}

} // namespace sb
