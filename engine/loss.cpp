#include "engine/loss.hpp"

#include <algorithm>
#include <cmath>

namespace adaqp::engine {

template <class T>
double softmax_cross_entropy(MatrixView<const T> logits, const std::vector<std::int32_t>& labels,
                             const std::vector<std::uint8_t>& mask, double normaliser, MatrixView<T> d_logits) {
  const std::int64_t n = logits.rows, c = logits.cols;
  const bool grad = d_logits.data != nullptr;
  double total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
  for (std::int64_t r = 0; r < n; ++r) {
    if (!mask[r] || labels[r] < 0) {
      if (grad) std::fill(d_logits.row(r), d_logits.row(r) + c, T(0));
      continue;
    }
    const T* z = logits.row(r);
    const T zmax = *std::max_element(z, z + c);
    double sum = 0;
    for (std::int64_t j = 0; j < c; ++j) sum += std::exp(double(z[j] - zmax));
    const double log_sum = std::log(sum) + double(zmax);
    total += log_sum - double(z[labels[r]]);
    if (grad) {
      T* g = d_logits.row(r);
      for (std::int64_t j = 0; j < c; ++j) g[j] = T(std::exp(double(z[j]) - log_sum) / normaliser);
      g[labels[r]] -= T(1.0 / normaliser);
    }
  }
  return total / normaliser;
}

template <class T>
std::int64_t count_correct(MatrixView<const T> logits, const std::vector<std::int32_t>& labels,
                           const std::vector<std::uint8_t>& mask) {
  std::int64_t correct = 0;
#pragma omp parallel for reduction(+ : correct) schedule(static)
  for (std::int64_t r = 0; r < logits.rows; ++r) {
    if (!mask[r] || labels[r] < 0) continue;
    const T* z = logits.row(r);
    correct += (std::max_element(z, z + logits.cols) - z) == labels[r];
  }
  return correct;
}

template double softmax_cross_entropy<float>(MatrixView<const float>, const std::vector<std::int32_t>&,
                                             const std::vector<std::uint8_t>&, double, MatrixView<float>);
template double softmax_cross_entropy<double>(MatrixView<const double>, const std::vector<std::int32_t>&,
                                              const std::vector<std::uint8_t>&, double, MatrixView<double>);
template std::int64_t count_correct<float>(MatrixView<const float>, const std::vector<std::int32_t>&,
                                           const std::vector<std::uint8_t>&);
template std::int64_t count_correct<double>(MatrixView<const double>, const std::vector<std::int32_t>&,
                                            const std::vector<std::uint8_t>&);

}  // namespace adaqp::engine
