// Zen 5 instruction throughput, register-only, 12 independent chains (inline asm),
// against a dependent add chain for the clock. g++ -O2 -march=native zmm_throughput.cpp
#include <chrono>
#include <cstdio>
#define R8(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11)
int main(){
  const long N=200000000;
  auto t0=std::chrono::steady_clock::now();
  for(long i=0;i<N;++i) asm volatile("add $1, %%rax\n" ::: "rax");
  double clk=std::chrono::duration<double,std::nano>(std::chrono::steady_clock::now()-t0).count()/N;
  // dependent add chain with 1-cycle latency: 
  t0=std::chrono::steady_clock::now();
  for(long i=0;i<N/4;++i) asm volatile("add $1, %%rax\n add $1, %%rax\n add $1, %%rax\n add $1, %%rax\n" ::: "rax");
  double dep=std::chrono::duration<double,std::nano>(std::chrono::steady_clock::now()-t0).count()/N;
  printf("add chain: %.3f ns per add -> %.2f GHz\n", dep, 1/dep);
  const long M=50000000;
#define DP(j) "vpdpbusd %%zmm30, %%zmm31, %%zmm" #j "\n"
  t0=std::chrono::steady_clock::now();
  for(long i=0;i<M;++i) asm volatile(R8(DP) ::: "xmm0","xmm1","xmm2","xmm3","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11");
  double d=std::chrono::duration<double,std::nano>(std::chrono::steady_clock::now()-t0).count()/(M*12.0);
  printf("vpdpbusd zmm x12 indep: %.3f ns = %.2f cycles each\n", d, d/dep);
#define DPY(j) "vpdpbusd %%ymm30, %%ymm31, %%ymm" #j "\n"
  t0=std::chrono::steady_clock::now();
  for(long i=0;i<M;++i) asm volatile(R8(DPY) ::: "xmm0","xmm1","xmm2","xmm3","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11");
  d=std::chrono::duration<double,std::nano>(std::chrono::steady_clock::now()-t0).count()/(M*12.0);
  printf("vpdpbusd ymm x12 indep: %.3f ns = %.2f cycles each\n", d, d/dep);
#define FM(j) "vfmadd231ps %%zmm30, %%zmm31, %%zmm" #j "\n"
  t0=std::chrono::steady_clock::now();
  for(long i=0;i<M;++i) asm volatile(R8(FM) ::: "xmm0","xmm1","xmm2","xmm3","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11");
  d=std::chrono::duration<double,std::nano>(std::chrono::steady_clock::now()-t0).count()/(M*12.0);
  printf("vfmadd zmm x12 indep: %.3f ns = %.2f cycles each\n", d, d/dep);
#define CV(j) "vcvtdq2ps %%zmm30, %%zmm" #j "\n"
  t0=std::chrono::steady_clock::now();
  for(long i=0;i<M;++i) asm volatile(R8(CV) ::: "xmm0","xmm1","xmm2","xmm3","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11");
  d=std::chrono::duration<double,std::nano>(std::chrono::steady_clock::now()-t0).count()/(M*12.0);
  printf("vcvtdq2ps zmm x12 indep: %.3f ns = %.2f cycles each\n", d, d/dep);
#define MIX(j) "vpdpbusd %%zmm30, %%zmm31, %%zmm" #j "\n vcvtdq2ps %%zmm30, %%zmm" #j "\n vmulps %%zmm30, %%zmm31, %%zmm" #j "\n vfmadd231ps %%zmm30, %%zmm31, %%zmm" #j "\n"
  t0=std::chrono::steady_clock::now();
  for(long i=0;i<M;++i) asm volatile(R8(MIX) ::: "xmm0","xmm1","xmm2","xmm3","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11");
  d=std::chrono::duration<double,std::nano>(std::chrono::steady_clock::now()-t0).count()/(M*12.0);
  printf("dpbusd+cvt+mul+fma zmm (indep-ish) x12: %.3f ns = %.2f cycles per group\n", d, d/dep);
}
