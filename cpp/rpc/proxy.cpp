#include "rpc/proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>

namespace sb::rpc {

namespace {

// ggml's RPC protocol, version 7 (ggml-rpc.h / ggml-rpc.cpp of the pinned
// llama.cpp): the command numbers whose requests are answered.
enum : uint8_t {
    kAllocBuffer = 0, kGetAlignment = 1, kGetMaxSize = 2, kBufferGetBase = 3, kSetTensorHash = 7,
    kGetTensor = 8, kCopyTensor = 9, kGetDeviceMemory = 11, kGetAllocSize = 13, kHello = 14, kDeviceCount = 15,
};
constexpr uint8_t kProtoMajor = 7;
constexpr size_t kCapsSize = 24;            // RPC_CONN_CAPS_SIZE: the handshake's transport capabilities
constexpr uint64_t kSmallRequest = 1 << 16;  // answered requests are this small; others are streamed

// The size of the answer to `cmd` with this request, or -1 where none is sent.
int64_t answer_size(uint8_t cmd, const std::vector<uint8_t> & req) {
    switch (cmd) {
        case kHello: return 4 + (int64_t) kCapsSize;
        case kDeviceCount: return 4;
        case kAllocBuffer: case kGetDeviceMemory: return 16;
        case kGetAlignment: case kGetMaxSize: case kBufferGetBase: case kGetAllocSize: return 8;
        case kSetTensorHash: case kCopyTensor: return 1;
        case kGetTensor: {  // the request ends with the byte count asked for
            uint64_t n = 0;
            if (req.size() >= 8) std::memcpy(&n, req.data() + req.size() - 8, 8);
            return (int64_t) std::min<uint64_t>(n, (uint64_t) std::numeric_limits<int64_t>::max());
        }
        default: return -1;
    }
}

// What the Proxy answers in the worker's place once it has failed: a valid
// handshake, no devices, no buffer (remote pointer 0), neutral sizes; the
// engine throws before any of it is used as the worker's answer.
std::vector<uint8_t> stand_in_answer(uint8_t cmd, int64_t size) {
    std::vector<uint8_t> a((size_t) size, 0);
    if (cmd == kHello) a[0] = kProtoMajor;
    if (cmd == kGetAlignment) a[0] = 64;
    if (cmd == kGetMaxSize) std::fill(a.begin(), a.end() - 1, 0xff);  // 2^56 - 1: no limit in practice
    return a;
}

bool send_all(int fd, const void * data, size_t n) {
    const char * p = (const char *) data;
    while (n > 0) {
        ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k;
        n -= (size_t) k;
    }
    return true;
}

bool recv_all(int fd, void * data, size_t n) {
    char * p = (char *) data;
    while (n > 0) {
        ssize_t k = ::recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k;
        n -= (size_t) k;
    }
    return true;
}

void set_timeouts(int fd, double timeout_s) {
    timeval tv;
    tv.tv_sec = (time_t) timeout_s;
    tv.tv_usec = (suseconds_t) ((timeout_s - (double) tv.tv_sec) * 1e6);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

void set_nodelay(int fd) {
    int one = 1;  // small commands one after another: Nagle would hold them back
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

std::string errno_text() { return std::strerror(errno); }

} // namespace

void split_endpoint(const std::string & endpoint, std::string & host, int & port) {
    const size_t colon = endpoint.rfind(':');
    const std::string digits = colon == std::string::npos ? "" : endpoint.substr(colon + 1);
    const bool numeric = !digits.empty() && digits.size() <= 5 &&
                         std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (colon == 0 || !numeric || std::stoi(digits) < 1 || std::stoi(digits) > 65535)
        throw std::invalid_argument("RPC worker endpoint must be host:port with a port in [1, 65535], got '" +
                                    endpoint + "'");
    host = endpoint.substr(0, colon);
    port = std::stoi(digits);
}

// Waits for a non-blocking connect to finish within the timeout.
static bool finish_connect(int fd, double timeout_s, std::string & error) {
    pollfd p = { fd, POLLOUT, 0 };
    int r;
    do r = ::poll(&p, 1, (int) (timeout_s * 1000)); while (r < 0 && errno == EINTR);
    if (r == 0) { error = "no answer within " + std::to_string(timeout_s) + " s"; return false; }
    int err = 0;
    socklen_t len = sizeof(err);
    if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        error = std::strerror(r < 0 ? errno : err);
        return false;
    }
    return true;
}

int connect_to(const std::string & host, int port, double timeout_s, std::string & error) {
    addrinfo hints{}, * res = nullptr;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    const int gai = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
    if (gai != 0) { error = std::string("cannot resolve host: ") + gai_strerror(gai); return -1; }
    int fd = -1;
    for (addrinfo * a = res; a; a = a->ai_next) {
        fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) { error = errno_text(); continue; }
        const int flags = fcntl(fd, F_GETFL, 0);
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        const bool now = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0;
        if (now || (errno == EINPROGRESS && finish_connect(fd, timeout_s, error))) {
            fcntl(fd, F_SETFL, flags);
            break;
        }
        if (now == false && errno != EINPROGRESS) error = errno_text();
        ::close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) set_nodelay(fd);
    return fd;
}

Proxy::Proxy(const std::string & worker, double timeout_s) : worker_(worker), timeout_s_(timeout_s) {
    if (!(timeout_s > 0)) throw std::invalid_argument("rpc_timeout must be > 0 seconds");
    split_endpoint(worker, host_, worker_port_);
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // ggml only, never the network
    a.sin_port = 0;
    socklen_t len = sizeof(a);
    if (listen_fd_ < 0 || ::bind(listen_fd_, (sockaddr *) &a, sizeof(a)) != 0 || ::listen(listen_fd_, 4) != 0 ||
        getsockname(listen_fd_, (sockaddr *) &a, &len) != 0) {
        const std::string why = errno_text();
        if (listen_fd_ >= 0) ::close(listen_fd_);
        throw std::runtime_error("cannot open the loopback relay for RPC worker " + worker + ": " + why);
    }
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
}

Proxy::~Proxy() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
    {
        std::lock_guard<std::mutex> lock(mutex_);
        for (int c : clients_) ::shutdown(c, SHUT_RDWR);  // wakes the relays' reads
        for (int u : upstreams_) ::shutdown(u, SHUT_RDWR);
    }
    if (acceptor_.joinable()) acceptor_.join();
    for (std::thread & t : threads_)
        if (t.joinable()) t.join();
    ::close(listen_fd_);
}

