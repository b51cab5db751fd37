// Compute time by kind of operation, for the profile: with it on, the
// scheduler computes every node alone (ggml's eval callback), so the kinds
// add up to more than a normal call's compute (one graph launch per node);
// the shares are what it is for.
#pragma once

#include <ggml.h>

#include <cstdint>
#include <map>
#include <string>

namespace sb {

struct OpTiming {
    struct Kind {
        int64_t count = 0;
        double ms = 0;
    };
    std::map<std::string, Kind> by_kind;  // e.g. "mul_mat q4_1", "custom q8_0", "soft_max"
    double mark_ms = 0;                   // when the node now computing started
    // ggml_backend_sched_eval_callback with this OpTiming as user data
    static bool callback(ggml_tensor * t, bool ask, void * user_data);
    static std::string kind_of(const ggml_tensor * t);
};

} // namespace sb
