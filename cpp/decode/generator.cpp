#include "decode/generator.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace sb {

static double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

Generator::Generator(Engine & engine, const Vocab & vocab, int n_batch)
    : engine_(engine), vocab_(vocab), n_batch_(std::max(1, n_batch)), sampler_(engine.hparams().n_vocab), spec_(engine, sampler_, pool_) {}

void Generator::eval_logits(const std::vector<int32_t> & tokens, int n_past, bool invariant, std::vector<float> & logits) {
    const int n_layer = engine_.hparams().n_layer, n_vocab = engine_.hparams().n_vocab;
    const size_t chunk = invariant ? (size_t) engine_.max_invariant_rows() : tokens.size();
    logits.resize(tokens.size() * (size_t) n_vocab);
    for (size_t start = 0; start < tokens.size(); start += chunk) {
        const size_t end = std::min(tokens.size(), start + chunk);
        std::vector<Row> rows;
        for (size_t i = start; i < end; ++i) rows.push_back({ tokens[i], n_past + (int) i, 0, n_layer, true });
        engine_.forward(rows, nullptr, nullptr, logits.data() + start * n_vocab, invariant);
    }
}

void Generator::teacher_forced(const std::vector<int32_t> & tokens, int n_past, const std::vector<int> & layers,
                               std::vector<float> * out, std::vector<float> * states) {
    const int n_layer = engine_.hparams().n_layer;
    if (out && !layers.empty() && layers.back() >= n_layer) throw std::invalid_argument("exit heads need layers < n_layer");
    for (size_t li = 0; li < layers.size(); ++li)
        if (layers[li] < 1 || layers[li] > n_layer || (li > 0 && layers[li] <= layers[li - 1]))
            throw std::invalid_argument("layers must be ascending, > 0 and <= n_layer");
    const size_t n = tokens.size(), n_cand = engine_.candidates().size(), n_embd = engine_.hparams().n_embd;
    if (out) out->assign(layers.size() * n * n_cand, 0.0f);
    if (states) states->assign(layers.size() * n * n_embd, 0.0f);
    // in chunks the decode-phase graph holds: a column's bits do not depend on its batch
    const size_t chunk = (size_t) engine_.max_invariant_rows();
    for (size_t start = 0; start < n; start += chunk) {
        const std::vector<int32_t> part(tokens.begin() + start, tokens.begin() + std::min(n, start + chunk));
        teacher_forced_part(part, n_past + (int) start, layers, start, n, out, states);
    }
}

// teacher_forced() for tokens[start, start + part.size()) of n, at their positions
void Generator::teacher_forced_part(const std::vector<int32_t> & part, int n_past, const std::vector<int> & layers,
                                    size_t start, size_t n, std::vector<float> * out, std::vector<float> * states) {
    const int n_layer = engine_.hparams().n_layer;
    const size_t m = part.size(), n_cand = engine_.candidates().size(), n_embd = engine_.hparams().n_embd;
    std::vector<float> h(m * n_embd), chk(m * n_cand);
    int depth = 0;
    for (size_t li = 0; li <= layers.size(); ++li) {
        const int l = li < layers.size() ? layers[li] : n_layer;
        const bool check = out && li < layers.size();
        std::vector<Row> rows;
        for (size_t i = 0; i < m; ++i) rows.push_back({ part[i], n_past + (int) i, depth, l, false, check });
        if (l > depth) engine_.forward(rows, h.data(), h.data(), nullptr, true, check ? chk.data() : nullptr);
        if (check) std::copy(chk.begin(), chk.end(), out->begin() + (li * n + start) * n_cand);
        if (states && li < layers.size()) std::copy(h.begin(), h.end(), states->begin() + (li * n + start) * n_embd);
        depth = l;
    }
}

