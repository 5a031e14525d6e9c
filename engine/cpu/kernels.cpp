#include "engine/cpu/kernels.hpp"

#include <algorithm>
#include <vector>

#include "engine/cpu/blas.hpp"

namespace adaqp::engine::cpu {

void set_blas_threads(int threads) { openblas_set_num_threads(threads); }

template <class T>
void spmm(const graph::Csr& a, std::int64_t row_begin, std::int64_t row_end, const T* b, std::int64_t cols, T* c,
          bool accumulate) {
  const auto* off = a.offsets.data();
  const auto* idx = a.indices.data();
  const auto* val = a.values.data();
#pragma omp parallel for schedule(dynamic, 64)
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    T* out = c + r * cols;
    if (!accumulate) std::fill(out, out + cols, T(0));
    for (std::int64_t k = off[r]; k < off[r + 1]; ++k) {
      const T w = T(val[k]);
      const T* in = b + std::int64_t(idx[k]) * cols;
#pragma omp simd
      for (std::int64_t j = 0; j < cols; ++j) out[j] += w * in[j];
    }
  }
}

template <class T>
void relu_forward(T* x, std::int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) x[i] = x[i] > T(0) ? x[i] : T(0);
}

template <class T>
void relu_backward(const T* y, T* g, std::int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) g[i] = y[i] > T(0) ? g[i] : T(0);
}

template <class T>
void add_bias(T* x, const T* bias, std::int64_t rows, std::int64_t cols) {
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < rows; ++r) {
    T* row = x + r * cols;
#pragma omp simd
    for (std::int64_t j = 0; j < cols; ++j) row[j] += bias[j];
  }
}

template <class T>
void column_sums(const T* g, std::int64_t rows, std::int64_t cols, T* out, bool accumulate) {
  // Fixed-order reduction (deterministic whatever the thread count): blocks of rows summed in
  // parallel into partials, partials added in block order.
  constexpr std::int64_t kBlock = 1024;
  const std::int64_t blocks = (rows + kBlock - 1) / kBlock;
  std::vector<T> partial(std::size_t(std::max<std::int64_t>(blocks, 1) * cols), T(0));
#pragma omp parallel for schedule(static)
  for (std::int64_t b = 0; b < blocks; ++b) {
    T* p = partial.data() + b * cols;
    for (std::int64_t r = b * kBlock; r < std::min(rows, (b + 1) * kBlock); ++r)
#pragma omp simd
      for (std::int64_t j = 0; j < cols; ++j) p[j] += g[r * cols + j];
  }
  if (!accumulate) std::fill(out, out + cols, T(0));
  for (std::int64_t b = 0; b < blocks; ++b)
    for (std::int64_t j = 0; j < cols; ++j) out[j] += partial[b * cols + j];
}

template <class T>
void axpy(std::int64_t n, T alpha, const T* z, T* y) {
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) y[i] += alpha * z[i];
}

#define ADAQP_INSTANTIATE(T)                                                                                  \
  template void spmm<T>(const graph::Csr&, std::int64_t, std::int64_t, const T*, std::int64_t, T*, bool);    \
  template void relu_forward<T>(T*, std::int64_t);                                                            \
  template void relu_backward<T>(const T*, T*, std::int64_t);                                                 \
  template void add_bias<T>(T*, const T*, std::int64_t, std::int64_t);                                        \
  template void column_sums<T>(const T*, std::int64_t, std::int64_t, T*, bool);                               \
  template void axpy<T>(std::int64_t, T, const T*, T*);
ADAQP_INSTANTIATE(float)
ADAQP_INSTANTIATE(double)
#undef ADAQP_INSTANTIATE

}  // namespace adaqp::engine::cpu
