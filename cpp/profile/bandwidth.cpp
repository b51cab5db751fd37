#include "profile/bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

namespace sb {

// Four independent sums so the loop is bound by loads, not by one add chain.
static uint64_t sum_words(const uint64_t * p, size_t n) {
    uint64_t a = 0, b = 0, c = 0, d = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) a += p[i], b += p[i + 1], c += p[i + 2], d += p[i + 3];
    for (; i < n; ++i) a += p[i];
    return a + b + c + d;
}

double read_bandwidth_gbs(size_t bytes, int n_threads, int reps) {
    if (n_threads <= 0 || reps <= 0 || bytes < 4096) throw std::invalid_argument("bad bandwidth probe");
    const size_t words = bytes / sizeof(uint64_t);
    std::vector<uint64_t> buf(words);
    std::memset(buf.data(), 1, words * sizeof(uint64_t));
    std::vector<uint64_t> sink(n_threads);
    double best = 0.0;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<std::thread> ts;
        for (int t = 0; t < n_threads; ++t)
            ts.emplace_back([&, t] {
                const size_t lo = words * t / n_threads, hi = words * (t + 1) / n_threads;
                sink[t] = sum_words(buf.data() + lo, hi - lo);
            });
        for (auto & th : ts) th.join();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, (double) (words * sizeof(uint64_t)) / s / 1e9);
    }
    volatile uint64_t keep = 0;
    for (uint64_t v : sink) keep = keep + v;  // the sums are used: the loads stay
    return best;
}

} // namespace sb
