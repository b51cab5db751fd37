// The floor of the pair kernel's inner step on this CPU: one sub-block of 8 rows x 32 values
// times two columns (16 maddubs, 4 madd, 4 loads of weights per column pair, 128-bit
// broadcasts) in hand-written asm, no spills. g++ -O2 floor_asm.cpp
#include <immintrin.h>
#include <chrono>
#include <cstdio>
static __attribute__((aligned(64))) char W[4096], A[4096];
#define N 20000000L
int main() {
  for (int r = 0; r < 3; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < N; ++i) asm volatile(
      // one sub-block, two columns: ymm0-3 i accumulators, ymm4-7 t accumulators
      "vbroadcasti128 (%1), %%ymm8\n vbroadcasti128 512(%1), %%ymm9\n"
      "vpunpcklqdq %%ymm8, %%ymm8, %%ymm10\n vpunpcklqdq %%ymm9, %%ymm9, %%ymm11\n"
      "vmovdqa (%0), %%ymm12\n vpmaddubsw %%ymm10, %%ymm12, %%ymm0\n vpmaddubsw %%ymm11, %%ymm12, %%ymm2\n"
      "vmovdqa 32(%0), %%ymm12\n vpmaddubsw %%ymm10, %%ymm12, %%ymm1\n vpmaddubsw %%ymm11, %%ymm12, %%ymm3\n"
      "vpunpckhqdq %%ymm8, %%ymm8, %%ymm10\n vpunpckhqdq %%ymm9, %%ymm9, %%ymm11\n"
      "vmovdqa 64(%0), %%ymm12\n vpmaddubsw %%ymm10, %%ymm12, %%ymm13\n vpaddw %%ymm13, %%ymm0, %%ymm0\n vpmaddubsw %%ymm11, %%ymm12, %%ymm13\n vpaddw %%ymm13, %%ymm2, %%ymm2\n"
      "vmovdqa 96(%0), %%ymm12\n vpmaddubsw %%ymm10, %%ymm12, %%ymm13\n vpaddw %%ymm13, %%ymm1, %%ymm1\n vpmaddubsw %%ymm11, %%ymm12, %%ymm13\n vpaddw %%ymm13, %%ymm3, %%ymm3\n"
      "vbroadcasti128 16(%1), %%ymm8\n vbroadcasti128 528(%1), %%ymm9\n"
      "vpunpcklqdq %%ymm8, %%ymm8, %%ymm10\n vpunpcklqdq %%ymm9, %%ymm9, %%ymm11\n"
      "vmovdqa 128(%0), %%ymm12\n vpmaddubsw %%ymm10, %%ymm12, %%ymm13\n vpaddw %%ymm13, %%ymm0, %%ymm0\n vpmaddubsw %%ymm11, %%ymm12, %%ymm13\n vpaddw %%ymm13, %%ymm2, %%ymm2\n"
      "vmovdqa 160(%0), %%ymm12\n vpmaddubsw %%ymm10, %%ymm12, %%ymm13\n vpaddw %%ymm13, %%ymm1, %%ymm1\n vpmaddubsw %%ymm11, %%ymm12, %%ymm13\n vpaddw %%ymm13, %%ymm3, %%ymm3\n"
      "vpunpckhqdq %%ymm8, %%ymm8, %%ymm10\n vpunpckhqdq %%ymm9, %%ymm9, %%ymm11\n"
      "vmovdqa 192(%0), %%ymm12\n vpmaddubsw %%ymm10, %%ymm12, %%ymm13\n vpaddw %%ymm13, %%ymm0, %%ymm0\n vpmaddubsw %%ymm11, %%ymm12, %%ymm13\n vpaddw %%ymm13, %%ymm2, %%ymm2\n"
      "vmovdqa 224(%0), %%ymm12\n vpmaddubsw %%ymm10, %%ymm12, %%ymm13\n vpaddw %%ymm13, %%ymm1, %%ymm1\n vpmaddubsw %%ymm11, %%ymm12, %%ymm13\n vpaddw %%ymm13, %%ymm3, %%ymm3\n"
      "vpmaddwd 256(%0), %%ymm0, %%ymm0\n vpaddd %%ymm0, %%ymm4, %%ymm4\n vpmaddwd 288(%0), %%ymm1, %%ymm1\n vpaddd %%ymm1, %%ymm5, %%ymm5\n"
      "vpmaddwd 256(%0), %%ymm2, %%ymm2\n vpaddd %%ymm2, %%ymm6, %%ymm6\n vpmaddwd 288(%0), %%ymm3, %%ymm3\n vpaddd %%ymm3, %%ymm7, %%ymm7\n"
      :: "r"(W), "r"(A) : "memory");
    double c = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() * 2.91e9 / N;
    printf("one sub-block x 2 columns: %.1f cycles -> %.1f per column-group\n", c, c * 8 / 2);
  }
}
