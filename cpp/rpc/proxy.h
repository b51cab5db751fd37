// A relay between ggml's RPC client and one worker, in this process.
//
// Why: ggml's RPC client (ggml-rpc.cpp) does its socket I/O on a dispatcher
// thread of its own and calls GGML_ABORT there when a worker's connection
// breaks or an answer has the wrong size; an abort on that thread cannot be
// turned into an exception (no frame of ours is on it), so a worker that dies
// would take this process with it. ggml talks to a Proxy on loopback instead;
// the Proxy talks to the worker. When the worker fails (connection refused or
// broken, an answer of the wrong size, no answer within the timeout) the Proxy
// records why and from then on answers ggml itself, with answers of the sizes
// ggml expects (zeros, a valid handshake), so ggml never aborts; the engine
// checks failed() after each call into ggml and throws RpcError.
//
// The Proxy knows only the framing of ggml's protocol (version 7: a command
// byte, a size, a payload; an answer is a size and a payload) and which
// commands are answered, with what size.
#pragma once

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sb::rpc {

// A worker failed or cannot be used; the message names it and says how.
struct RpcError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// "host:port" -> (host, port); throws std::invalid_argument naming the endpoint.
void split_endpoint(const std::string & endpoint, std::string & host, int & port);

// A connected TCP socket to host:port, or -1 with why in `error`; gives up
// after timeout_s (connect and name lookup).
int connect_to(const std::string & host, int port, double timeout_s, std::string & error);

class Proxy {
  public:
    // Listens on 127.0.0.1 (a free port); connects to `worker` when ggml connects.
    // timeout_s: how long one send to or answer from the worker may take.
    Proxy(const std::string & worker, double timeout_s);
    ~Proxy();
    Proxy(const Proxy &) = delete;
    Proxy & operator=(const Proxy &) = delete;

    // the endpoint ggml is given ("127.0.0.1:<port>")
    std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
    const std::string & worker() const { return worker_; }
    bool failed() const { return failed_.load(); }
    // why the worker failed ("" while it has not)
    std::string failure() const;

  private:
    void accept_loop();
    void relay(int client);
    bool serve_one(int client, int & upstream);
    void fail(const std::string & why);

    std::string worker_, host_;
    int port_ = 0, worker_port_ = 0;
    double timeout_s_;
    int listen_fd_ = -1;
    std::atomic<bool> stopping_{ false };
    std::atomic<bool> failed_{ false };
    mutable std::mutex mutex_;
    std::string failure_;
    std::vector<int> clients_;    // open sockets, both sides, shut down on destruction
    std::vector<int> upstreams_;  // (a relay may be waiting for a worker's answer)
    std::vector<std::thread> threads_;
    std::thread acceptor_;
};

} // namespace sb::rpc
