// vocab_only=True: libllama's vocabulary alone, no weights (as llama-cpp-python loads it)
#include "bindings/bindings.h"

void bind_vocab(nb::module_ & m) {
    nb::class_<sb::Vocab>(m, "Vocab")
        .def("__init__",
             [](sb::Vocab * v, const std::string & path, bool verbose, const std::vector<sb::KvOverride> & ov) {
                 nb::gil_scoped_release nogil;
                 new (v) sb::Vocab(sb::checked_model_path(path), verbose, ov);
             },
             "path"_a, "verbose"_a, "kv_overrides"_a = std::vector<sb::KvOverride>())
        .def("tokenize",
             [](sb::Vocab & v, nb::bytes text, bool add_special, bool parse_special) {
                 return v.tokenize(std::string(text.c_str(), text.size()), add_special, parse_special);
             })
        .def("detokenize",
             [](sb::Vocab & v, const std::vector<int32_t> & toks, bool special) {
                 std::string t = v.detokenize(toks, special);
                 return nb::bytes(t.data(), t.size());
             })
        .def("token_piece",
             [](sb::Vocab & v, int32_t tok, bool special) {
                 std::string t = v.piece(tok, special);
                 return nb::bytes(t.data(), t.size());
             })
        .def_prop_ro("n_vocab", &sb::Vocab::n_vocab)
        .def_prop_ro("token_bos", &sb::Vocab::bos)
        .def_prop_ro("token_eos", &sb::Vocab::eos)
        .def_prop_ro("add_bos", &sb::Vocab::add_bos)
        .def("is_eog", &sb::Vocab::is_eog)
        .def_prop_ro("chat_template", &sb::Vocab::chat_template)
        .def("metadata", &sb::Vocab::metadata);
}
