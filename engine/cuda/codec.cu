#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <vector>

#include "engine/cuda/check.cuh"
#include "engine/cuda/codec.hpp"
#include "engine/cuda/device.hpp"
#include "scheduler/wire_format.hpp"

namespace adaqp::engine::cuda {

using scheduler::Width;

namespace {

constexpr int kThreads = 128;  // threads per block
// Rows up to this width get one warp each (4 rows per block, reductions in registers); wider rows
// get a whole block each.
constexpr std::int64_t kWarpRowMaxCols = 1024;

__device__ inline std::int64_t row_index(const std::int32_t* list, std::int64_t first, std::int64_t r) {
  return list ? std::int64_t(list[r]) : first + r;
}

// The threads of one row: a warp (G = 32) or the block (G = kThreads). row() is the row this
// thread works on, lane() its index among the row's G threads.
template <int G>
struct RowGroup {
  static_assert(G == 32 || G == kThreads, "a row takes a warp or a block");
  static __device__ std::int64_t row() { return std::int64_t(blockIdx.x) * (kThreads / G) + threadIdx.x / G; }
  static __device__ int lane() { return int(threadIdx.x % G); }
  // Reduction over the row's threads; every one of them gets the result. All G threads must call
  // it (a row's threads leave the kernel together).
  template <class T, class Op>
  static __device__ T reduce(T v, Op op) {
    for (int o = 16; o > 0; o /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    if constexpr (G == 32) {
      return v;
    } else {
      __shared__ T partial[kThreads / 32];
      __syncthreads();  // partial[] may still be read by a previous reduction
      if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
      __syncthreads();
      T r = partial[0];
      for (int w = 1; w < kThreads / 32; ++w) r = op(r, partial[w]);
      return r;
    }
  }
};
struct MinOp {
  __device__ float operator()(float a, float b) const { return fminf(a, b); }
};
struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct OrOp {
  __device__ int operator()(int a, int b) const { return a | b; }
};

// Largest magnitude of a 16-bit format (as engine/codec.cpp).
__device__ inline bool too_large(Width w, float v) {
  return (w == Width::fp16() && fabsf(v) > 65504.0f) || (w == Width::bf16() && fabsf(v) > 3.3895312e38f);
}

template <int G>
__global__ void __launch_bounds__(kThreads)
    encode_kernel(const float* __restrict__ src, std::int64_t ld, const std::int32_t* __restrict__ list,
                  std::int64_t first, const std::int64_t* __restrict__ global_ids, std::int64_t rows, std::int64_t cols,
                  Width width, std::uint64_t prefix, std::uint8_t* __restrict__ out, unsigned long long* bad_row) {
  using Row = RowGroup<G>;
  const std::int64_t r = Row::row();
  if (r >= rows) return;  // the row's G threads together
  const int lane = Row::lane();
  const std::int64_t i = row_index(list, first, r);
  const float* x = src + i * ld;
  const int bits = width.element_bits();
  if (width == Width::fp32()) {
    float* y = reinterpret_cast<float*>(out) + r * cols;
#pragma unroll 4
    for (std::int64_t j = lane; j < cols; j += G) y[j] = x[j];
    return;
  }
  // Range and finiteness of the row (unrolled: several loads in flight per lane).
  float lo = INFINITY, hi = -INFINITY;
  int bad = 0;
#pragma unroll 4
  for (std::int64_t j = lane; j < cols; j += G) {
    const float v = x[j];
    bad |= !isfinite(v) || too_large(width, v);
    lo = fminf(lo, v);
    hi = fmaxf(hi, v);
  }
  const float s_lo = Row::reduce(lo, MinOp{});
  const float s_hi = Row::reduce(hi, MaxOp{});
  const int s_bad = Row::reduce(bad, OrOp{});
  if (s_bad) {
    if (lane == 0) atomicMin(bad_row, static_cast<unsigned long long>(r));
    return;
  }
  if (width.half()) {
    auto* h = reinterpret_cast<std::uint16_t*>(out) + r * cols;
#pragma unroll 4
    for (std::int64_t j = lane; j < cols; j += G) {
      if (width == Width::fp16()) {
        h[j] = __half_as_ushort(__float2half_rn(x[j]));
      } else {
        const std::uint32_t u = __float_as_uint(x[j]);
        h[j] = std::uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
      }
    }
    return;
  }
  // Stochastic rounding to `bits` bits: as engine/codec.cpp, one IEEE operation per step.
  const float levels = float((1u << bits) - 1u);
  const float span = s_hi - s_lo;
  const float rlo = s_lo;
  const float scale = span > 0.0f ? span / levels : 0.0f;
  const float inv = span > 0.0f ? levels / span : 0.0f;
  if (lane == 0) {
    reinterpret_cast<float*>(out + r * 8)[0] = rlo;
    reinterpret_cast<float*>(out + r * 8)[1] = scale;
  }
  const std::int64_t row_bytes = scheduler::row_payload_bytes(cols, width);
  std::uint8_t* payload = out + rows * 8 + r * row_bytes;
  const std::uint64_t key = quant_row_key(prefix, global_ids ? global_ids[i] : i);
  const std::uint32_t top = (1u << bits) - 1u;
  const std::int64_t groups = (cols + 3) / 4;
  if (bits == 1) {  // a byte holds two hash groups: one lane per byte
    for (std::int64_t k = lane; k < row_bytes; k += G) {
      std::uint32_t byte = 0;
      for (int half = 0; half < 2; ++half) {
        const std::int64_t g = 2 * k + half;
        if (g >= groups) break;
        const std::uint64_t h = mix64(key ^ std::uint64_t(g));
        const std::int64_t j0 = 4 * g;
        const int m = int(cols - j0 < 4 ? cols - j0 : 4);
        for (int t = 0; t < m; ++t) {
          const float u = float((h >> (16 * t)) & 0xffffu) * (1.0f / 65536.0f);
          const float v = (x[j0 + t] - rlo) * inv + u;
          const std::uint32_t c = std::uint32_t(v);
          byte |= (c > top ? top : c) << (4 * half + t);
        }
      }
      payload[k] = std::uint8_t(byte);
    }
    return;
  }
  for (std::int64_t g = lane; g < groups; g += G) {
    const std::uint64_t h = mix64(key ^ std::uint64_t(g));
    const std::int64_t j0 = 4 * g;
    const int m = int(cols - j0 < 4 ? cols - j0 : 4);
    std::uint32_t q[4] = {0, 0, 0, 0};
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      if (t < m) {
        const float u = float((h >> (16 * t)) & 0xffffu) * (1.0f / 65536.0f);
        const float v = (x[j0 + t] - rlo) * inv + u;
        const std::uint32_t c = std::uint32_t(v);
        q[t] = c > top ? top : c;
      }
    }
    if (bits == 8) {
      for (int t = 0; t < m; ++t) payload[j0 + t] = std::uint8_t(q[t]);
    } else if (bits == 4) {
      payload[2 * g] = std::uint8_t(q[0] | (q[1] << 4));
      if (m > 2) payload[2 * g + 1] = std::uint8_t(q[2] | (q[3] << 4));
    } else {
      payload[g] = std::uint8_t(q[0] | (q[1] << 2) | (q[2] << 4) | (q[3] << 6));
    }
  }
}

template <int G>
__global__ void __launch_bounds__(kThreads)
    decode_kernel(const std::uint8_t* __restrict__ in, std::int64_t rows, std::int64_t cols, Width width,
                  float* __restrict__ dst, std::int64_t ld, const std::int32_t* __restrict__ list, std::int64_t first,
                  bool accumulate) {
  using Row = RowGroup<G>;
  const std::int64_t r = Row::row();
  if (r >= rows) return;
  const int lane = Row::lane();
  float* y = dst + row_index(list, first, r) * ld;
  if (!width.quantized()) {
#pragma unroll 4
    for (std::int64_t j = lane; j < cols; j += G) {
      float v;
      if (width == Width::fp32())
        v = reinterpret_cast<const float*>(in)[r * cols + j];
      else if (width == Width::fp16())
        v = __half2float(__ushort_as_half(reinterpret_cast<const std::uint16_t*>(in)[r * cols + j]));
      else
        v = __uint_as_float(std::uint32_t(reinterpret_cast<const std::uint16_t*>(in)[r * cols + j]) << 16);
      y[j] = accumulate ? y[j] + v : v;
    }
    return;
  }
  const float lo = reinterpret_cast<const float*>(in + r * 8)[0];
  const float scale = reinterpret_cast<const float*>(in + r * 8)[1];
  const int bits = width.element_bits();
  const std::uint8_t* payload = in + rows * 8 + r * scheduler::row_payload_bytes(cols, width);
  const std::uint32_t mask = (1u << bits) - 1u;
#pragma unroll 4
  for (std::int64_t j = lane; j < cols; j += G) {
    const std::int64_t bit = j * bits;
    const float v = lo + float((payload[bit >> 3] >> (bit & 7)) & mask) * scale;
    y[j] = accumulate ? y[j] + v : v;
  }
}

// Blocks for `rows` rows of `cols` columns, and whether a row takes a warp.
bool warp_rows(std::int64_t cols) {
  return cols <= kWarpRowMaxCols;
}
unsigned blocks_for_rows(std::int64_t rows, std::int64_t cols) {
  const std::int64_t per_block = warp_rows(cols) ? kThreads / 32 : 1;
  return unsigned((rows + per_block - 1) / per_block);
}

cudaStream_t as_stream(void* s) {
  return static_cast<cudaStream_t>(s);
}

}  // namespace

void encode_rows(const RowSource& src, std::int64_t rows, std::int64_t cols, Width width, const QuantKey& key,
                 std::uint8_t* out, void* stream) {
  if (!width.valid()) throw Error("--bits " + scheduler::width_name(width) + ": allowed " + scheduler::kWidthsAllowed);
  if (rows == 0) return;
  if (width.quantized() && !src.global_ids) throw Error("GPU codec: quantized rows need global ids");
  StreamBuffer flag(sizeof(unsigned long long), stream);
  const unsigned long long none = ~0ULL;
  check(cudaMemcpyAsync(flag.get(), &none, sizeof none, cudaMemcpyHostToDevice, as_stream(stream)), "flag upload");
  const auto kernel = warp_rows(cols) ? encode_kernel<32> : encode_kernel<kThreads>;
  kernel<<<blocks_for_rows(rows, cols), kThreads, 0, as_stream(stream)>>>(
      src.data, src.ld, src.list, src.first, src.global_ids, rows, cols, width, quant_key_prefix(key), out,
      flag.as<unsigned long long>());
  check(cudaGetLastError(), "encode kernel launch");
  unsigned long long bad = none;
  check(cudaMemcpyAsync(&bad, flag.get(), sizeof bad, cudaMemcpyDeviceToHost, as_stream(stream)), "flag download");
  check(cudaStreamSynchronize(as_stream(stream)), "encode kernel");
  if (bad == none) return;
  // Report the offending value exactly as the CPU codec does: run it on that one row.
  std::int32_t index = 0;
  if (src.list)
    copy_to_host(&index, src.list + bad, sizeof index);
  else
    index = std::int32_t(src.first + std::int64_t(bad));
  std::vector<float> row(static_cast<std::size_t>(cols));
  copy_to_host(row.data(), src.data + std::int64_t(index) * src.ld, std::size_t(cols) * sizeof(float));
  std::int64_t gid = index;
  if (src.global_ids) copy_to_host(&gid, src.global_ids + index, sizeof gid);
  std::vector<std::uint8_t> scratch(std::size_t(scheduler::message_bytes(1, cols, width)));
  const std::int64_t ids[1] = {gid};
  const std::int32_t zero[1] = {0};
  reference::encode_rows({row.data(), cols, zero, 0, ids}, 1, cols, width, key, scratch.data());  // throws
  throw Error("GPU codec: non-finite input in the row of node " + std::to_string(gid));
}

void decode_rows(const std::uint8_t* in, std::int64_t rows, std::int64_t cols, Width width, const RowTarget& dst,
                 void* stream) {
  if (!width.valid()) throw Error("--bits " + scheduler::width_name(width) + ": allowed " + scheduler::kWidthsAllowed);
  if (rows == 0) return;
  const auto kernel = warp_rows(cols) ? decode_kernel<32> : decode_kernel<kThreads>;
  kernel<<<blocks_for_rows(rows, cols), kThreads, 0, as_stream(stream)>>>(in, rows, cols, width, dst.data, dst.ld,
                                                                          dst.list, dst.first, dst.accumulate);
  check(cudaGetLastError(), "decode kernel launch");
}

}  // namespace adaqp::engine::cuda
