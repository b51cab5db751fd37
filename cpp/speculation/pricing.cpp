#include "speculation/pricing.h"

#include <algorithm>

namespace sb {

int best_draft_length(double p, int max_k, double per_draft, const std::function<double(int)> & relative_cost) {
    return best_chain_length(std::vector<double>((size_t) std::max(max_k, 1), p), per_draft, relative_cost);
}

int best_chain_length(const std::vector<double> & accept, double per_draft,
                      const std::function<double(int)> & relative_cost) {
    double gain = 1.0, reach = 1.0, best_rate = 0.0;  // reach: the chance that draft k is tried and accepted
    int best = 1;
    for (int k = 1; k <= (int) accept.size(); ++k) {
        reach *= std::clamp(accept[k - 1], 0.0, 1.0);
        gain += reach;
        const double rate = gain / (k * per_draft + relative_cost(k + 1));
        if (rate > best_rate) best_rate = rate, best = k;
    }
    return best;
}

void PassCost::record(int width, double t) {
    if (width < 1 || width >= kWidths || !(t > 0)) return;
    n[width]++;
    ms[width] += (t - ms[width]) / std::min(n[width], 8);  // a running mean of the recent passes
}

double PassCost::prior_excess(int width, const std::vector<float> & prior) {
    const int n = (int) prior.size();
    if (n < 2) return kPriorSlope * (width - 1);
    // past the measured widths: the line through the last two
    const double e = width <= n ? prior[width - 1] - 1.0
                                : prior[n - 1] - 1.0 + (double) (prior[n - 1] - prior[n - 2]) * (width - n);
    // never free: a profile measured on a busy machine can say so, and a
    // zero excess could not be scaled to what this request measures
    return std::max(e, kMinSlope * (width - 1));
}

double PassCost::relative(int width, const std::vector<float> & prior) const {
    if (width <= 1) return 1.0;
    const double expect = prior_excess(width, prior);
    if (n[1] == 0) return 1.0 + expect;
    if (width < kWidths && n[width] > 0) return ms[width] / ms[1];
    double sxy = 0, sxx = 0;  // the prior's excess scaled to the widths measured (least squares through 0)
    for (int w = 2; w < kWidths; ++w) {
        if (n[w] == 0) continue;
        const double e = prior_excess(w, prior);
        sxy += e * (ms[w] / ms[1] - 1.0), sxx += e * e;
    }
    const double scale = sxx > 0 ? std::max(0.0, sxy / sxx) : 1.0;
    return 1.0 + scale * expect;
}

} // namespace sb
