// Python bindings of ggml's RPC backend (kept out of bindings.cpp): the
// exception a failed worker raises, and the worker's entry point.
#include "rpc/rpc.h"

#include <ggml.h>

#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

namespace nb = nanobind;
using namespace nb::literals;

void bind_rpc(nb::module_ & m) {
    // ConnectionError: what a Python caller already handles for a peer that
    // is gone or unreachable
    nb::exception<sb::rpc::RpcError>(m, "RpcError", PyExc_ConnectionError);
    m.def("rpc_available", &sb::rpc::available, "whether this ggml has the RPC backend (GGML_RPC=ON)");
    // for the tests: ggml's abort, called on a thread inside an AbortGuard,
    // must come back here as an exception (through ggml_abort's C frame)
    m.def("_guarded_ggml_abort", [](const std::string & message) -> std::string {
        try {
            sb::rpc::AbortGuard guard;
            ggml_abort("test", 1, "%s", message.c_str());
        } catch (const sb::rpc::GgmlAbort & e) {
            return e.what();
        }
        return "";
    });
    m.def(
        "rpc_serve",
        [](const std::string & endpoint, int n_threads, const std::string & cache_dir) {
            nb::gil_scoped_release nogil;  // serves until the process ends
            sb::rpc::serve(endpoint, n_threads, cache_dir);
        },
        "endpoint"_a, "n_threads"_a, "cache_dir"_a = "",
        "ggml's RPC server over this machine's CPU on host:port; returns only by raising, where it cannot start");
}
