// What the binding files (cpp/bindings/*.cpp) share: nanobind with every
// type caster they use (a caster must be visible in each file that converts
// that type), the numpy helper, and each file's bind_* entry point, called in
// order from module.cpp.
#pragma once

#include "session.h"

#include <cstddef>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

namespace nb = nanobind;
using namespace nb::literals;
using sb::Session;

namespace sb {
class NgramPool;
class SpecController;
class SpecGate;
}

// a float vector as a numpy array that owns it (shape: its dimensions, product == data.size())
template <size_t N>
inline nb::ndarray<nb::numpy, float, nb::ndim<N>> numpy_from(std::vector<float> && data, const size_t (&shape)[N]) {
    auto * v = new std::vector<float>(std::move(data));
    nb::capsule owner(v, [](void * p) noexcept { delete (std::vector<float> *) p; });
    return nb::ndarray<nb::numpy, float, nb::ndim<N>>(v->data(), N, shape, owner);
}

// The field names of a struct bound from an X-macro list, in its order, as the
// Python tuple Class.fields: SB_FIELD_NAME turns one entry of any of the lists
// (type, name, ...) into its name.
#define SB_FIELD_NAME(type, name, ...) #name,
inline nb::tuple names_tuple(std::initializer_list<const char *> names) {
    nb::list l;
    for (const char * n : names) l.append(n);
    return nb::tuple(l);
}

// the gate's statistics, per source by the sources' names (results.cpp)
nb::dict gate_stats_dict(const sb::SpecGate & g, const std::vector<std::string> & names);
nb::dict gate_stats_dict(const sb::SpecController & c);
// the n-gram pool's size and use (testing.cpp)
nb::dict pool_dict(const sb::NgramPool & p);

void bind_params(nb::module_ & m);                         // params.cpp
void bind_rope(nb::module_ & m);                           // params.cpp
void bind_kv_override(nb::module_ & m);                    // params.cpp
void bind_vocab(nb::module_ & m);                          // vocab.cpp
void bind_results(nb::module_ & m);                        // results.cpp
void bind_session_model(nb::class_<Session> & c);          // session_model.cpp
void bind_session_decode(nb::class_<Session> & c);         // session_decode.cpp
void bind_session_engine(nb::class_<Session> & c);         // session_engine.cpp
void bind_session_probes(nb::class_<Session> & c);         // session_engine.cpp
void bind_session_calibration(nb::class_<Session> & c);    // session_engine.cpp
void bind_session_embeddings(nb::class_<Session> & c);     // embeddings.cpp
void bind_kernel_tests(nb::module_ & m);                   // testing.cpp
void bind_acceptance_tests(nb::module_ & m);               // testing.cpp
void bind_segment_plan_tests(nb::module_ & m);             // testing.cpp
void bind_lookup_length_tests(nb::module_ & m);            // testing.cpp
void bind_pool_tests(nb::module_ & m);                     // testing.cpp
void bind_exit_feature_tests(nb::module_ & m);             // testing.cpp
void bind_gate_tests(nb::module_ & m);                     // testing.cpp
void bind_session_testing(nb::module_ & t);                // session_testing.cpp
void bind_toy_draft_source(nb::module_ & m);               // cpp/testing/toy_draft_source.cpp
void bind_rpc(nb::module_ & m);                            // cpp/rpc/bindings_rpc.cpp
