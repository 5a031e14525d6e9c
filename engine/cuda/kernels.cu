#include <cublas_v2.h>
#include <cusparse.h>

#include <cmath>
#include <cub/block/block_reduce.cuh>
#include <string>

#include "base/random.hpp"
#include "engine/cuda/check.cuh"
#include "engine/cuda/kernels.hpp"

namespace adaqp::engine::cuda {
namespace {

cudaStream_t as_stream(void* s) {
  return static_cast<cudaStream_t>(s);
}

constexpr int kBlock = 256;
unsigned blocks_for(std::int64_t n) {
  return unsigned(std::max<std::int64_t>(1, (n + kBlock - 1) / kBlock));
}

__global__ void relu_forward_kernel(float* x, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x)
    x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
__global__ void relu_backward_kernel(const float* y, float* g, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x)
    if (y[i] <= 0.0f) g[i] = 0.0f;
}
// x = x + bias (then max(x, 0) when Relu), one pass: a thread per element, the column by 32-bit
// arithmetic when the matrix has under 2^32 elements.
template <bool Relu, class Index>
__global__ void bias_act_kernel(float* __restrict__ x, const float* __restrict__ bias, Index n, Index cols) {
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += Index(gridDim.x) * blockDim.x) {
    const float v = x[i] + bias[i % cols];
    x[i] = Relu ? (v > 0.0f ? v : 0.0f) : v;
  }
}
// Column sums, one level: block (x, y) sums rows [x kSumChunk, (x + 1) kSumChunk) of columns
// [32 y, 32 y + 32) into out row x (kSumRows threads per column, each over every kSumRows-th row,
// then added in a fixed order: deterministic; the CPU adds blocks of 1024 rows in another order,
// so the tests compare within a relative tolerance).
constexpr int kSumCols = 32, kSumRows = 8;
constexpr std::int64_t kSumChunk = 1024;
__global__ void __launch_bounds__(kSumCols* kSumRows)
    column_sums_kernel(const float* __restrict__ g, std::int64_t rows, std::int64_t cols, float* __restrict__ out,
                       bool accumulate) {
  __shared__ float part[kSumRows][kSumCols + 1];
  const std::int64_t c = std::int64_t(blockIdx.y) * kSumCols + threadIdx.x;
  const std::int64_t r0 = std::int64_t(blockIdx.x) * kSumChunk;
  const std::int64_t r1 = r0 + kSumChunk < rows ? r0 + kSumChunk : rows;
  float s = 0.0f;
  if (c < cols) {
#pragma unroll 4
    for (std::int64_t r = r0 + threadIdx.y; r < r1; r += kSumRows) s += g[r * cols + c];
  }
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float t = part[0][threadIdx.x];
    for (int y = 1; y < kSumRows; ++y) t += part[y][threadIdx.x];
    float* o = out + std::int64_t(blockIdx.x) * cols + c;
    *o = accumulate ? *o + t : t;
  }
}
__global__ void dropout_forward_kernel(const float* x, float* y, std::uint8_t* keep, std::int64_t rows,
                                       std::int64_t cols, std::uint32_t threshold, float scale, std::uint64_t prefix,
                                       const std::int64_t* global_ids) {
  const std::int64_t groups = (cols + 3) / 4, n = rows * groups;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t r = i / groups, g = i % groups;
    const std::uint64_t bits = mix64(hash_fold(prefix, std::uint64_t(global_ids[r])) ^ std::uint64_t(4 * g));
    for (std::int64_t j = 4 * g; j < 4 * g + 4 && j < cols; ++j) {
      const bool k = std::uint32_t((bits >> (16 * (j & 3))) & 0xffffu) >= threshold;
      y[r * cols + j] = k ? x[r * cols + j] * scale : 0.0f;
      if (keep) keep[r * cols + j] = k;
    }
  }
}
__global__ void dropout_sparse_kernel(const float* x, const std::int32_t* indices, const std::int32_t* rows,
                                      std::int64_t nnz, std::uint32_t threshold, float scale, std::uint64_t prefix,
                                      const std::int64_t* global_ids, float* y) {
  for (std::int64_t k = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; k < nnz;
       k += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t j = indices[k];
    // The dense kernel's draw for column j: 16 bits of the hash of its group of 4 columns.
    const std::uint64_t bits =
        mix64(hash_fold(prefix, std::uint64_t(global_ids[rows[k]])) ^ std::uint64_t(4 * (j / 4)));
    const bool keep = std::uint32_t((bits >> (16 * (j & 3))) & 0xffffu) >= threshold;
    y[k] = keep ? x[k] * scale : 0.0f;
  }
}
__global__ void dropout_backward_kernel(const float* g, const std::uint8_t* keep, float scale, std::int64_t n,
                                        float* out) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x)
    out[i] = keep[i] ? g[i] * scale : 0.0f;
}

