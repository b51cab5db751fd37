// When an early-exit draft exits: the exit head's confidence at a layer, as
// the annealed confidence itself or through the learned exit decision
// (SpecParams::exit_decision). The early-exit source (speculation/exit_source.cpp)
// asks these at each exit check; calibration fits the decision's weights.
#pragma once

#include <cstddef>
#include <vector>

namespace sb {

// max_v softmax(z / T)[v] and its argmax
float annealed_confidence(const float * z, int n, float temperature, int * arg);

// What the learned exit decision (SpecParams::exit_decision) reads of one exit
// check, z the exit-head logits over the candidates:
//   0: log of the annealed confidence at temperature T
//   1: top-1 minus top-2 logit
//   2: entropy of softmax(z) (nats)
//   3: 1 if the top-1 equals prev_arg, the top-1 of the token's previous check (-1: none)
//   4: depth, l / n_layer
// calibrate.py computes the same features in numpy to fit the weights.
constexpr size_t kExitFeatures = 5;
void exit_features(const float * z, int n, float temperature, int prev_arg, float depth, float * f, int * arg);
// sigmoid(w[0] + w[1..] . f)
float exit_probability(const std::vector<float> & w, const float * f);

} // namespace sb
