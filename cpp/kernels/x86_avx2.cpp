// AVX2 + FMA + F16C build of the x86 kernels (x86_kernels.inl).
#include "kernels/kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#define SB_X86_ISA "sb_avx2"
#define SB_X86_ENTRY x86_avx2_kernel
#include "kernels/x86_kernels.inl"
#else
namespace sb::kernels {
const Kernel * x86_avx2_kernel(ggml_type) { return nullptr; }
}
#endif
