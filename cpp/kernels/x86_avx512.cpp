// AVX-512 VNNI (with VL, BW) build of the x86 kernels (x86_kernels.inl):
// dpbusd forms the integer sums, and 32 vector registers hold 8 columns.
#include "kernels/kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#define SB_X86_ISA "sb_avx512vnni"
#define SB_X86_ENTRY x86_avx512vnni_kernel
#include "kernels/x86_kernels.inl"
#else
namespace sb::kernels {
const Kernel * x86_avx512vnni_kernel(ggml_type) { return nullptr; }
}
#endif
