// Session's construction, vocabulary and model shape.
#include "bindings/bindings.h"

// the model: construction, vocabulary, shape
void bind_session_model(nb::class_<Session> & c) {
    c.def("__init__",
          [](Session * s, const std::string & path, int n_ctx, int n_batch, int n_threads, int n_threads_batch,
             int n_gpu_layers, bool verbose, bool flash_attn, const sb::RopeOverrides & rope, int type_k, int type_v,
             const std::vector<sb::KvOverride> & kv_overrides, const std::string & lora_path, float lora_scale,
             const std::vector<std::string> & rpc_servers, const std::vector<float> & tensor_split, double rpc_timeout) {
              nb::gil_scoped_release nogil;
              sb::EngineParams e{ n_ctx, n_threads, n_threads_batch, n_gpu_layers, rpc_servers, tensor_split, rpc_timeout,
                                  flash_attn };
              e.rope = rope;
              e.type_k = (ggml_type) type_k;  // checked by the KV cache (kv/kv_cache.h)
              e.type_v = (ggml_type) type_v;
              e.kv_overrides = kv_overrides;
              e.lora_path = lora_path, e.lora_scale = lora_scale;
              new (s) Session(path, { e, n_batch, verbose });
          },
          "path"_a, "n_ctx"_a, "n_batch"_a, "n_threads"_a, "n_threads_batch"_a, "n_gpu_layers"_a, "verbose"_a,
          "flash_attn"_a = false, "rope"_a = sb::RopeOverrides(), "type_k"_a = (int) GGML_TYPE_F16,
          "type_v"_a = (int) GGML_TYPE_F16, "kv_overrides"_a = std::vector<sb::KvOverride>(),
          "lora_path"_a = "", "lora_scale"_a = 1.0f, "rpc_servers"_a = std::vector<std::string>(),
          "tensor_split"_a = std::vector<float>(), "rpc_timeout"_a = 300.0)
        .def_prop_ro("kv_bytes_per_token", [](Session & s) { return s.engine.kv().bytes_per_token(); })
        .def("tokenize",
             [](Session & s, nb::bytes text, bool add_special, bool parse_special) {
                 return s.vocab.tokenize(std::string(text.c_str(), text.size()), add_special, parse_special);
             })
        .def("detokenize",
             [](Session & s, const std::vector<int32_t> & toks, bool special) {
                 std::string t = s.vocab.detokenize(toks, special);
                 return nb::bytes(t.data(), t.size());
             })
        .def("token_piece",
             [](Session & s, int32_t tok, bool special) {
                 std::string t = s.vocab.piece(tok, special);
                 return nb::bytes(t.data(), t.size());
             })
        .def_prop_ro("n_vocab", [](Session & s) { return s.engine.hparams().n_vocab; })
        .def_prop_ro("n_ctx", [](Session & s) { return s.engine.n_ctx(); })
        .def_prop_ro("n_layer", [](Session & s) { return s.engine.hparams().n_layer; })
        .def_prop_ro("n_embd", [](Session & s) { return s.engine.hparams().n_embd; })
        .def_prop_ro("n_ff", [](Session & s) { return s.engine.hparams().n_ff; })
        .def_prop_ro("n_head", [](Session & s) { return s.engine.hparams().n_head; })
        .def_prop_ro("n_head_kv", [](Session & s) { return s.engine.hparams().n_head_kv; })
        .def_prop_ro("head_dim", [](Session & s) { return s.engine.hparams().head_dim; })
        .def_prop_ro("arch", [](Session & s) { return s.engine.hparams().arch_name; })
        .def_prop_ro("token_bos", [](Session & s) { return s.vocab.bos(); })
        .def_prop_ro("token_eos", [](Session & s) { return s.vocab.eos(); })
        .def_prop_ro("add_bos", [](Session & s) { return s.vocab.add_bos(); })
        .def("is_eog", [](Session & s, int32_t t) { return s.vocab.is_eog(t); })
        .def_prop_ro("chat_template", [](Session & s) { return s.vocab.chat_template(); })
        .def("metadata", [](Session & s) { return s.vocab.metadata(); });
}
