// Session.embeddings: llama.cpp's embedding mode over our engine.
#include "bindings/bindings.h"
#include "decode/embeddings.h"

// embeddings (llama.cpp's embedding mode): [n_tokens, n_embd] unpooled, else [1, n_embd]
void bind_session_embeddings(nb::class_<Session> & c) {
    c.def("embeddings",
          [](Session & s, const std::vector<int32_t> & tokens, int pooling, int n_batch) {
              if (pooling < 0 || pooling > 3) throw std::invalid_argument("pooling must be none, mean, cls or last (0-3)");
              if (n_batch <= 0) throw std::invalid_argument("n_batch must be positive");
              const int n_embd = s.engine.hparams().n_embd;
              std::vector<float> v;
              {
                  nb::gil_scoped_release nogil;
                  v = sb::pool_embeddings(sb::token_embeddings(s.engine, tokens, n_batch), n_embd, (sb::Pooling) pooling);
              }
              const size_t rows = v.size() / (size_t) n_embd;
              return numpy_from(std::move(v), { rows, (size_t) n_embd });
          },
          "tokens"_a, "pooling"_a, "n_batch"_a);
}