void Generator::prefill(const std::vector<int32_t> & prompt, int n_keep) {
    const int n_layer = engine_.hparams().n_layer, n_vocab = engine_.hparams().n_vocab;
    engine_.kv().cells.remove_from(n_keep);  // the rest of the cached prompt differs
    logits_.resize(n_vocab);
    for (int start = n_keep; start < (int) prompt.size(); start += n_batch_) {
        const int end = std::min((int) prompt.size(), start + n_batch_);
        std::vector<Row> rows;
        for (int i = start; i < end; ++i) rows.push_back({ prompt[i], i, 0, n_layer, i == (int) prompt.size() - 1 });
        // prompt processing may use the fastest kernels: both decoding modes share it
        engine_.forward(rows, nullptr, nullptr, end == (int) prompt.size() ? logits_.data() : nullptr, false);
    }
}

int32_t Generator::plain_round(int32_t last, const SamplingParams & sp, std::vector<int32_t> & emitted) {
    // evaluate the last emitted token, sample the next one
    const int n_layer = engine_.hparams().n_layer, n_vocab = engine_.hparams().n_vocab;
    const int pos = engine_.kv().cells.size();
    std::vector<Row> rows = { { last, pos, 0, n_layer, true } };
    engine_.forward(rows, nullptr, nullptr, logits_.data(), true);
    int32_t next = sampler_.sample(logits_.data(), n_vocab, sp, pos + 1, emitted.data(), emitted.size());
    emitted.push_back(next);
    return next;
}

void Generator::begin(const std::vector<int32_t> & prompt, const GenerateParams & params) {
    const int n_ctx = engine_.n_ctx();
    const int n_vocab = engine_.hparams().n_vocab;
    if (prompt.empty()) throw std::invalid_argument("empty prompt");
    if ((int) prompt.size() > n_ctx)
        throw std::length_error("Requested tokens (" + std::to_string(prompt.size()) + ") exceed context window of " +
                                std::to_string(n_ctx));
    for (int32_t t : prompt)
        if (t < 0 || t >= n_vocab) throw std::invalid_argument("prompt token id out of range: " + std::to_string(t));

    if (params.specbound) {
        if (engine_.candidates().empty()) throw std::invalid_argument("SpecBound needs an exit-head vocabulary");
        check_spec_params(params.spec, engine_.hparams().n_layer);
    }
    params_ = params;
    result_ = GenerateResult{};
    spec_stats_ = SpecStats{};
    spec_.controller().reset(params.specbound && params.spec_gate);
    result_.n_prompt = (int) prompt.size();
    stop_window_ = 16;
    for (const auto & s : params.stop) stop_window_ = std::max(stop_window_, s.size());

    // keep the cached prefix; the last prompt token is always re-evaluated for its logits
    size_t n_keep = 0;
    const std::vector<int32_t> & cached = engine_.kv().cells.tokens();
    while (n_keep < cached.size() && n_keep + 1 < prompt.size() && cached[n_keep] == prompt[n_keep]) ++n_keep;
    result_.n_prompt_reused = (int) n_keep;

    const double t0 = now_ms();
    try {
        prefill(prompt, (int) n_keep);
    } catch (...) {
        engine_.kv().cells.clear();  // a failed prefill leaves a cache we cannot trust
        throw;
    }
    t_decode_ = now_ms();
    result_.prompt_ms = t_decode_ - t0;
    last_ = sampler_.sample(logits_.data(), n_vocab, params_.sampling, (int64_t) prompt.size());
    result_.tokens.push_back(last_);
    if (params_.specbound) {  // the pool learns the prompt (again, where an earlier request had it)
        text_.assign(prompt.begin(), prompt.end());
        text_.push_back(last_);
        pool_.feed(text_.data(), text_.size(), 0);
    }
    if (params_.keep_logits) result_.logits.assign(logits_.begin(), logits_.end());
    result_.rounds = 1;
}

