#include "engine/cpu/kernels.hpp"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/cpu/blas.hpp"

// The vector helpers below live in this file only (anonymous namespace, inlined), so GCC's note
// that passing them by value could change the ABI on another CPU (-Wpsabi, an error under
// -Werror) concerns no interface: silence it rather than fail the build there.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace adaqp::engine::cpu {

void set_blas_threads(int threads) {
  openblas_set_num_threads(threads);
}

namespace {
// Vectors of the widest register the compiler targets (-march=native: 64 bytes with AVX-512, 32
// with AVX/AVX2, else 16). A wider GCC vector than the target's registers is emulated through the
// stack (on AVX2, 64-byte vectors made every FMA a store / reload round trip: SpMM 2-3x slower).
// Memory is only touched through load_vec / store_vec, which make no alignment assumption.
#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif
typedef float VecF __attribute__((vector_size(kVecBytes)));
typedef double VecD __attribute__((vector_size(kVecBytes)));
template <class T>
struct VecOf;
template <>
struct VecOf<float> {
  using type = VecF;
};
template <>
struct VecOf<double> {
  using type = VecD;
};
template <class T>
using Vec = typename VecOf<T>::type;
// Unaligned vector load / store (memcpy lowers to one unaligned move).
template <class T>
inline Vec<T> load_vec(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <class T>
inline void store_vec(T* p, const Vec<T>& v) {
  std::memcpy(p, &v, sizeof(v));
}

// c + a * b rounded once where the target has FMA (as GCC contracts the vector lanes' a * b + c):
// the scalar tail lanes then round exactly as the vector lanes do, whatever the vectoriser makes
// of the tail loop (it split the tail of a 5-column product into multiplies and adds).
template <class T>
inline T madd(T a, T b, T c) {
#if defined(__FMA__)
  return std::fma(a, b, c);
#else
  return c + a * b;
#endif
}

// acc + w * x lane by lane, each lane rounded as madd rounds (GCC does not always contract the
// vector expression acc += w * x: a one-vector pass became a multiply and an add).
template <class T>
inline Vec<T> madd_vec(T w, const Vec<T>& x, Vec<T> acc) {
  constexpr int lanes = kVecBytes / sizeof(T);
#pragma GCC unroll 16
  for (int l = 0; l < lanes; ++l) acc[l] = madd(w, x[l], acc[l]);
  return acc;
}

// SpMM works on a row in passes of up to kPassVectors vectors (pass_cols<T> columns): one pass
// over the row's non-zeros per pass_cols<T> output columns. A pass of W columns keeps W / lanes
// vector accumulators and W % lanes scalar ones in registers across the non-zeros, so each
// non-zero costs W / lanes vector loads and FMAs plus W % lanes scalar ones; the row's index and
// weight loads and the gather's latency are paid once per pass. W is a template parameter, so
// every width, tails included, is unrolled; a row runs full passes, then one pass of the
// remaining 1 .. pass_cols<T> columns through a table of the instantiations.
constexpr int kPassVectors = 8;
template <class T>
constexpr int lanes_of = kVecBytes / int(sizeof(T));
template <class T>
constexpr int pass_cols = kPassVectors* lanes_of<T>;

// out[r, j0 : j0 + W] (+)= sum over row r's non-zeros k of val[k] * b[idx[k], j0 : j0 + W].
template <class T, int W>
void spmm_pass(const std::int64_t* __restrict off, const graph::NodeId* __restrict idx, const float* __restrict val,
               std::int64_t r, const T* __restrict b, std::int64_t cols, std::int64_t j0, T* __restrict out,
               bool accumulate) {
  constexpr int lanes = lanes_of<T>, NV = W / lanes, TAIL = W % lanes;
  Vec<T> acc[NV > 0 ? NV : 1];
  T tacc[TAIL > 0 ? TAIL : 1];
  T* o = out + r * cols + j0;
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) acc[v] = accumulate ? load_vec(o + v * lanes) : Vec<T>{};
#pragma GCC unroll 16
  for (int j = 0; j < TAIL; ++j) tacc[j] = accumulate ? o[NV * lanes + j] : T(0);
  for (std::int64_t k = off[r]; k < off[r + 1]; ++k) {
    const T w = T(val[k]);
    const T* in = b + std::int64_t(idx[k]) * cols + j0;
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[v] = madd_vec(w, load_vec(in + v * lanes), acc[v]);
#pragma GCC unroll 16
    for (int j = 0; j < TAIL; ++j) tacc[j] = madd(w, in[NV * lanes + j], tacc[j]);
  }
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) store_vec(o + v * lanes, acc[v]);
#pragma GCC unroll 16
  for (int j = 0; j < TAIL; ++j) o[NV * lanes + j] = tacc[j];
}
// acc[idx[k] - c0, j0 : j0 + W] += val[k] * in[j0 : j0 + W] for the non-zeros k of row r whose
// column idx[k] is in [c0, c1); the input block stays in registers.
template <class T, int W>
void scatter_pass(const graph::Csr& a, std::int64_t r, const T* __restrict in, std::int64_t cols, std::int64_t j0,
                  std::int64_t c0, std::int64_t c1, T* __restrict acc) {
  constexpr int lanes = lanes_of<T>, NV = W / lanes, TAIL = W % lanes;
  Vec<T> x[NV > 0 ? NV : 1];
  T tx[TAIL > 0 ? TAIL : 1];
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) x[v] = load_vec(in + j0 + v * lanes);
#pragma GCC unroll 16
  for (int j = 0; j < TAIL; ++j) tx[j] = in[j0 + NV * lanes + j];
  for (std::int64_t k = a.offsets[r]; k < a.offsets[r + 1]; ++k) {
    const std::int64_t i = a.indices[k];
    if (i < c0 || i >= c1) continue;
    const T w = T(a.values[k]);
    T* out = acc + (i - c0) * cols + j0;
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) store_vec(out + v * lanes, madd_vec(w, x[v], load_vec(out + v * lanes)));
#pragma GCC unroll 16
    for (int j = 0; j < TAIL; ++j) out[NV * lanes + j] = madd(w, tx[j], out[NV * lanes + j]);
  }
}
// Tables of the pass instantiations: entry W - 1 is the pass of W columns, W = 1 .. pass_cols<T>.
template <class T, std::size_t... W>
constexpr auto spmm_pass_table(std::index_sequence<W...>) {
  return std::array{&spmm_pass<T, int(W) + 1>...};
}
template <class T, std::size_t... W>
constexpr auto scatter_pass_table(std::index_sequence<W...>) {
  return std::array{&scatter_pass<T, int(W) + 1>...};
}
}  // namespace

