// The floor of Q6_K's per-column step (vec_dot's arithmetic): 8 x (maddubs, madd with the
// scales, add) = one super-block of one column, hand-written, no spills. g++ -O2 q6_floor_asm.cpp
#include <chrono>
#include <cstdio>
static __attribute__((aligned(64))) char A[8192];
#define N 20000000L
int main() {
  for (int r = 0; r < 3; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < N; ++i) asm volatile(
      // 2 columns x 4 chunks: q in ymm0-3, scales ymm4-7, sums ymm8,ymm9
      "vpmaddubsw (%0), %%ymm0, %%ymm10\n vpmaddwd %%ymm4, %%ymm10, %%ymm10\n vpaddd %%ymm10, %%ymm8, %%ymm8\n"
      "vpmaddubsw 32(%0), %%ymm1, %%ymm11\n vpmaddwd %%ymm5, %%ymm11, %%ymm11\n vpaddd %%ymm11, %%ymm8, %%ymm8\n"
      "vpmaddubsw 64(%0), %%ymm2, %%ymm12\n vpmaddwd %%ymm6, %%ymm12, %%ymm12\n vpaddd %%ymm12, %%ymm8, %%ymm8\n"
      "vpmaddubsw 96(%0), %%ymm3, %%ymm13\n vpmaddwd %%ymm7, %%ymm13, %%ymm13\n vpaddd %%ymm13, %%ymm8, %%ymm8\n"
      "vpmaddubsw 1024(%0), %%ymm0, %%ymm10\n vpmaddwd %%ymm4, %%ymm10, %%ymm10\n vpaddd %%ymm10, %%ymm9, %%ymm9\n"
      "vpmaddubsw 1056(%0), %%ymm1, %%ymm11\n vpmaddwd %%ymm5, %%ymm11, %%ymm11\n vpaddd %%ymm11, %%ymm9, %%ymm9\n"
      "vpmaddubsw 1088(%0), %%ymm2, %%ymm12\n vpmaddwd %%ymm6, %%ymm12, %%ymm12\n vpaddd %%ymm12, %%ymm9, %%ymm9\n"
      "vpmaddubsw 1120(%0), %%ymm3, %%ymm13\n vpmaddwd %%ymm7, %%ymm13, %%ymm13\n vpaddd %%ymm13, %%ymm9, %%ymm9\n"
      :: "r"(A) : "memory");
    double c = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() * 2.9e9 / N;
    printf("one super-block x one column (8 maddubs + 8 madd + 8 add): %.1f cycles\n", c);
  }
}
