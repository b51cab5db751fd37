#include "speculation/exit_decision.h"

#include <cmath>

namespace sb {

float annealed_confidence(const float * z, int n, float temperature, int * arg) {
    int best = 0;
    for (int i = 1; i < n; ++i)
        if (z[i] > z[best]) best = i;
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += std::exp((double) (z[i] - z[best]) / temperature);
    *arg = best;
    return (float) (1.0 / sum);
}

void exit_features(const float * z, int n, float temperature, int prev_arg, float depth, float * f, int * arg) {
    int best = 0, second = -1;
    for (int i = 1; i < n; ++i) {
        if (z[i] > z[best]) second = best, best = i;
        else if (second < 0 || z[i] > z[second]) second = i;
    }
    double sum_t = 0, sum = 0, sum_pz = 0;
    for (int i = 0; i < n; ++i) {
        const double d = (double) z[i] - z[best], e = std::exp(d);
        sum_t += std::exp(d / temperature);
        sum += e;
        sum_pz += e * d;
    }
    *arg = best;
    f[0] = (float) -std::log(sum_t);
    f[1] = second < 0 ? 0.0f : z[best] - z[second];
    f[2] = (float) (std::log(sum) - sum_pz / sum);
    f[3] = best == prev_arg ? 1.0f : 0.0f;
    f[4] = depth;
}

float exit_probability(const std::vector<float> & w, const float * f) {
    double s = w[0];
    for (size_t i = 0; i < kExitFeatures; ++i) s += (double) w[i + 1] * f[i];
    return (float) (1.0 / (1.0 + std::exp(-s)));
}

} // namespace sb