bool Generator::finished() {
    std::vector<int32_t> & emitted = result_.tokens;
    if (!result_.finish_reason.empty()) return true;
    if (vocab_.is_eog(emitted.back())) {
        emitted.pop_back();
        result_.finish_reason = "stop";
    } else if (params_.max_tokens > 0 && (int) emitted.size() >= params_.max_tokens) {
        result_.finish_reason = "length";
    } else if (result_.n_prompt + (int) emitted.size() >= engine_.n_ctx()) {
        result_.finish_reason = "length";
    } else if (!params_.stop.empty()) {
        // stop strings: scan the tail of the text only (Python trims the final text)
        std::string tail;
        for (size_t i = emitted.size() > stop_window_ ? emitted.size() - stop_window_ : 0; i < emitted.size(); ++i)
            tail += vocab_.piece(emitted[i], false);
        for (const auto & s : params_.stop)
            if (!s.empty() && tail.find(s) != std::string::npos) result_.finish_reason = "stop";
    }
    return !result_.finish_reason.empty();
}

RoundKind Generator::spec_round() {
    std::vector<int32_t> & emitted = result_.tokens;
    int max_new = engine_.n_ctx() - result_.n_prompt - (int) emitted.size();
    if (params_.max_tokens > 0) max_new = std::min(max_new, params_.max_tokens - (int) emitted.size());
    std::vector<int32_t> fresh;
    const RoundKind kind = spec_.round(last_, emitted, params_.sampling, params_.spec, max_new, fresh, spec_stats_,
                                       params_.keep_logits ? &result_.logits : nullptr);
    // one token at a time, so stop conditions cut exactly where plain decoding would
    for (int32_t t : fresh) {
        emitted.push_back(t);
        last_ = t;
        if (finished()) break;
    }
    return kind;
}

bool Generator::step() {
    if (finished()) {
        result_.decode_ms = now_ms() - t_decode_;
        return false;
    }
    // with specbound on, without the gate every round speculates
    SpecController & speculation = spec_.controller();
    const bool spec = params_.specbound && speculation.want_spec();
    const size_t n_before = result_.tokens.size();
    const double t0 = now_ms();
    RoundKind kind = RoundKind::plain;
    if (spec) {
        kind = spec_round();
    } else {
        last_ = plain_round(last_, params_.sampling, result_.tokens);
        if (params_.specbound) speculation.single_step(now_ms() - t0);
        if (params_.keep_logits) result_.logits.insert(result_.logits.end(), logits_.begin(), logits_.end());
    }
    // the gate prices the round (only where it is on); an EOG dropped: 1 token
    speculation.record(kind, now_ms() - t0, std::max(1, (int) result_.tokens.size() - (int) n_before));
    // the exit head learns this request's words (a draft outside it is impossible)
    if (params_.specbound && !params_.spec.exit_layers.empty())
        for (size_t i = n_before; i < result_.tokens.size(); ++i)
            spec_stats_.exit_vocab_added += engine_.add_candidate(result_.tokens[i]);
    // and the pool what followed each n-gram
    if (params_.specbound) {
        const size_t fed = text_.size();
        text_.insert(text_.end(), result_.tokens.begin() + (ptrdiff_t) std::min(n_before, result_.tokens.size()),
                     result_.tokens.end());
        pool_.feed(text_.data(), text_.size(), fed);
    }
    // a stop cut the round short (or dropped an end-of-generation token): one row per token
    if (params_.keep_logits) result_.logits.resize(result_.tokens.size() * (size_t) engine_.hparams().n_vocab);
    result_.rounds++;
    result_.decode_ms = now_ms() - t_decode_;
    return true;
}

const GenerateResult & Generator::generate(const std::vector<int32_t> & prompt, const GenerateParams & params,
                                           const TokenCallback & on_round) {
    begin(prompt, params);
    while (step())
        if (on_round && !finished() && !on_round(result_.tokens)) result_.finish_reason = "stop";
    return result_;
}

} // namespace sb