template <class T>
void spmm(const graph::Csr& a, std::int64_t row_begin, std::int64_t row_end, const T* b, std::int64_t cols, T* c,
          bool accumulate, const RowTick& tick) {
  const auto* off = a.offsets.data();
  const auto* idx = a.indices.data();
  const auto* val = a.values.data();
  if (cols <= 0) return;
  constexpr std::int64_t P = pass_cols<T>;
  static constexpr auto passes = spmm_pass_table<T>(std::make_index_sequence<std::size_t(P)>{});
  const auto last = passes[std::size_t((cols - 1) % P)];  // the row's final pass: 1 .. P columns
  const std::int64_t tick_rows = std::max<std::int64_t>(tick.rows, 1);
#pragma omp parallel
  {
    const bool ticks = tick.fn && omp_get_thread_num() == 0;  // the tick runs on the caller's thread
    std::int64_t done = 0;
#pragma omp for schedule(dynamic, 64)
    for (std::int64_t r = row_begin; r < row_end; ++r) {
      if (ticks && ++done % tick_rows == 0) tick.fn();
      std::int64_t j0 = 0;
      for (; cols - j0 > P; j0 += P) spmm_pass<T, int(P)>(off, idx, val, r, b, cols, j0, c, accumulate);
      last(off, idx, val, r, b, cols, j0, c, accumulate);
    }
  }
}

