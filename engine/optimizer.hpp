// Adam with L2 weight decay added to the gradient (PyTorch's Adam(weight_decay=...) semantics):
//   g <- grad + wd * w ; m <- b1 m + (1-b1) g ; v <- b2 v + (1-b2) g^2 ;
//   w <- w - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).
// Every rank applies the same step to the same (all-reduced) gradients.
#pragma once
#include <vector>

#include "engine/model.hpp"

namespace adaqp::engine {

struct AdamConfig {
  double lr = 0.01, weight_decay = 5e-4, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

// Adam's state beyond the parameters: steps taken and the moment estimates, one vector per
// parameter in Model::params() order (what a checkpoint saves).
struct AdamState {
  long step = 0;
  std::vector<std::vector<double>> m, v;
};

template <class T>
class Adam {
 public:
  Adam(const AdamConfig& config, const std::vector<Param<T>*>& params);
  void step();  // one update of every parameter from its grad
  AdamState state() const { return {step_, m_, v_}; }
  // Throws std::logic_error when the shapes differ from this optimizer's parameters.
  void set_state(const AdamState& s);

 private:
  AdamConfig config_;
  std::vector<Param<T>*> params_;
  std::vector<std::vector<double>> m_, v_;
  long step_ = 0;
};

}  // namespace adaqp::engine
