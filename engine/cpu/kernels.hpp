// CPU reference kernels (OpenMP over rows). Every other backend is tested against these.
// Matrices are row-major with an explicit column count; pointers are borrowed, never owned.
#pragma once
#include <cstdint>
#include <functional>

#include "graph/csr.hpp"

namespace adaqp::engine::cpu {

// Called by the calling thread every `rows` rows of its share of a long kernel (a transport's
// progress while messages are in flight); the kernel's result does not depend on it.
struct RowTick {
  std::function<void()> fn;  // empty: never called
  std::int64_t rows = 2048;
};

// C[r, :] (+)= sum_k A.values[k] * B[A.indices[k], :] for rows r in [row_begin, row_end).
// B has A.num_cols rows of `cols` columns; C has A.num_rows rows (only the range is touched).
// A must carry values. accumulate=false overwrites C's rows. Each row's sum runs over its
// non-zeros in order, so the result does not depend on the thread count or the tick.
template <class T>
void spmm(const graph::Csr& a, std::int64_t row_begin, std::int64_t row_end, const T* b, std::int64_t cols, T* c,
          bool accumulate, const RowTick& tick = {});

// C (+)= A[0:rows]^T B: A is num_rows x num_cols with values, of which the first `rows` rows are
// used (-1: all); B is rows x cols, C is num_cols x cols. Deterministic for a fixed thread count
// (per-thread partial sums added in thread order), with or without a tick. Only C's rows
// [out_begin, out_end) are computed and written (out_end -1: num_cols), each bit for bit what the
// whole product gives it: a weight gradient made in row blocks (scheduler: first-layer buckets).
template <class T>
void spmm_transposed(const graph::Csr& a, const T* b, std::int64_t cols, T* c, bool accumulate, std::int64_t rows = -1,
                     const RowTick& tick = {}, std::int64_t out_begin = 0, std::int64_t out_end = -1);

// y[r, :] = max(x[r, :], 0) in place over n elements.
template <class T>
void relu_forward(T* x, std::int64_t n);
// g[i] = 0 where y[i] <= 0 (y is the ReLU output).
template <class T>
void relu_backward(const T* y, T* g, std::int64_t n);

// x[r, :] += bias for rows x cols.
template <class T>
void add_bias(T* x, const T* bias, std::int64_t rows, std::int64_t cols);
// out[c] (+)= sum_r g[r, c].
template <class T>
void column_sums(const T* g, std::int64_t rows, std::int64_t cols, T* out, bool accumulate);

// Backward of dropout: out[i] = keep[i] ? g[i] * scale : 0 over n elements (out may alias g).
template <class T>
void dropout_backward(const T* g, const std::uint8_t* keep, T scale, std::int64_t n, T* out);

// y = x + alpha * z over n elements (y may alias x).
template <class T>
void axpy(std::int64_t n, T alpha, const T* z, T* y);

}  // namespace adaqp::engine::cpu
