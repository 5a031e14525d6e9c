// Sparse products of the GPU backend (engine/cuda/kernels.hpp): the device CSR matrix, its
// transpose, and C = A B by cuSPARSE or by the row-group kernel below, whichever is faster for
// each (matrix, row block, width), measured once on the device.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/cuda/check.cuh"
#include "engine/cuda/kernels.hpp"

namespace adaqp::engine::cuda {
namespace {

cudaStream_t as_stream(void* s) {
  return static_cast<cudaStream_t>(s);
}

// The process-wide choice: ADAQP_CUDA_SPMM (cusparse, row_groups or fastest) when set, else fastest.
SpmmImpl& current_impl() {
  static SpmmImpl impl = [] {
    const char* env = std::getenv("ADAQP_CUDA_SPMM");
    if (!env || !*env) return SpmmImpl::fastest;
    for (auto i : {SpmmImpl::fastest, SpmmImpl::cusparse, SpmmImpl::row_groups})
      if (std::string(env) == spmm_impl_name(i)) return i;
    throw Error(std::string("ADAQP_CUDA_SPMM=") + env + ": must be cusparse, row_groups or fastest");
  }();
  return impl;
}

// ---- cuSPARSE ------------------------------------------------------------------------------

// The dense operand descriptors of a row-major matrix.
struct Dense {
  cusparseDnMatDescr_t d = nullptr;
  Dense(std::int64_t rows, std::int64_t cols, std::int64_t ld, const float* p) {
    check_sparse(cusparseCreateDnMat(&d, rows, cols, ld, const_cast<float*>(p), CUDA_R_32F, CUSPARSE_ORDER_ROW),
                 "cusparseCreateDnMat");
  }
  ~Dense() { cusparseDestroyDnMat(d); }
};
struct Sparse {
  cusparseSpMatDescr_t d = nullptr;
  Sparse(std::int64_t rows, std::int64_t cols, std::int64_t nnz, const std::int32_t* offsets,
         const std::int32_t* indices, const float* values) {
    check_sparse(cusparseCreateCsr(&d, rows, cols, nnz, const_cast<std::int32_t*>(offsets),
                                   const_cast<std::int32_t*>(indices), const_cast<float*>(values), CUSPARSE_INDEX_32I,
                                   CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO, CUDA_R_32F),
                 "cusparseCreateCsr");
  }
  ~Sparse() { cusparseDestroySpMat(d); }
};

void run_cusparse(Handles& h, cusparseOperation_t op, const Sparse& a, const Dense& b, const Dense& c, float beta) {
  const float alpha = 1.0f;
  auto handle = static_cast<cusparseHandle_t>(h.sparse());
  std::size_t bytes = 0;
  check_sparse(cusparseSpMM_bufferSize(handle, op, CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, a.d, b.d, &beta, c.d,
                                       CUDA_R_32F, CUSPARSE_SPMM_CSR_ALG2, &bytes),
               "cusparseSpMM_bufferSize");
  check_sparse(cusparseSpMM(handle, op, CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, a.d, b.d, &beta, c.d, CUDA_R_32F,
                            CUSPARSE_SPMM_CSR_ALG2, h.workspace(bytes)),
               "cusparseSpMM");
}

// ---- row groups ----------------------------------------------------------------------------
//
// L consecutive lanes of a warp (L = 1, 2, ..., 32) compute one row of C: 256 / L rows per block
// of 256 threads. Lane l of a group owns CH chunks of V consecutive columns (V = 4: one 16-byte
// load per chunk, when B and C are 16-byte aligned and the width is a multiple of 4; else V = 1),
// chunk q at column tile0 + (l + q L) V, so a group reads L V contiguous floats of a B row per
// chunk. The non-zeros of the row are read L at a time, one per lane, and passed to the group by
// shuffles; each lane then adds w B[col] to its chunks, in the row's order (the CPU's order; with
// accumulate, starting from C's value as the CPU does). Widths beyond 32 CH V columns take
// several column tiles (blockIdx.y).
constexpr int kRowThreads = 256;

template <int V>
struct Chunk;
template <>
struct Chunk<1> {
  float v[1];
  __device__ void load(const float* p) { v[0] = __ldg(p); }  // read-only data (B)
  __device__ void load_plain(const float* p) { v[0] = *p; }  // data this kernel writes (C)
  __device__ void store(float* p) const { p[0] = v[0]; }
};
template <>
struct Chunk<4> {
  float v[4];
  __device__ void load(const float* p) {
    const float4 x = __ldg(reinterpret_cast<const float4*>(p));
    v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w;
  }
  __device__ void load_plain(const float* p) {
    const float4 x = *reinterpret_cast<const float4*>(p);
    v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w;
  }
  __device__ void store(float* p) const { *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]); }
};

