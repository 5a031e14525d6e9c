#include "engine/optimizer.hpp"

#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>

#include "base/error.hpp"

namespace adaqp::engine {

std::string to_string(LrSchedule s) {
  return s == LrSchedule::cosine ? "cosine" : "constant";
}

LrSchedule parse_lr_schedule(const std::string& text) {
  if (text == "constant") return LrSchedule::constant;
  if (text == "cosine") return LrSchedule::cosine;
  throw Error("--lr-schedule '" + text + "': allowed constant, cosine");
}

double AdamConfig::lr_at(std::int64_t step) const {
  if (schedule == LrSchedule::constant) return lr;
  if (steps < 1 || step < 1 || step > steps)
    throw std::logic_error("cosine learning rate of step " + std::to_string(step) + " of " + std::to_string(steps));
  return lr * 0.5 * (1.0 + std::cos(std::numbers::pi * double(step - 1) / double(steps)));
}

template <class T>
Adam<T>::Adam(const AdamConfig& config, const std::vector<Param<T>*>& params) : config_(config), params_(params) {
  if (!(config.lr > 0)) throw Error("--lr " + std::to_string(config.lr) + ": must be > 0");
  if (!(config.weight_decay >= 0))
    throw Error("--weight-decay " + std::to_string(config.weight_decay) + ": must be >= 0");
  if (config.schedule == LrSchedule::cosine && config.steps < 1)  // the trainer sets it: fail here, not at step 1
    throw std::logic_error("Adam: a cosine schedule needs its step count (AdamConfig::steps)");
  for (auto* p : params_) {
    m_.emplace_back(p->value.data.size(), 0.0);
    v_.emplace_back(p->value.data.size(), 0.0);
  }
}

template <class T>
void Adam<T>::step() {
  begin_step();
  for (std::size_t i = 0; i < params_.size(); ++i) update(i, 0, std::int64_t(params_[i]->value.data.size()));
}

template <class T>
void Adam<T>::begin_step() {
  ++step_;
  c1_ = 1.0 - std::pow(config_.beta1, double(step_));
  c2_ = 1.0 - std::pow(config_.beta2, double(step_));
  lr_ = config_.lr_at(step_);
}

template <class T>
void Adam<T>::update(std::size_t param, std::int64_t begin, std::int64_t end) {
  if (step_ == 0) throw std::logic_error("Adam::update before begin_step");
  if (param >= params_.size() || begin < 0 || begin > end || end > std::int64_t(params_[param]->value.data.size()))
    throw std::logic_error("Adam::update: elements [" + std::to_string(begin) + ", " + std::to_string(end) +
                           ") of parameter " + std::to_string(param));
  auto& w = params_[param]->value.data;
  const auto& g = params_[param]->grad.data;
  auto& m = m_[param];
  auto& v = v_[param];
  const double c1 = c1_, c2 = c2_, lr = lr_;
#pragma omp parallel for simd schedule(static)
  for (std::int64_t k = begin; k < end; ++k) {
    const double gk = double(g[k]) + config_.weight_decay * double(w[k]);
    m[k] = config_.beta1 * m[k] + (1.0 - config_.beta1) * gk;
    v[k] = config_.beta2 * v[k] + (1.0 - config_.beta2) * gk * gk;
    w[k] = T(double(w[k]) - lr * (m[k] / c1) / (std::sqrt(v[k] / c2) + config_.eps));
  }
}

template <class T>
void Adam<T>::set_state(const AdamState& s) {
  if (s.m.size() != m_.size() || s.v.size() != v_.size())
    throw std::logic_error("Adam::set_state: " + std::to_string(s.m.size()) + " moment vectors for " +
                           std::to_string(m_.size()) + " parameters");
  for (std::size_t i = 0; i < m_.size(); ++i)
    if (s.m[i].size() != m_[i].size() || s.v[i].size() != v_[i].size())
      throw std::logic_error("Adam::set_state: moments of parameter " + std::to_string(i) + " have another size");
  step_ = s.step;
  m_ = s.m;
  v_ = s.v;
}

template class Adam<float>;
template class Adam<double>;

}  // namespace adaqp::engine