template <class T>
void spmm_transposed(const graph::Csr& a, const T* b, std::int64_t cols, T* c, bool accumulate, std::int64_t rows,
                     const RowTick& tick, std::int64_t out_begin, std::int64_t out_end) {
  if (rows < 0) rows = a.num_rows;
  if (rows > a.num_rows)
    throw std::logic_error("spmm_transposed: " + std::to_string(rows) + " rows of a " + std::to_string(a.num_rows) +
                           "-row matrix");
  if (out_end < 0) out_end = a.num_cols;
  if (out_begin < 0 || out_begin > out_end || out_end > a.num_cols)
    throw std::logic_error("spmm_transposed: output rows [" + std::to_string(out_begin) + ", " +
                           std::to_string(out_end) + ") of " + std::to_string(a.num_cols));
  c += out_begin * cols;  // from here on c holds output rows [out_begin, out_end)
  const std::int64_t out_elems = (out_end - out_begin) * cols;
  if (!accumulate) std::fill(c, c + out_elems, T(0));
  if (cols <= 0) return;
  constexpr std::int64_t P = pass_cols<T>;
  static constexpr auto passes = scatter_pass_table<T>(std::make_index_sequence<std::size_t(P)>{});
  const auto last = passes[std::size_t((cols - 1) % P)];  // each row's final pass: 1 .. P columns
  const int threads = omp_get_max_threads();
  std::vector<T> partial(std::size_t(threads > 1 ? (threads - 1) * out_elems : 0), T(0));
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    T* acc = t == 0 ? c : partial.data() + (t - 1) * out_elems;
    std::int64_t done = 0;  // rows of this thread's share (the tick runs on thread 0: the caller)
#pragma omp for schedule(static)
    for (std::int64_t r = 0; r < rows; ++r) {
      if (t == 0 && tick.fn && ++done % std::max<std::int64_t>(tick.rows, 1) == 0) tick.fn();
      const T* in = b + r * cols;
      std::int64_t j0 = 0;
      for (; cols - j0 > P; j0 += P) scatter_pass<T, int(P)>(a, r, in, cols, j0, out_begin, out_end, acc);
      last(a, r, in, cols, j0, out_begin, out_end, acc);
    }
  }
  for (int t = 1; t < threads; ++t) axpy(out_elems, T(1), partial.data() + (t - 1) * out_elems, c);
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

template <class T>
void dropout_backward(const T* g, const std::uint8_t* keep, T scale, std::int64_t n, T* out) {
  // keep[i] ? g[i] * scale : +0, as a bit mask: GCC compiles the select on a byte mask to a branch,
  // which a random mask mispredicts half the time (25x slower on 1.7M elements); the mask keeps
  // the result bit for bit (+0, never -0 or NaN, where keep[i] is 0).
  using Bits = std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t>;
  static_assert(sizeof(Bits) == sizeof(T));
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const T v = g[i] * scale;
    Bits b;
    std::memcpy(&b, &v, sizeof b);
    b &= Bits(0) - Bits(keep[i] != 0);
    std::memcpy(out + i, &b, sizeof b);
  }
}

#define ADAQP_INSTANTIATE(T)                                                                                          \
  template void spmm<T>(const graph::Csr&, std::int64_t, std::int64_t, const T*, std::int64_t, T*, bool,              \
                        const RowTick&);                                                                              \
  template void spmm_transposed<T>(const graph::Csr&, const T*, std::int64_t, T*, bool, std::int64_t, const RowTick&, \
                                   std::int64_t, std::int64_t);                                                       \
  template void relu_forward<T>(T*, std::int64_t);                                                                    \
  template void relu_backward<T>(const T*, T*, std::int64_t);                                                         \
  template void add_bias<T>(T*, const T*, std::int64_t, std::int64_t);                                                \
  template void column_sums<T>(const T*, std::int64_t, std::int64_t, T*, bool);                                       \
  template void axpy<T>(std::int64_t, T, const T*, T*);                                                               \
  template void dropout_backward<T>(const T*, const std::uint8_t*, T, std::int64_t, T*);
ADAQP_INSTANTIATE(float)
ADAQP_INSTANTIATE(double)
#undef ADAQP_INSTANTIATE

}  // namespace adaqp::engine::cpu
