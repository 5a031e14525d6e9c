// GPU kernels of the engine's task kinds, each the counterpart of a CPU reference kernel
// (engine/cpu/kernels.hpp, engine/cpu/blas.hpp, engine/model.hpp's dropout) and tested against it
// on the same inputs (tests/cuda). Row-major matrices; all data pointers are device pointers;
// `stream` is a cudaStream_t (null: the default stream). No CUDA header here.
//
// Tolerances (tests/cuda): element-wise kernels and dropout masks are exact; GEMM (cuBLAS) and
// SpMM (cuSPARSE; the row-group kernel sums in the CPU order but may round differently) sum in
// another order than the CPU: relative 1e-5 of the row's magnitude.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <utility>

#include "engine/cuda/device.hpp"
#include "engine/model.hpp"
#include "engine/optimizer.hpp"
#include "graph/csr.hpp"

namespace adaqp::engine::cuda {

// cuBLAS and cuSPARSE handles on one stream, plus SpMM workspace. One per stream; not shared
// between threads.
class Handles {
 public:
  explicit Handles(void* stream = nullptr);
  ~Handles();
  Handles(const Handles&) = delete;
  Handles& operator=(const Handles&) = delete;
  void* stream() const { return stream_; }
  void* blas() const { return blas_; }
  void* sparse() const { return sparse_; }
  // Device scratch of at least `bytes` (grows; valid until the next call).
  void* workspace(std::size_t bytes);

 private:
  void* stream_;
  void* blas_ = nullptr;
  void* sparse_ = nullptr;
  DeviceBuffer work_;
};

// A CSR matrix with values on the device (32-bit offsets and column ids; throws adaqp::Error
// beyond 2^31 non-zeros). Row blocks [b, e) are views sharing the column and value arrays, with
// their own rebased offsets, made on first use. With keep_transpose, it also holds its transpose
// (cols x rows, entries of a column in row order), whose values follow this matrix's: a write
// through mutable_values() marks them stale, and transpose() gathers them again (one kernel).
class DeviceCsr {
 public:
  DeviceCsr() = default;
  explicit DeviceCsr(const graph::Csr& host, bool keep_transpose = false);  // host must carry values
  DeviceCsr(DeviceCsr&&) noexcept;
  DeviceCsr& operator=(DeviceCsr&&) noexcept;
  ~DeviceCsr();
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  std::int64_t nnz() const { return nnz_; }
  // Offsets of rows [b, e) rebased to 0 (cached), and the first non-zero of row b.
  const std::int32_t* block_offsets(std::int64_t b, std::int64_t e);
  std::int64_t first_nonzero(std::int64_t b) const { return host_offsets_[std::size_t(b)]; }
  const std::int32_t* indices() const { return indices_.as<std::int32_t>(); }
  const float* values() const { return values_.as<float>(); }
  float* mutable_values() {
    transpose_stale_ = true;
    return values_.as<float>();
  }
  // Row of every non-zero (nnz entries, device memory; made on first use).
  const std::int32_t* entry_rows();
  // The transpose with current values (gathered on `stream` when stale), or null without
  // keep_transpose.
  DeviceCsr* transpose(void* stream);
  // The SpMM implementation chosen for output rows [b, e) and `cols` columns (0: not yet).
  int& spmm_choice(std::int64_t b, std::int64_t e, std::int64_t cols) { return spmm_choice_[{b, e, cols}]; }

