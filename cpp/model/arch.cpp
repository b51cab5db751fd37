// The list of supported architectures, each defined next to its layer builder
// in cpp/graph/arch_<name>.cpp.
#include "model/arch.h"

namespace sb {

extern const ArchInfo arch_llama, arch_qwen2, arch_qwen3, arch_gemma3;

static const ArchInfo * const kArchitectures[] = { &arch_llama, &arch_qwen2, &arch_qwen3, &arch_gemma3 };

const ArchInfo * find_arch(const std::string & name) {
    for (const ArchInfo * a : kArchitectures)
        if (name == a->name) return a;
    return nullptr;
}

const char * supported_arch_list() {
    static const std::string list = [] {
        std::string s;
        for (const ArchInfo * a : kArchitectures) s += (s.empty() ? "" : ", ") + std::string(a->name);
        return s;
    }();
    return list.c_str();
}

} // namespace sb
