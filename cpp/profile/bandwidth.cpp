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

// The way the single-column kernels read weights: vector loads, two
// sequential streams per thread (row r beside row r + h). On the EPYCs of
// docs/bench/floor-2026-12-07 this read 52 GB/s where sum_words read 45-47,
// and a token of the 1.5B came out below the scalar probe's floor.
using Words4 = uint64_t __attribute__((vector_size(32)));
static uint64_t sum_two_streams(const uint64_t * p, size_t n) {
    const Words4 * a = (const Words4 *) p;
    const size_t h = n / 8;  // Words4 per stream
    const Words4 * b = a + h;
    Words4 s0 = {}, s1 = {}, s2 = {}, s3 = {};
    for (size_t i = 0; i + 2 <= h; i += 2) s0 += a[i], s1 += a[i + 1], s2 += b[i], s3 += b[i + 1];
    const Words4 s = s0 + s1 + s2 + s3;
    return s[0] + s[1] + s[2] + s[3];
}

// best-of-reps GB/s of `sum` over the buffer split among n_threads threads
static double best_read(const uint64_t * buf, size_t words, int n_threads, int reps,
                        uint64_t (*sum)(const uint64_t *, size_t)) {
    std::vector<uint64_t> sink(n_threads);
    double best = 0.0;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<std::thread> ts;
        for (int t = 0; t < n_threads; ++t)
            ts.emplace_back([&, t] {
                // shares of whole 64-byte lines, so vector loads stay aligned
                const size_t lo = words / 8 * t / n_threads * 8, hi = words / 8 * (t + 1) / n_threads * 8;
                sink[t] = sum(buf + lo, hi - lo);
            });
        for (auto & th : ts) th.join();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, (double) (words * sizeof(uint64_t)) / s / 1e9);
    }
    volatile uint64_t keep = 0;
    for (uint64_t v : sink) keep = keep + v;  // the sums are used: the loads stay
    return best;
}

double read_bandwidth_gbs(size_t bytes, int n_threads, int reps) {
    if (n_threads <= 0 || reps <= 0 || bytes < 4096) throw std::invalid_argument("bad bandwidth probe");
    const size_t words = bytes / sizeof(uint64_t);
    std::vector<uint64_t> mem(words + 8);
    uint64_t * buf = mem.data() + (64 - (uintptr_t) mem.data() % 64) % 64 / sizeof(uint64_t);  // 64-byte aligned
    std::memset(buf, 1, words * sizeof(uint64_t));
    return std::max(best_read(buf, words, n_threads, reps, sum_words),
                    best_read(buf, words, n_threads, reps, sum_two_streams));
}

} // namespace sb
