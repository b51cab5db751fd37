#include "engine/op_timing.h"

#include <chrono>

namespace sb {

static double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// mul_mat and our custom ops by the type of what they read (the weight), other ops by name
std::string OpTiming::kind_of(const ggml_tensor * t) {
    std::string k = ggml_op_desc(t);
    for (auto & c : k) c = (char) std::tolower((unsigned char) c);
    if ((t->op == GGML_OP_MUL_MAT || t->op == GGML_OP_CUSTOM) && t->src[0])
        k += std::string(" ") + ggml_type_name(t->src[0]->type) + (t->type == GGML_TYPE_I8 ? " (quantize)" : "");
    return k;
}

bool OpTiming::callback(ggml_tensor * t, bool ask, void * user_data) {
    auto * self = (OpTiming *) user_data;
    if (ask) {
        self->mark_ms = now_ms();  // every node is asked for: computed alone, right after
        return true;
    }
    Kind & k = self->by_kind[kind_of(t)];
    k.count++;
    k.ms += now_ms() - self->mark_ms;
    return true;
}

} // namespace sb