// One thread per row; the block's losses are summed (cub) before one atomic add per block.
__global__ void __launch_bounds__(kBlock)
    loss_kernel(const float* z_all, std::int64_t rows, std::int64_t cols, const std::int32_t* labels,
                const std::uint8_t* mask, double normaliser, float* d_logits, double* total) {
  const std::int64_t r = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
  double row_loss = 0;
  if (r < rows) {
    const float* z = z_all + r * cols;
    if (!(mask[r] && labels[r] >= 0)) {
      if (d_logits)
        for (std::int64_t j = 0; j < cols; ++j) d_logits[r * cols + j] = 0.0f;
    } else {
      float zmax = z[0];
      for (std::int64_t j = 1; j < cols; ++j) zmax = fmaxf(zmax, z[j]);
      double sum = 0;
      for (std::int64_t j = 0; j < cols; ++j) sum += exp(double(z[j] - zmax));
      const double log_sum = log(sum) + double(zmax);
      row_loss = log_sum - double(z[labels[r]]);
      if (d_logits) {
        float* g = d_logits + r * cols;
        for (std::int64_t j = 0; j < cols; ++j) g[j] = float(exp(double(z[j]) - log_sum) / normaliser);
        g[labels[r]] -= float(1.0 / normaliser);
      }
    }
  }
  using Reduce = cub::BlockReduce<double, kBlock>;
  __shared__ typename Reduce::TempStorage tmp;
  const double block_loss = Reduce(tmp).Sum(row_loss);
  if (threadIdx.x == 0) atomicAdd(total, block_loss);
}
__global__ void __launch_bounds__(kBlock)
    correct_kernel(const float* z_all, std::int64_t rows, std::int64_t cols, const std::int32_t* labels,
                   const std::uint8_t* mask, unsigned long long* correct) {
  const std::int64_t r = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
  int hit = 0;
  if (r < rows && mask[r] && labels[r] >= 0) {
    const float* z = z_all + r * cols;
    std::int64_t best = 0;
    for (std::int64_t j = 1; j < cols; ++j)
      if (z[j] > z[best]) best = j;
    hit = best == labels[r];
  }
  using Reduce = cub::BlockReduce<int, kBlock>;
  __shared__ typename Reduce::TempStorage tmp;
  const int block_hits = Reduce(tmp).Sum(hit);
  if (threadIdx.x == 0 && block_hits > 0) atomicAdd(correct, static_cast<unsigned long long>(block_hits));
}
__global__ void adam_kernel(float* w, const float* g, double* m, double* v, std::int64_t n, double lr, double wd,
                            double b1, double b2, double eps, double c1, double c2) {
  for (std::int64_t k = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; k < n;
       k += std::int64_t(gridDim.x) * blockDim.x) {
    const double gk = double(g[k]) + wd * double(w[k]);
    m[k] = b1 * m[k] + (1.0 - b1) * gk;
    v[k] = b2 * v[k] + (1.0 - b2) * gk * gk;
    w[k] = float(double(w[k]) - lr * (m[k] / c1) / (sqrt(v[k] / c2) + eps));
  }
}
__global__ void copy_rows_kernel(float* dst, std::int64_t ldc, const std::int32_t* list, std::int64_t first,
                                 const float* src, std::int64_t lds, std::int64_t src_first, std::int64_t rows,
                                 std::int64_t cols, bool accumulate) {
  const std::int64_t n = rows * cols;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t r = i / cols, j = i % cols;
    float* y = dst + (list ? std::int64_t(list[r]) : first + r) * ldc + j;
    if (!src)
      *y = 0.0f;
    else if (accumulate)
      *y += src[(src_first + r) * lds + j];
    else
      *y = src[(src_first + r) * lds + j];
  }
}
__global__ void blend_rows_kernel(float* dst, std::int64_t ldc, const std::int32_t* list, const float* m,
                                  std::int64_t rows, std::int64_t cols, float s, float f, bool accumulate) {
  const std::int64_t n = rows * cols;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t r = i / cols, j = i % cols;
    float* y = dst + std::int64_t(list[r]) * ldc + j;
    // Separate multiplies and adds (the CPU build may contract them: tests allow 1 ulp).
    *y = accumulate ? __fadd_rn(*y, __fmul_rn(f, m[i])) : __fadd_rn(__fmul_rn(s, *y), __fmul_rn(f, m[i]));
  }
}

}  // namespace

