#include "rpc/rpc.h"

#include <ggml.h>

#include <cstdio>
#include <mutex>

namespace sb::rpc {

static thread_local int g_guards = 0;
static ggml_abort_callback_t g_previous = nullptr;

// ggml_abort (ggml.c) calls this, then abort(). Throwing unwinds through
// ggml_abort's C frame, which x86-64 and AArch64 builds give unwind tables.
static void on_ggml_abort(const char * message) {
    if (g_guards > 0) throw GgmlAbort(std::string("ggml: ") + message);
    // ggml's own behaviour without a callback: the message on stderr, then abort()
    if (g_previous) g_previous(message);
    else std::fprintf(stderr, "%s\n", message);
}

AbortGuard::AbortGuard() {
    static std::once_flag once;
    std::call_once(once, [] { g_previous = ggml_set_abort_callback(&on_ggml_abort); });
    ++g_guards;
}

AbortGuard::~AbortGuard() { --g_guards; }

static ggml_backend_reg_t rpc_reg() {
    if (ggml_backend_reg_count() == 0) ggml_backend_load_all();
    return ggml_backend_reg_by_name("RPC");
}

bool available() { return rpc_reg() != nullptr; }

static void * rpc_proc(const char * name) {
    ggml_backend_reg_t reg = rpc_reg();
    void * f = reg ? ggml_backend_reg_get_proc_address(reg, name) : nullptr;
    if (!f)
        throw std::runtime_error("this ggml has no RPC backend (llama-cpp-python was built without GGML_RPC=ON; "
                                 "tools/setup.sh builds it with the backend)");
    return f;
}

std::vector<ggml_backend_dev_t> worker_devices(Proxy & proxy) {
    using add_server_t = ggml_backend_reg_t (*)(const char *);
    auto add_server = (add_server_t) rpc_proc("ggml_backend_rpc_add_server");
    ggml_backend_reg_t reg = nullptr;
    {
        AbortGuard guard;
        try {
            reg = add_server(proxy.endpoint().c_str());
        } catch (const GgmlAbort & e) {
            if (!proxy.failed()) throw RpcError("RPC worker " + proxy.worker() + ": " + e.what());
        }
    }
    if (proxy.failed()) throw RpcError(proxy.failure());
    std::vector<ggml_backend_dev_t> devs;
    for (size_t i = 0; reg && i < ggml_backend_reg_dev_count(reg); ++i) devs.push_back(ggml_backend_reg_dev_get(reg, i));
    if (devs.empty()) throw RpcError("RPC worker " + proxy.worker() + " has no devices");
    return devs;
}

void check(const std::vector<std::unique_ptr<Proxy>> & proxies) {
    for (const auto & p : proxies)
        if (p->failed()) throw RpcError(p->failure());
}

void serve(const std::string & endpoint, int n_threads, const std::string & cache_dir) {
    using start_t = void (*)(const char *, const char *, size_t, size_t, ggml_backend_dev_t *);
    auto start = (start_t) rpc_proc("ggml_backend_rpc_start_server");
    std::string host;
    int port;
    split_endpoint(endpoint, host, port);
    if (n_threads <= 0) throw std::invalid_argument("threads must be positive");
    ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (!cpu) throw std::runtime_error("ggml has no CPU device");
    start(endpoint.c_str(), cache_dir.empty() ? nullptr : cache_dir.c_str(), (size_t) n_threads, 1, &cpu);
    throw std::runtime_error("the RPC server could not start on " + endpoint +
                             " (is the port in use, or the host not an address of this machine?)");
}

} // namespace sb::rpc
