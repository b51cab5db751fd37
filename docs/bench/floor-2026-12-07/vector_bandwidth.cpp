#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>
#include <cstdint>
static __m256i sum_stream(const __m256i * p, size_t n, int streams) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    if (streams == 1) {
        for (size_t i = 0; i + 4 <= n; i += 4) a = _mm256_add_epi64(a, p[i]), b = _mm256_add_epi64(b, p[i+1]), c = _mm256_add_epi64(c, p[i+2]), d = _mm256_add_epi64(d, p[i+3]);
    } else {
        const size_t h = n / 2; const __m256i * q = p + h;
        for (size_t i = 0; i + 2 <= h; i += 2) a = _mm256_add_epi64(a, p[i]), b = _mm256_add_epi64(b, p[i+1]), c = _mm256_add_epi64(c, q[i]), d = _mm256_add_epi64(d, q[i+1]);
    }
    return _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
}
int main() {
    const size_t bytes = 1ull << 30, n = bytes / 32;
    __m256i * buf = (__m256i *) aligned_alloc(64, bytes); memset(buf, 1, bytes);
    for (int streams : {1, 2, 1, 2}) {
        double best = 0;
        for (int r = 0; r < 5; ++r) {
            auto t0 = std::chrono::steady_clock::now();
            std::vector<std::thread> ts; std::vector<__m256i> sink(2);
            for (int t = 0; t < 2; ++t) ts.emplace_back([&, t] { sink[t] = sum_stream(buf + n * t / 2, n / 2, streams); });
            for (auto & th : ts) th.join();
            double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            volatile long long k = _mm256_extract_epi64(sink[0], 0) + _mm256_extract_epi64(sink[1], 1); (void) k;
            best = std::max(best, bytes / s / 1e9);
        }
        std::printf("%d stream(s) per thread, 2 threads, 256-bit loads: %.1f GB/s\n", streams, best);
    }
}