template <int V, int L, int CH>
__global__ void __launch_bounds__(kRowThreads)
    spmm_rows_kernel(const std::int32_t* __restrict__ offsets, const std::int32_t* __restrict__ indices,
                     const float* __restrict__ values, std::int64_t rows, const float* __restrict__ b,
                     std::int64_t cols, float* __restrict__ c, bool accumulate) {
  constexpr int kGroups = kRowThreads / L;
  const std::int64_t r = std::int64_t(blockIdx.x) * kGroups + threadIdx.x / L;
  if (r >= rows) return;  // the group's L lanes together
  const int lane = int(threadIdx.x % L);
  const unsigned group_mask = L == 32 ? 0xffffffffu : ((1u << L) - 1u) << (threadIdx.x % 32 / L * L);
  const std::int64_t tile0 = std::int64_t(blockIdx.y) * (32 * CH * V);
  float* crow = c + r * cols;
  Chunk<V> acc[CH];
#pragma unroll
  for (int q = 0; q < CH; ++q) {
    const std::int64_t j = tile0 + std::int64_t(lane + q * L) * V;
    if (accumulate && j < cols) {
      acc[q].load_plain(crow + j);
    } else {
#pragma unroll
      for (int e = 0; e < V; ++e) acc[q].v[e] = 0.0f;
    }
  }
  const std::int32_t k_begin = offsets[r], k_end = offsets[r + 1];
  for (std::int32_t k0 = k_begin; k0 < k_end; k0 += L) {
    std::int32_t my_col = 0;
    float my_val = 0.0f;
    if (k0 + lane < k_end) {
      my_col = __ldg(indices + k0 + lane);
      my_val = __ldg(values + k0 + lane);
    }
    const int n = k_end - k0 < L ? int(k_end - k0) : L;
#pragma unroll 4
    for (int t = 0; t < n; ++t) {
      const std::int32_t col = __shfl_sync(group_mask, my_col, t, L);
      const float w = __shfl_sync(group_mask, my_val, t, L);
      const float* brow = b + std::int64_t(col) * cols;
#pragma unroll
      for (int q = 0; q < CH; ++q) {
        const std::int64_t j = tile0 + std::int64_t(lane + q * L) * V;
        if (j < cols) {
          Chunk<V> x;
          x.load(brow + j);
#pragma unroll
          for (int e = 0; e < V; ++e) acc[q].v[e] += w * x.v[e];
        }
      }
    }
  }
#pragma unroll
  for (int q = 0; q < CH; ++q) {
    const std::int64_t j = tile0 + std::int64_t(lane + q * L) * V;
    if (j < cols) acc[q].store(crow + j);
  }
}

template <int V, int L, int CH>
void launch_rows(const std::int32_t* off, const std::int32_t* idx, const float* val, std::int64_t rows, const float* b,
                 std::int64_t cols, float* c, bool accumulate, void* stream) {
  constexpr std::int64_t groups = kRowThreads / L, tile = 32 * CH * V;
  const std::int64_t tiles = L == 32 ? (cols + tile - 1) / tile : 1;
  if (tiles > 65535) throw std::logic_error("spmm: " + std::to_string(cols) + " columns");
  const dim3 grid(unsigned((rows + groups - 1) / groups), unsigned(tiles));
  spmm_rows_kernel<V, L, CH><<<grid, kRowThreads, 0, as_stream(stream)>>>(off, idx, val, rows, b, cols, c, accumulate);
  check(cudaGetLastError(), "spmm row-group kernel");
}

// Group size and chunks per lane for `chunks` chunks of V columns: the smallest power-of-two
// group that covers a row, or a warp with up to 8 chunks per lane (then column tiles).
template <int V>
void run_rows_v(const std::int32_t* off, const std::int32_t* idx, const float* val, std::int64_t rows, const float* b,
                std::int64_t cols, float* c, bool accumulate, void* stream) {
  const std::int64_t chunks = (cols + V - 1) / V;
  auto go = [&](auto l, auto ch) {
    launch_rows<V, decltype(l)::value, decltype(ch)::value>(off, idx, val, rows, b, cols, c, accumulate, stream);
  };
  using std::integral_constant;
  if (chunks <= 1)
    go(integral_constant<int, 1>{}, integral_constant<int, 1>{});
  else if (chunks <= 2)
    go(integral_constant<int, 2>{}, integral_constant<int, 1>{});
  else if (chunks <= 4)
    go(integral_constant<int, 4>{}, integral_constant<int, 1>{});
  else if (chunks <= 8)
    go(integral_constant<int, 8>{}, integral_constant<int, 1>{});
  else if (chunks <= 16)
    go(integral_constant<int, 16>{}, integral_constant<int, 1>{});
  else if (chunks <= 32)
    go(integral_constant<int, 32>{}, integral_constant<int, 1>{});
  else if (chunks <= 64)
    go(integral_constant<int, 32>{}, integral_constant<int, 2>{});
  else if (chunks <= 128)
    go(integral_constant<int, 32>{}, integral_constant<int, 4>{});
  else
    go(integral_constant<int, 32>{}, integral_constant<int, 8>{});
}

