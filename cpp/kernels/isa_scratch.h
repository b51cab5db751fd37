// Scratch vectors for the translation units compiled with extra instruction
// sets (x86_avx2.cpp, x86_avx512.cpp, x86_repacked_avx2.cpp,
// x86_repacked_avx512.cpp).
//
// Why not plain std::vector there: its out-of-line members are weak symbols,
// and the linker keeps one copy per symbol for the whole module. A
// std::vector<int32_t> grown in an AVX-512 file can hand AVX-512 code to every
// other std::vector<int32_t> in the engine, which then faults on a CPU without
// AVX-512 (the run-time CPU check never sees it). An allocator declared in an
// unnamed namespace makes each file's vector a type of its own, with internal
// linkage, so its members stay in the file that compiled them. The build
// checks these objects for weak symbols and static initializers
// (tools/check_isa_objects.cmake).
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace sb::kernels {
namespace {

template <class T>
struct IsaLocalAllocator {
    using value_type = T;
    IsaLocalAllocator() = default;
    template <class U>
    IsaLocalAllocator(const IsaLocalAllocator<U> &) {}
    // aligned as T asks (the vector types want 32 or 64 bytes)
    T * allocate(size_t n) { return static_cast<T *>(::operator new(n * sizeof(T), std::align_val_t(alignof(T)))); }
    void deallocate(T * p, size_t) { ::operator delete(p, std::align_val_t(alignof(T))); }
    template <class U>
    bool operator==(const IsaLocalAllocator<U> &) const { return true; }
    template <class U>
    bool operator!=(const IsaLocalAllocator<U> &) const { return false; }
};

template <class T>
using ScratchVector = std::vector<T, IsaLocalAllocator<T>>;

} // namespace
} // namespace sb::kernels
