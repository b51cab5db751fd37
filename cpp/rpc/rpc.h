// ggml's RPC backend through the engine: the workers' devices, the worker
// entry point, and ggml's aborts turned into exceptions while the engine is in
// ggml on behalf of a model with RPC workers.
#pragma once

#include "rpc/proxy.h"

#include <ggml-backend.h>

#include <memory>
#include <string>
#include <vector>

namespace sb::rpc {

// ggml called GGML_ABORT on a thread inside an AbortGuard.
struct GgmlAbort : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// While one lives on a thread, a GGML_ABORT on that thread throws GgmlAbort
// (from ggml's abort callback, before ggml would call abort()); elsewhere ggml
// aborts as it always does. Why: ggml's RPC client aborts on the calling thread
// where a worker's handshake is wrong (version, a broken answer); the engine
// unwinds from there, marks itself broken and is never used again.
class AbortGuard {
  public:
    AbortGuard();
    ~AbortGuard();
    AbortGuard(const AbortGuard &) = delete;
    AbortGuard & operator=(const AbortGuard &) = delete;
};

// Whether this ggml has the RPC backend (llama-cpp-python built with GGML_RPC=ON).
bool available();

// The devices of one worker, reached through its Proxy. Throws RpcError where
// the worker cannot be reached or answers wrongly, std::runtime_error where
// ggml has no RPC backend.
std::vector<ggml_backend_dev_t> worker_devices(Proxy & proxy);

// Throws RpcError where one of the proxies' workers failed.
void check(const std::vector<std::unique_ptr<Proxy>> & proxies);

// ggml's RPC server on `endpoint` ("host:port") over this machine's CPU with
// n_threads threads; serves one client at a time and returns only if it
// cannot start (why in the exception).
void serve(const std::string & endpoint, int n_threads, const std::string & cache_dir);

} // namespace sb::rpc
