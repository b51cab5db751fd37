// ggml graph of 1000 tiny ops (ggml_scale on N floats): microseconds per node with T threads, i.e. what a node's barrier costs.
// g++ -O2 -std=gnu++17 barrier_cost.cpp -I.venv/lib/python3.11/site-packages/include -L$L -lggml-cpu -lggml-base -lggml -Wl,-rpath,$PWD/$L; ./a.out N T
#include "ggml.h"
#include "ggml-cpu.h"
#include <chrono>
#include <cstdio>
#include <cstdlib>
int main(int argc, char ** argv) {
    int nodes = 1000, n = argc > 1 ? atoi(argv[1]) : 64, threads = argc > 2 ? atoi(argv[2]) : 2;
    ggml_init_params p = { 256u << 20, nullptr, false };
    ggml_context * ctx = ggml_init(p);
    ggml_tensor * x = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, n);
    for (int i = 0; i < n; ++i) ((float *) x->data)[i] = 1.0f;
    ggml_tensor * y = x;
    for (int i = 0; i < nodes; ++i) y = ggml_scale(ctx, y, 1.0f);
    ggml_cgraph * g = ggml_new_graph_custom(ctx, 4096, false);
    ggml_build_forward_expand(g, y);
    ggml_cplan plan = ggml_graph_plan(g, threads, nullptr);
    for (int rep = 0; rep < 5; ++rep) {
        auto t0 = std::chrono::steady_clock::now();
        for (int it = 0; it < 20; ++it) ggml_graph_compute(g, &plan);
        auto t1 = std::chrono::steady_clock::now();
        printf("n=%d threads=%d: %.2f us per node\n", n, threads, std::chrono::duration<double, std::micro>(t1 - t0).count() / 20 / nodes);
    }
}