std::string Proxy::failure() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return failure_;
}

void Proxy::fail(const std::string & why) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!failed_) failure_ = "RPC worker " + worker_ + ": " + why;
    failed_ = true;
}

void Proxy::accept_loop() {
    while (!stopping_) {
        const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return;  // shut down
        }
        set_nodelay(c);
        std::lock_guard<std::mutex> lock(mutex_);
        if (stopping_) { ::close(c); return; }
        clients_.push_back(c);
        threads_.emplace_back([this, c] { relay(c); });
    }
}

void Proxy::relay(int client) {
    int upstream = -1;
    if (!failed_) {
        std::string error;
        upstream = connect_to(host_, worker_port_, timeout_s_, error);
        if (upstream < 0) fail("cannot connect (" + error + ")");
        else set_timeouts(upstream, timeout_s_);
    }
    const int first_upstream = upstream;  // serve_one may shut it down (and set -1)
    if (first_upstream >= 0) {
        std::lock_guard<std::mutex> lock(mutex_);
        upstreams_.push_back(first_upstream);
    }
    while (!stopping_ && serve_one(client, upstream)) {}
    std::lock_guard<std::mutex> lock(mutex_);
    upstreams_.erase(std::remove(upstreams_.begin(), upstreams_.end(), first_upstream), upstreams_.end());
    if (first_upstream >= 0) ::close(first_upstream);
    clients_.erase(std::remove(clients_.begin(), clients_.end(), client), clients_.end());
    ::close(client);
}

// Streams n bytes of a request from the client to the worker (if it is still
// there); false only when the client is gone.
static bool pump(int client, const int & upstream, uint64_t n, const std::function<void(const std::string &)> & lost) {
    std::vector<char> buf(1 << 16);
    while (n > 0) {
        const size_t k = (size_t) std::min<uint64_t>(n, buf.size());
        if (!recv_all(client, buf.data(), k)) return false;
        if (upstream >= 0 && !send_all(upstream, buf.data(), k)) lost("connection lost while sending (" + errno_text() + ")");
        n -= k;
    }
    return true;
}

// Relays one command and its answer; false when ggml closed the connection.
bool Proxy::serve_one(int client, int & upstream) {
    uint8_t header[9];  // command byte, payload size
    if (!recv_all(client, header, sizeof(header))) return false;
    uint64_t n;
    std::memcpy(&n, header + 1, 8);
    auto drop = [&](const std::string & why) {
        fail(why);
        // shut down, not closed: relay() closes it once it is off upstreams_
        if (upstream >= 0) ::shutdown(upstream, SHUT_RDWR);
        upstream = -1;
    };
    const uint8_t cmd = header[0];
    std::vector<uint8_t> req;
    if (n <= kSmallRequest) {
        req.resize((size_t) n);
        if (!recv_all(client, req.data(), req.size())) return false;
    }
    const int64_t answer = answer_size(cmd, req);
    // no transport upgrade (RDMA) through the relay: the handshake offers none
    if (cmd == kHello) std::fill(req.begin(), req.end(), 0);
    if (upstream >= 0 && !send_all(upstream, header, sizeof(header))) drop("connection lost (" + errno_text() + ")");
    if (n <= kSmallRequest) {
        if (upstream >= 0 && !send_all(upstream, req.data(), req.size())) drop("connection lost (" + errno_text() + ")");
    } else if (!pump(client, upstream, n, drop)) {
        return false;
    }
    if (answer < 0) return true;
    std::vector<uint8_t> out;
    if (upstream >= 0) {
        uint64_t got = 0;
        if (!recv_all(upstream, &got, 8)) {
            drop(errno == EAGAIN || errno == EWOULDBLOCK
                     ? "no answer within " + std::to_string((int) timeout_s_) + " s (rpc_timeout)"
                     : "connection closed (the worker stopped?)");
        } else if (got != (uint64_t) answer) {
            drop("answered garbage (an answer of " + std::to_string(got) + " bytes to command " +
                 std::to_string(cmd) + ", expected " + std::to_string(answer) + ")");
        } else {
            out.resize((size_t) answer);
            if (!recv_all(upstream, out.data(), out.size())) drop("connection lost while answering");
        }
        if (upstream >= 0 && cmd == kHello && out[0] != kProtoMajor)
            drop("speaks ggml RPC protocol " + std::to_string(out[0]) + "." + std::to_string(out[1]) + ", this ggml " +
                 std::to_string(kProtoMajor) + ".x (another llama.cpp version?)");
        if (upstream >= 0 && cmd == kHello) std::fill(out.begin() + 4, out.end(), 0);
    }
    if (upstream < 0) out = stand_in_answer(cmd, answer);
    const uint64_t size = out.size();
    return send_all(client, &size, 8) && send_all(client, out.data(), out.size());
}

} // namespace sb::rpc
