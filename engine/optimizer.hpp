// Adam with L2 weight decay added to the gradient (PyTorch's Adam(weight_decay=...) semantics):
//   g <- grad + wd * w ; m <- b1 m + (1-b1) g ; v <- b2 v + (1-b2) g^2 ;
//   w <- w - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).
// Every rank applies the same step to the same (all-reduced) gradients. The learning rate of step t
// (one step per epoch) is AdamConfig::lr_at(t): the one definition of the schedules.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/model.hpp"

namespace adaqp::engine {

// --lr-schedule: constant (lr every step) or cosine (from lr down towards 0 over the run's steps).
enum class LrSchedule { constant, cosine };
std::string to_string(LrSchedule s);
// "constant" or "cosine"; anything else throws adaqp::Error naming --lr-schedule and the value.
LrSchedule parse_lr_schedule(const std::string& text);

struct AdamConfig {
  double lr = 0.01, weight_decay = 5e-4, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  LrSchedule schedule = LrSchedule::constant;
  std::int64_t steps = 0;  // cosine: the steps it decays over (the trainer sets the run's epochs)
  // Learning rate of step `step` (1-based): lr for constant; for cosine
  // lr * (1 + cos(pi * (step - 1) / steps)) / 2, i.e. lr at step 1 and lr * (1 + cos(pi (T-1)/T)) / 2
  // (about lr * 2.5 / T^2) at the last step T = steps. Throws std::logic_error for cosine without
  // steps or a step outside [1, steps].
  double lr_at(std::int64_t step) const;
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
  void step();  // one update of every parameter from its grad: begin_step(), then update() of each
  // A step in parts (an update per all-reduce bucket, each as soon as its sums are in): begin_step()
  // counts the step and fixes its learning rate and bias corrections; update(i, b, e) then moves
  // elements [b, e) of parameter i. Every element updated once per step gives exactly step().
  void begin_step();
  void update(std::size_t param, std::int64_t begin, std::int64_t end);
  AdamState state() const { return {step_, m_, v_}; }
  // Throws std::logic_error when the shapes differ from this optimizer's parameters.
  void set_state(const AdamState& s);

 private:
  AdamConfig config_;
  std::vector<Param<T>*> params_;
  std::vector<std::vector<double>> m_, v_;
  long step_ = 0;
  double c1_ = 1, c2_ = 1, lr_ = 0;  // this step's bias corrections and learning rate (begin_step)
};

}  // namespace adaqp::engine
