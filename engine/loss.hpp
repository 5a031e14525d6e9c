// Softmax cross-entropy over the rows selected by a mask.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.hpp"

namespace adaqp::engine {

// logits: n x C. Rows with mask[r] == 1 (and labels[r] >= 0) contribute
//   loss = sum_r -log softmax(logits_r)[label_r] / normaliser.
// Writes d_logits (n x C, every row: zero on unselected ones) unless it is null, and returns the
// loss sum / normaliser. normaliser is the number of selected rows over all ranks (so ranks'
// losses add up).
template <class T>
double softmax_cross_entropy(MatrixView<const T> logits, const std::vector<std::int32_t>& labels,
                             const std::vector<std::uint8_t>& mask, double normaliser, MatrixView<T> d_logits);

// Number of rows r with mask[r] == 1 whose arg-max logit equals labels[r] (ties: lowest class).
template <class T>
std::int64_t count_correct(MatrixView<const T> logits, const std::vector<std::int32_t>& labels,
                           const std::vector<std::uint8_t>& mask);

// The same on owned matrices; d_logits (when given) is resized to n x C first.
template <class T>
double softmax_cross_entropy(const Matrix<T>& logits, const std::vector<std::int32_t>& labels,
                             const std::vector<std::uint8_t>& mask, double normaliser, Matrix<T>* d_logits) {
  if (d_logits) d_logits->resize(logits.rows, logits.cols);
  return softmax_cross_entropy<T>(view(logits), labels, mask, normaliser, d_logits ? view(*d_logits) : MatrixView<T>{});
}
template <class T>
std::int64_t count_correct(const Matrix<T>& logits, const std::vector<std::int32_t>& labels,
                           const std::vector<std::uint8_t>& mask) {
  return count_correct<T>(view(logits), labels, mask);
}

}  // namespace adaqp::engine