Handles::Handles(void* stream) : stream_(stream) {
  cublasHandle_t b;
  check_blas(cublasCreate(&b), "cublasCreate");
  blas_ = b;
  check_blas(cublasSetStream(b, as_stream(stream)), "cublasSetStream");
  // fp32 products as the CPU computes them: no TF32 tensor-core rounding.
  check_blas(cublasSetMathMode(b, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");
  cusparseHandle_t s;
  check_sparse(cusparseCreate(&s), "cusparseCreate");
  sparse_ = s;
  check_sparse(cusparseSetStream(s, as_stream(stream)), "cusparseSetStream");
}

Handles::~Handles() {
  if (blas_) cublasDestroy(static_cast<cublasHandle_t>(blas_));
  if (sparse_) cusparseDestroy(static_cast<cusparseHandle_t>(sparse_));
}

void* Handles::workspace(std::size_t bytes) {
  if (bytes > work_.bytes()) {
    check(cudaStreamSynchronize(as_stream(stream_)), "workspace resize");
    work_ = DeviceBuffer(bytes);
  }
  return work_.get();
}

void gemm(Handles& h, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
          std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
  check_blas(
      cublasSgemm(static_cast<cublasHandle_t>(h.blas()), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                  int(n), int(m), int(k), &alpha, b, int(ldb), a, int(lda), &beta, c, int(ldc)),
      "cublasSgemm");
}

void relu_forward(float* x, std::int64_t n, void* stream) {
  if (n == 0) return;
  relu_forward_kernel<<<std::min(blocks_for(n), 65535u), kBlock, 0, as_stream(stream)>>>(x, n);
  check(cudaGetLastError(), "relu_forward");
}
void relu_backward(const float* y, float* g, std::int64_t n, void* stream) {
  if (n == 0) return;
  relu_backward_kernel<<<std::min(blocks_for(n), 65535u), kBlock, 0, as_stream(stream)>>>(y, g, n);
  check(cudaGetLastError(), "relu_backward");
}
void bias_act(float* x, const float* bias, std::int64_t rows, std::int64_t cols, bool relu, void* stream) {
  const std::int64_t n = rows * cols;
  if (n == 0) return;
  const unsigned blocks = std::min(blocks_for(n), 65535u);
  if (n < (std::int64_t(1) << 32)) {
    const auto un = std::uint32_t(n), uc = std::uint32_t(cols);
    if (relu)
      bias_act_kernel<true><<<blocks, kBlock, 0, as_stream(stream)>>>(x, bias, un, uc);
    else
      bias_act_kernel<false><<<blocks, kBlock, 0, as_stream(stream)>>>(x, bias, un, uc);
  } else {
    if (relu)
      bias_act_kernel<true><<<blocks, kBlock, 0, as_stream(stream)>>>(x, bias, n, cols);
    else
      bias_act_kernel<false><<<blocks, kBlock, 0, as_stream(stream)>>>(x, bias, n, cols);
  }
  check(cudaGetLastError(), "bias_act");
}
void column_sums(const float* g, std::int64_t rows, std::int64_t cols, float* out, bool accumulate, void* stream) {
  if (cols == 0) return;
  if (cols > 65535 * std::int64_t(kSumCols)) throw std::logic_error("column_sums: more than 2^21 columns");
  const std::int64_t chunks = std::max<std::int64_t>(1, (rows + kSumChunk - 1) / kSumChunk);
  const dim3 grid(unsigned(chunks), unsigned((cols + kSumCols - 1) / kSumCols)), block(kSumCols, kSumRows);
  if (chunks == 1) {
    column_sums_kernel<<<grid, block, 0, as_stream(stream)>>>(g, rows, cols, out, accumulate);
    check(cudaGetLastError(), "column_sums");
    return;
  }
  // One sum per chunk of rows, then the sums of those (a 1M-row gradient: two levels).
  StreamBuffer partial(std::size_t(chunks * cols) * sizeof(float), stream);
  column_sums_kernel<<<grid, block, 0, as_stream(stream)>>>(g, rows, cols, partial.as<float>(), false);
  check(cudaGetLastError(), "column_sums");
  column_sums(partial.as<float>(), chunks, cols, out, accumulate, stream);
}
namespace {
// As engine/model.cpp: row key hash_key({seed, epoch, layer, global id}), threshold lround(p 2^16).
std::uint64_t dropout_prefix(const DropoutKey& key, int layer) {
  std::uint64_t prefix = kHashStart;
  for (std::uint64_t v : {key.seed, std::uint64_t(key.epoch), std::uint64_t(layer)}) prefix = hash_fold(prefix, v);
  return prefix;
}
}  // namespace

void dropout_sparse_values(DeviceCsr& x, DeviceCsr& y, double p, const DropoutKey& key, int layer,
                           const std::int64_t* global_ids, void* stream) {
  if (x.nnz() != y.nnz() || x.rows() != y.rows()) throw std::logic_error("dropout_sparse_values: patterns differ");
  if (x.nnz() == 0) return;
  dropout_sparse_kernel<<<std::min(blocks_for(x.nnz()), 65535u), kBlock, 0, as_stream(stream)>>>(
      x.values(), x.indices(), x.entry_rows(), x.nnz(), std::uint32_t(std::lround(p * 65536.0)), float(1.0 / (1.0 - p)),
      dropout_prefix(key, layer), global_ids, y.mutable_values());
  check(cudaGetLastError(), "dropout_sparse_values");
}

void dropout_forward(const float* x, float* y, std::uint8_t* keep, std::int64_t rows, std::int64_t cols, double p,
                     const DropoutKey& key, int layer, const std::int64_t* global_ids, void* stream) {
  if (rows * cols == 0) return;
  const std::uint64_t prefix = dropout_prefix(key, layer);
  const auto threshold = std::uint32_t(std::lround(p * 65536.0));
  const auto scale = float(1.0 / (1.0 - p));
  const std::int64_t work = rows * ((cols + 3) / 4);
  dropout_forward_kernel<<<std::min(blocks_for(work), 65535u), kBlock, 0, as_stream(stream)>>>(
      x, y, keep, rows, cols, threshold, scale, prefix, global_ids);
  check(cudaGetLastError(), "dropout_forward");
}
void dropout_backward(const float* g, const std::uint8_t* keep, float scale, std::int64_t n, float* out, void* stream) {
  if (n == 0) return;
  dropout_backward_kernel<<<std::min(blocks_for(n), 65535u), kBlock, 0, as_stream(stream)>>>(g, keep, scale, n, out);
  check(cudaGetLastError(), "dropout_backward");
}

void copy_rows(float* dst, std::int64_t ldc, const std::int32_t* list, std::int64_t first, const float* src,
               std::int64_t lds, std::int64_t src_first, std::int64_t rows, std::int64_t cols, bool accumulate,
               void* stream) {
  if (rows * cols == 0) return;
  copy_rows_kernel<<<std::min(blocks_for(rows * cols), 65535u), kBlock, 0, as_stream(stream)>>>(
      dst, ldc, list, first, src, lds, src_first, rows, cols, accumulate);
  check(cudaGetLastError(), "copy_rows");
}
void blend_rows(float* dst, std::int64_t ldc, const std::int32_t* list, const float* m, std::int64_t rows,
                std::int64_t cols, float s, float f, bool accumulate, void* stream) {
  if (rows * cols == 0) return;
  blend_rows_kernel<<<std::min(blocks_for(rows * cols), 65535u), kBlock, 0, as_stream(stream)>>>(
      dst, ldc, list, m, rows, cols, s, f, accumulate);
  check(cudaGetLastError(), "blend_rows");
}

double softmax_cross_entropy(const float* logits, std::int64_t rows, std::int64_t cols, const std::int32_t* labels,
                             const std::uint8_t* mask, double normaliser, float* d_logits, void* stream) {
  if (rows == 0) return 0;
  StreamBuffer total(sizeof(double), stream);
  check(cudaMemsetAsync(total.get(), 0, sizeof(double), as_stream(stream)), "loss reset");
  loss_kernel<<<blocks_for(rows), kBlock, 0, as_stream(stream)>>>(logits, rows, cols, labels, mask, normaliser,
                                                                  d_logits, total.as<double>());
  check(cudaGetLastError(), "loss kernel");
  double sum = 0;
  check(cudaMemcpyAsync(&sum, total.get(), sizeof sum, cudaMemcpyDeviceToHost, as_stream(stream)), "loss download");
  check(cudaStreamSynchronize(as_stream(stream)), "loss");
  return sum / normaliser;
}

std::int64_t count_correct(const float* logits, std::int64_t rows, std::int64_t cols, const std::int32_t* labels,
                           const std::uint8_t* mask, void* stream) {
  if (rows == 0) return 0;
  StreamBuffer count(sizeof(unsigned long long), stream);
  check(cudaMemsetAsync(count.get(), 0, sizeof(unsigned long long), as_stream(stream)), "count reset");
  correct_kernel<<<blocks_for(rows), kBlock, 0, as_stream(stream)>>>(logits, rows, cols, labels, mask,
                                                                     count.as<unsigned long long>());
  check(cudaGetLastError(), "count kernel");
  unsigned long long c = 0;
  check(cudaMemcpyAsync(&c, count.get(), sizeof c, cudaMemcpyDeviceToHost, as_stream(stream)), "count download");
  check(cudaStreamSynchronize(as_stream(stream)), "count");
  return std::int64_t(c);
}

void adam_step(float* w, const float* g, double* m, double* v, std::int64_t n, const AdamConfig& c, long step,
               void* stream) {
  if (n == 0) return;
  const double c1 = 1.0 - std::pow(c.beta1, double(step)), c2 = 1.0 - std::pow(c.beta2, double(step));
  adam_kernel<<<std::min(blocks_for(n), 65535u), kBlock, 0, as_stream(stream)>>>(
      w, g, m, v, n, c.lr_at(step), c.weight_decay, c.beta1, c.beta2, c.eps, c1, c2);
  check(cudaGetLastError(), "adam");
}

}  // namespace adaqp::engine::cuda
