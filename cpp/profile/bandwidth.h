// Memory read bandwidth on the machine at hand: the floor under single-token
// decoding, which must stream every weight once per token.
#pragma once

#include <cstddef>

namespace sb {

// Best-of-reps GB/s of n_threads threads each summing its share of a buffer
// of `bytes` (allocated and touched first, so page faults are not timed):
// the faster of 64-bit scalar sums and vector sums over two streams per
// thread (how the single-column kernels read).
double read_bandwidth_gbs(size_t bytes, int n_threads, int reps = 3);

} // namespace sb