bool aligned16(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

// The two implementations on rows [b0, e0) of A B, written from c0 (C's row b0) on.
void product(SpmmImpl impl, Handles& h, DeviceCsr& a, std::int64_t b0, std::int64_t e0, const float* b,
             std::int64_t cols, float* c0, bool accumulate) {
  const std::int64_t first = a.first_nonzero(b0), nnz = a.first_nonzero(e0) - first;
  const std::int32_t* off = a.block_offsets(b0, e0);
  if (impl == SpmmImpl::row_groups) {
    if (cols % 4 == 0 && aligned16(b) && aligned16(c0))
      run_rows_v<4>(off, a.indices() + first, a.values() + first, e0 - b0, b, cols, c0, accumulate, h.stream());
    else
      run_rows_v<1>(off, a.indices() + first, a.values() + first, e0 - b0, b, cols, c0, accumulate, h.stream());
    return;
  }
  const Sparse s(e0 - b0, a.cols(), nnz, off, a.indices() + first, a.values() + first);
  const Dense db(a.cols(), cols, cols, b), dc(e0 - b0, cols, cols, c0);
  run_cusparse(h, CUSPARSE_OPERATION_NON_TRANSPOSE, s, db, dc, accumulate ? 1.0f : 0.0f);
}

// Median seconds of `runs` products into scratch rows (after one untimed run).
double time_product(SpmmImpl impl, Handles& h, DeviceCsr& a, std::int64_t b0, std::int64_t e0, const float* b,
                    std::int64_t cols, float* scratch, int runs) {
  Event start, stop;
  std::vector<double> t;
  product(impl, h, a, b0, e0, b, cols, scratch, false);
  for (int i = 0; i < runs; ++i) {
    start.record(h.stream());
    product(impl, h, a, b0, e0, b, cols, scratch, false);
    stop.record(h.stream());
    stop.synchronize();
    t.push_back(stop.seconds_since(start));
  }
  std::nth_element(t.begin(), t.begin() + runs / 2, t.end());
  return t[std::size_t(runs / 2)];
}

__global__ void gather_kernel(const float* __restrict__ src, const std::int32_t* __restrict__ index, std::int64_t n,
                              float* __restrict__ dst) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x)
    dst[i] = src[index[i]];
}

}  // namespace

void set_spmm_impl(SpmmImpl impl) {
  current_impl() = impl;
}
SpmmImpl spmm_impl() {
  return current_impl();
}
const char* spmm_impl_name(SpmmImpl impl) {
  switch (impl) {
    case SpmmImpl::cusparse:
      return "cusparse";
    case SpmmImpl::row_groups:
      return "row_groups";
    default:
      return "fastest";
  }
}

DeviceCsr::DeviceCsr(const graph::Csr& host, bool keep_transpose)
    : rows_(host.num_rows), cols_(host.num_cols), nnz_(host.nnz()), host_offsets_(host.offsets) {
  if (nnz_ >= (std::int64_t(1) << 31)) throw Error("GPU: a CSR matrix with 2^31 or more non-zeros is not supported");
  if (std::int64_t(host.values.size()) != nnz_) throw Error("GPU: a CSR matrix without values");
  indices_ = DeviceBuffer(std::size_t(nnz_) * 4);
  copy_to_device(indices_.get(), host.indices.data(), std::size_t(nnz_) * 4);
  values_ = DeviceBuffer(std::size_t(nnz_) * 4);
  copy_to_device(values_.get(), host.values.data(), std::size_t(nnz_) * 4);
  if (!keep_transpose) return;
  std::vector<std::int64_t> source;
  const graph::Csr t = graph::transpose(host, &source);
  const std::vector<std::int32_t> source32(source.begin(), source.end());  // nnz < 2^31, checked above
  transpose_ = std::make_unique<DeviceCsr>(t);
  transpose_source_ = DeviceBuffer(source32.size() * 4);
  copy_to_device(transpose_source_.get(), source32.data(), source32.size() * 4);
}
DeviceCsr::DeviceCsr(DeviceCsr&&) noexcept = default;
DeviceCsr& DeviceCsr::operator=(DeviceCsr&&) noexcept = default;
DeviceCsr::~DeviceCsr() = default;

