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

template <class T>
class Adam {
 public:
  Adam(const AdamConfig& config, const std::vector<Param<T>*>& params);
  void step();  // one update of every parameter from its grad

 private:
  AdamConfig config_;
  std::vector<Param<T>*> params_;
  std::vector<std::vector<double>> m_, v_;
  long step_ = 0;
};

}  // namespace adaqp::engine