 private:
  std::int64_t rows_ = 0, cols_ = 0, nnz_ = 0;
  std::vector<std::int64_t> host_offsets_;
  DeviceBuffer indices_, values_, entry_rows_;
  std::map<std::pair<std::int64_t, std::int64_t>, DeviceBuffer> blocks_;
  std::unique_ptr<DeviceCsr> transpose_;
  DeviceBuffer transpose_source_;  // nnz entries: the entry of this matrix each transposed entry copies
  bool transpose_stale_ = false;
  std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t>, int> spmm_choice_;
};

// How C = A B is computed: cuSPARSE (CSR, ALG2), adaqp's row-group kernel (one warp or a part of
// one per row, 16-byte loads of B's rows when aligned, sums in the CPU's order), or `fastest`:
// both timed on the first product of each (matrix, row block, width) and the faster kept. The
// engine uses `fastest` unless the environment variable ADAQP_CUDA_SPMM names one (cusparse,
// row_groups, fastest; another value throws adaqp::Error); tests and benchmarks pin one with
// set_spmm_impl (not thread-safe: set before running).
enum class SpmmImpl { fastest = 0, cusparse = 1, row_groups = 2 };
void set_spmm_impl(SpmmImpl impl);
SpmmImpl spmm_impl();
const char* spmm_impl_name(SpmmImpl impl);

// C (m x n) = alpha op(A) op(B) + beta C, row-major, as cpu::gemm (cuBLAS, fp32, no TF32).
void gemm(Handles& h, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
          const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc);
// C rows [row_begin, row_end) (+)= A[rows] B, as cpu::spmm (B: A.cols x cols, C: A.rows x cols;
// row-major, leading dimension cols), by spmm_impl().
void spmm(Handles& h, DeviceCsr& a, std::int64_t row_begin, std::int64_t row_end, const float* b, std::int64_t cols,
          float* c, bool accumulate);
// C (A.cols x cols) (+)= A[0:rows]^T B (rows -1: all), as cpu::spmm_transposed: over all rows of
// a matrix that keeps its transpose, spmm() with the transpose, on C's rows [out_begin, out_end)
// only (out_end -1: all); else cuSPARSE's transposed product, which makes every row of C: then the
// call with out_begin 0 makes them all and calls with out_begin > 0 do nothing (a weight gradient
// made in row blocks in order: the first block's call has made the later blocks' rows).
void spmm_transposed(Handles& h, DeviceCsr& a, const float* b, std::int64_t cols, float* c, bool accumulate,
                     std::int64_t rows = -1, std::int64_t out_begin = 0, std::int64_t out_end = -1);

void relu_forward(float* x, std::int64_t n, void* stream = nullptr);
void relu_backward(const float* y, float* g, std::int64_t n, void* stream = nullptr);
// x (rows x cols) = x + bias per row, then max(x, 0) when relu: cpu::add_bias and
// cpu::relu_forward in one pass (the executor's bias_act task).
void bias_act(float* x, const float* bias, std::int64_t rows, std::int64_t cols, bool relu, void* stream = nullptr);
void column_sums(const float* g, std::int64_t rows, std::int64_t cols, float* out, bool accumulate,
                 void* stream = nullptr);
// The CPU's mask (engine/model.hpp: same key, same 16-bit draws); keep (rows x cols) may be null.
void dropout_forward(const float* x, float* y, std::uint8_t* keep, std::int64_t rows, std::int64_t cols, double p,
                     const DropoutKey& key, int layer, const std::int64_t* global_ids, void* stream = nullptr);
void dropout_backward(const float* g, const std::uint8_t* keep, float scale, std::int64_t n, float* out,
                      void* stream = nullptr);
// Dropout of sparse features, values only: y.values[k] = x.values[k] / (1 - p) where the CPU's
// mask keeps (row, column) of entry k, else 0. x and y have the same pattern (y: a copy of x made
// once). engine::dropout_sparse removes the dropped entries instead; products with either are
// equal, since a stored zero adds nothing.
void dropout_sparse_values(DeviceCsr& x, DeviceCsr& y, double p, const DropoutKey& key, int layer,
                           const std::int64_t* global_ids, void* stream = nullptr);

// The executor's row moves (engine/executor.cpp: copy_rows and the scaled / smoothed unpack).
// Row r < rows of dst is dst + index(r) * ldc with index(r) = list ? list[r] : first + r (list in
// device memory). copy_rows: that row (+)= src row src_first + r (stride lds), or 0 when src is null.
void copy_rows(float* dst, std::int64_t ldc, const std::int32_t* list, std::int64_t first, const float* src,
               std::int64_t lds, std::int64_t src_first, std::int64_t rows, std::int64_t cols, bool accumulate,
               void* stream = nullptr);
// blend_rows: that row = s * row + f * m[r] (accumulate: row += f * m[r]); m is rows x cols, dense.
void blend_rows(float* dst, std::int64_t ldc, const std::int32_t* list, const float* m, std::int64_t rows,
                std::int64_t cols, float s, float f, bool accumulate, void* stream = nullptr);

// Softmax cross-entropy over the rows with mask[r] == 1 and labels[r] >= 0, as
// engine/loss.hpp's: returns the loss sum / normaliser; d_logits (rows x cols, may be null) gets
// (softmax - one hot) / normaliser on selected rows and 0 elsewhere. Waits for the stream.
// Tolerance against the CPU: 1e-6 relative (device exp / log differ from glibc's in the last bit).
double softmax_cross_entropy(const float* logits, std::int64_t rows, std::int64_t cols, const std::int32_t* labels,
                             const std::uint8_t* mask, double normaliser, float* d_logits, void* stream = nullptr);
// Rows with mask[r] == 1 whose arg-max (lowest class on ties) equals the label. Waits for the stream.
std::int64_t count_correct(const float* logits, std::int64_t rows, std::int64_t cols, const std::int32_t* labels,
                           const std::uint8_t* mask, void* stream = nullptr);
// One Adam step (engine/optimizer.hpp's formula, moments in double) on n elements; `step` counts
// from 1. Tolerance against the CPU: 1e-6 relative (the CPU build may contract multiply-adds).
void adam_step(float* w, const float* g, double* m, double* v, std::int64_t n, const AdamConfig& config, long step,
               void* stream = nullptr);

}  // namespace adaqp::engine::cuda