const std::int32_t* DeviceCsr::entry_rows() {
  if (nnz_ > 0 && !entry_rows_.get()) {
    std::vector<std::int32_t> row_of(static_cast<std::size_t>(nnz_));
    for (std::int64_t r = 0; r < rows_; ++r)
      std::fill(row_of.begin() + host_offsets_[std::size_t(r)], row_of.begin() + host_offsets_[std::size_t(r) + 1],
                std::int32_t(r));
    entry_rows_ = DeviceBuffer(row_of.size() * 4);
    copy_to_device(entry_rows_.get(), row_of.data(), row_of.size() * 4);
  }
  return entry_rows_.as<std::int32_t>();
}

const std::int32_t* DeviceCsr::block_offsets(std::int64_t b, std::int64_t e) {
  auto it = blocks_.find({b, e});
  if (it == blocks_.end()) {
    std::vector<std::int32_t> off(std::size_t(e - b + 1));
    for (std::int64_t r = b; r <= e; ++r)
      off[std::size_t(r - b)] = std::int32_t(host_offsets_[std::size_t(r)] - host_offsets_[std::size_t(b)]);
    DeviceBuffer d(off.size() * 4);
    copy_to_device(d.get(), off.data(), off.size() * 4);
    it = blocks_.emplace(std::pair{b, e}, std::move(d)).first;
  }
  return it->second.as<std::int32_t>();
}

DeviceCsr* DeviceCsr::transpose(void* stream) {
  if (!transpose_) return nullptr;
  if (transpose_stale_ && nnz_ > 0) {
    const unsigned blocks = unsigned(std::min<std::int64_t>((nnz_ + 255) / 256, 65535));
    gather_kernel<<<blocks, 256, 0, as_stream(stream)>>>(values(), transpose_source_.as<std::int32_t>(), nnz_,
                                                         transpose_->mutable_values());
    check(cudaGetLastError(), "transpose values");
  }
  transpose_stale_ = false;
  return transpose_.get();
}

void spmm(Handles& h, DeviceCsr& a, std::int64_t b0, std::int64_t e0, const float* b, std::int64_t cols, float* c,
          bool accumulate) {
  if (e0 <= b0 || cols == 0) return;
  SpmmImpl impl = current_impl();
  if (impl == SpmmImpl::fastest) {
    int& choice = a.spmm_choice(b0, e0, cols);
    if (choice == 0) {
      // First product of this shape: both implementations, three timed runs each, into scratch.
      StreamBuffer scratch(std::size_t((e0 - b0) * cols) * sizeof(float), h.stream());
      const double t_sparse = time_product(SpmmImpl::cusparse, h, a, b0, e0, b, cols, scratch.as<float>(), 3);
      const double t_rows = time_product(SpmmImpl::row_groups, h, a, b0, e0, b, cols, scratch.as<float>(), 3);
      choice = int(t_rows < t_sparse ? SpmmImpl::row_groups : SpmmImpl::cusparse);
    }
    impl = SpmmImpl(choice);
  }
  product(impl, h, a, b0, e0, b, cols, c + b0 * cols, accumulate);
}

void spmm_transposed(Handles& h, DeviceCsr& a, const float* b, std::int64_t cols, float* c, bool accumulate,
                     std::int64_t rows, std::int64_t out_begin, std::int64_t out_end) {
  if (rows < 0) rows = a.rows();
  if (rows > a.rows())
    throw std::logic_error("spmm_transposed: " + std::to_string(rows) + " rows of a " + std::to_string(a.rows()) +
                           "-row matrix");
  if (out_end < 0) out_end = a.cols();
  if (out_begin < 0 || out_begin > out_end || out_end > a.cols())
    throw std::logic_error("spmm_transposed: output rows [" + std::to_string(out_begin) + ", " +
                           std::to_string(out_end) + ") of " + std::to_string(a.cols()));
  if (cols == 0) return;
  if (rows == a.rows())
    if (DeviceCsr* t = a.transpose(h.stream())) {  // rows of the transpose: any block directly
      if (out_end > out_begin) spmm(h, *t, out_begin, out_end, b, cols, c, accumulate);
      return;
    }
  // cuSPARSE's transposed product makes every output row: the block starting at row 0 makes them
  // all (values each block would give), later blocks find their rows made.
  if (out_begin > 0) return;
  const Sparse s(rows, a.cols(), a.first_nonzero(rows), a.block_offsets(0, rows), a.indices(), a.values());
  const Dense db(rows, cols, cols, b), dc(a.cols(), cols, cols, c);
  run_cusparse(h, CUSPARSE_OPERATION_TRANSPOSE, s, db, dc, accumulate ? 1.0f : 0.0f);
}

}  // namespace adaqp::engine::cuda
