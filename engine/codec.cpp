// Codecs. Compiled with -ffp-contract=off (see CMakeLists.txt) so that the fast and reference
// implementations round identically: each arithmetic step is one IEEE operation in both.
#include "engine/codec.hpp"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/random.hpp"
#include "scheduler/wire_format.hpp"

namespace adaqp::engine {

using scheduler::Width;

std::uint16_t to_half(float x) {
  const _Float16 h = static_cast<_Float16>(x);
  std::uint16_t bits;
  std::memcpy(&bits, &h, 2);
  return bits;
}

float from_half(std::uint16_t bits) {
  _Float16 h;
  std::memcpy(&h, &bits, 2);
  return static_cast<float>(h);
}

std::uint16_t to_bfloat16(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even (finite x only)
  return std::uint16_t(u >> 16);
}

float from_bfloat16(std::uint16_t h) {
  const std::uint32_t u = std::uint32_t(h) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

namespace {

std::uint64_t row_key(const QuantKey& k, std::int64_t global_row) {
  return quant_row_key(quant_key_prefix(k), global_row);
}

// u_j in [0, 1): 16 bits of the hash of (row key, j / 4).
inline float uniform16(std::uint64_t key, std::int64_t j) {
  const std::uint64_t bits = mix64(key ^ std::uint64_t(j >> 2));
  return float((bits >> (16 * (j & 3))) & 0xffffu) * (1.0f / 65536.0f);
}

[[noreturn]] void non_finite(std::int64_t global_row, std::int64_t col, float v) {
  throw Error("quantization: non-finite value " + std::to_string(v) + " in row of node " + std::to_string(global_row) +
              ", column " + std::to_string(col) + " (training diverged?)");
}

// Largest magnitude a 16-bit format holds without overflowing to infinity (fp16: its maximum,
// as before; bf16: the largest float that rounds to a finite bfloat16, 0x7f7f7fff).
inline float max16(Width w) {
  return w == Width::fp16() ? 65504.0f : 3.3895312e38f;
}
inline bool too_large(Width w, float v) {
  return w.half() && std::fabs(v) > max16(w);
}

// Bits per element of a width a message can be encoded at; throws adaqp::Error for others.
int checked_bits(Width w) {
  if (!w.valid()) throw Error("--bits " + scheduler::width_name(w) + ": allowed " + scheduler::kWidthsAllowed);
  return w.element_bits();
}

// Packs a row's codes (one per byte, zero past cols up to 8 * row_bytes) into row_bytes bytes, low
// bits first.
inline void pack_codes(const std::uint8_t* __restrict c, std::int64_t cols, int bits, std::int64_t row_bytes,
                       std::uint8_t* __restrict p) {
  if (bits == 8) {
    std::memcpy(p, c, std::size_t(cols));
  } else if (bits == 4) {
#pragma omp simd
    for (std::int64_t b = 0; b < row_bytes; ++b) p[b] = std::uint8_t(c[2 * b] | (c[2 * b + 1] << 4));
  } else if (bits == 1) {
#pragma omp simd
    for (std::int64_t b = 0; b < row_bytes; ++b)
      p[b] = std::uint8_t(c[8 * b] | (c[8 * b + 1] << 1) | (c[8 * b + 2] << 2) | (c[8 * b + 3] << 3) |
                          (c[8 * b + 4] << 4) | (c[8 * b + 5] << 5) | (c[8 * b + 6] << 6) | (c[8 * b + 7] << 7));
  } else {
#pragma omp simd
    for (std::int64_t b = 0; b < row_bytes; ++b)
      p[b] = std::uint8_t(c[4 * b] | (c[4 * b + 1] << 2) | (c[4 * b + 2] << 4) | (c[4 * b + 3] << 6));
  }
}
// The inverse: row_bytes bytes into one code per byte (cols of them used).
inline void unpack_codes(const std::uint8_t* __restrict p, std::int64_t cols, int bits, std::int64_t row_bytes,
                         std::uint8_t* __restrict c) {
  if (bits == 8) {
    std::memcpy(c, p, std::size_t(cols));
  } else if (bits == 4) {
#pragma omp simd
    for (std::int64_t b = 0; b < row_bytes; ++b) {
      c[2 * b] = p[b] & 15;
      c[2 * b + 1] = std::uint8_t(p[b] >> 4);
    }
  } else if (bits == 1) {
#pragma omp simd
    for (std::int64_t b = 0; b < row_bytes; ++b)
      for (int t = 0; t < 8; ++t) c[8 * b + t] = (p[b] >> t) & 1;
  } else {
#pragma omp simd
    for (std::int64_t b = 0; b < row_bytes; ++b) {
      c[4 * b] = p[b] & 3;
      c[4 * b + 1] = (p[b] >> 2) & 3;
      c[4 * b + 2] = (p[b] >> 4) & 3;
      c[4 * b + 3] = std::uint8_t(p[b] >> 6);
    }
  }
}

// A row's minimum and maximum, as the reference's sequential std::min / std::max finds them (the
// first of equal values: a -0 / +0 tie keeps the earlier zero), and whether every value is finite.
// Vectorised: 16 running minima and maxima, and an OR of the exponent bits' all-ones test.
struct RowScan {
  float lo, hi;
  bool finite;
};
inline RowScan scan_row(const float* __restrict x, std::int64_t cols) {
  constexpr int W = 16;
  alignas(64) float lo[W], hi[W];
  alignas(64) std::uint32_t exp_max[W];  // OR of (exponent bits == all ones) per lane
  for (int t = 0; t < W; ++t) {
    lo[t] = hi[t] = x[0];
    exp_max[t] = 0;
  }
  typedef std::uint32_t __attribute__((may_alias)) Word;
  const auto* bits = reinterpret_cast<const Word*>(x);
  std::int64_t j = 0;
  for (; j + W <= cols; j += W) {
#pragma omp simd
    for (int t = 0; t < W; ++t) {
      const float v = x[j + t];
      lo[t] = v < lo[t] ? v : lo[t];
      hi[t] = v > hi[t] ? v : hi[t];
      exp_max[t] |= (bits[j + t] & 0x7f800000u) == 0x7f800000u ? 1u : 0u;
    }
  }
  RowScan s{x[0], x[0], true};
  std::uint32_t special = 0;
  for (int t = 0; t < W; ++t) {
    s.lo = lo[t] < s.lo ? lo[t] : s.lo;
    s.hi = hi[t] > s.hi ? hi[t] : s.hi;
    special |= exp_max[t];
  }
  for (; j < cols; ++j) {
    s.lo = x[j] < s.lo ? x[j] : s.lo;
    s.hi = x[j] > s.hi ? x[j] : s.hi;
    std::uint32_t u;
    std::memcpy(&u, x + j, 4);
    special |= std::uint32_t((u & 0x7f800000u) == 0x7f800000u);
  }
  s.finite = special == 0;
  if (!s.finite) return s;
  // A zero extreme: the sign of the first zero, as the sequential scan keeps it.
  for (float* e : {&s.lo, &s.hi})
    if (*e == 0.0f)
      for (std::int64_t k = 0; k < cols; ++k)
        if (x[k] == 0.0f) {
          *e = x[k];
          break;
        }
  return s;
}

// Codes of one row from its range, as both implementations compute them.
struct RowRange {
  float lo, scale, inv;
};
inline RowRange range_of(float lo, float hi, int bits) {
  const float levels = float((1 << bits) - 1);
  const float span = hi - lo;
  return span > 0.0f ? RowRange{lo, span / levels, levels / span} : RowRange{lo, 0.0f, 0.0f};
}

}  // namespace

namespace reference {

void encode_rows(const RowSource& src, std::int64_t rows, std::int64_t cols, Width width, const QuantKey& key,
                 std::uint8_t* out) {
  const int bits = checked_bits(width);
  const std::int64_t row_bytes = scheduler::row_payload_bytes(cols, width);
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t i = src.index(r);
    const float* x = src.data + i * src.ld;
    if (width == Width::fp32()) {
      std::memcpy(out + r * cols * 4, x, std::size_t(cols) * 4);
      continue;
    }
    const std::int64_t gid = src.global_ids ? src.global_ids[i] : i;
    for (std::int64_t j = 0; j < cols; ++j)
      if (!std::isfinite(x[j]) || too_large(width, x[j])) non_finite(gid, j, x[j]);
    if (width.half()) {
      for (std::int64_t j = 0; j < cols; ++j) {
        const std::uint16_t h = width == Width::fp16() ? to_half(x[j]) : to_bfloat16(x[j]);
        std::memcpy(out + (r * cols + j) * 2, &h, 2);
      }
      continue;
    }
    float lo = x[0], hi = x[0];
    for (std::int64_t j = 1; j < cols; ++j) {
      lo = std::min(lo, x[j]);
      hi = std::max(hi, x[j]);
    }
    const RowRange rr = range_of(lo, hi, bits);
    std::memcpy(out + r * 8, &rr.lo, 4);
    std::memcpy(out + r * 8 + 4, &rr.scale, 4);
    std::uint8_t* payload = out + rows * 8 + r * row_bytes;
    std::memset(payload, 0, std::size_t(row_bytes));
    const std::uint64_t k = row_key(key, gid);
    const std::uint32_t top = (1u << bits) - 1;
    for (std::int64_t j = 0; j < cols; ++j) {
      const float t = (x[j] - rr.lo) * rr.inv + uniform16(k, j);
      std::uint32_t q = std::uint32_t(t);  // t >= 0: truncation is floor
      if (q > top) q = top;
      const std::int64_t bit = j * bits;
      payload[bit / 8] |= std::uint8_t(q << (bit % 8));
    }
  }
}

void decode_rows(const std::uint8_t* in, std::int64_t rows, std::int64_t cols, Width width, const RowTarget& dst) {
  const int bits = checked_bits(width);
  const std::int64_t row_bytes = scheduler::row_payload_bytes(cols, width);
  for (std::int64_t r = 0; r < rows; ++r) {
    float* y = dst.data + dst.index(r) * dst.ld;
    for (std::int64_t j = 0; j < cols; ++j) {
      float v;
      if (width == Width::fp32()) {
        std::memcpy(&v, in + (r * cols + j) * 4, 4);
      } else if (width.half()) {
        std::uint16_t h;
        std::memcpy(&h, in + (r * cols + j) * 2, 2);
        v = width == Width::fp16() ? from_half(h) : from_bfloat16(h);
      } else {
        float lo, scale;
        std::memcpy(&lo, in + r * 8, 4);
        std::memcpy(&scale, in + r * 8 + 4, 4);
        const std::uint8_t* payload = in + rows * 8 + r * row_bytes;
        const std::int64_t bit = j * bits;
        const std::uint32_t q = (payload[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
        v = lo + float(q) * scale;
      }
      y[j] = dst.accumulate ? y[j] + v : v;
    }
  }
}

}  // namespace reference

void encode_rows(const RowSource& src, std::int64_t rows, std::int64_t cols, Width width, const QuantKey& key,
                 std::uint8_t* out, float* row_ranges) {
  const int bits = checked_bits(width);
  const std::int64_t row_bytes = scheduler::row_payload_bytes(cols, width);
  const std::int64_t groups = (cols + 3) / 4;
  bool bad = false;
  std::int64_t bad_row = -1;
#pragma omp parallel
  {
    std::vector<std::uint64_t> hashes(static_cast<std::size_t>(groups));
    // Codes of one row, zero past cols up to whole payload bytes (and whole hash groups).
    std::vector<std::uint8_t> codes(static_cast<std::size_t>(4 * groups + 8), 0);
#pragma omp for schedule(static)
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t i = src.index(r);
      const float* __restrict x = src.data + i * src.ld;
      if (width == Width::fp32() && !row_ranges) {
        std::memcpy(out + r * cols * 4, x, std::size_t(cols) * 4);
        continue;
      }
      const RowScan scan = scan_row(x, cols);
      const float lo = scan.lo, hi = scan.hi;
      if (row_ranges) row_ranges[r] = hi - lo;
      if (width == Width::fp32()) {
        std::memcpy(out + r * cols * 4, x, std::size_t(cols) * 4);
        continue;
      }
      if (!scan.finite || too_large(width, lo) || too_large(width, hi)) {
#pragma omp critical
        {
          bad = true;
          bad_row = r;
        }
        continue;
      }
      if (width == Width::fp16()) {
        auto* h = reinterpret_cast<_Float16*>(out + r * cols * 2);
#pragma omp simd
        for (std::int64_t j = 0; j < cols; ++j) h[j] = static_cast<_Float16>(x[j]);
        continue;
      }
      if (width == Width::bf16()) {
        auto* h = reinterpret_cast<std::uint16_t*>(out + r * cols * 2);
#pragma omp simd
        for (std::int64_t j = 0; j < cols; ++j) {
          std::uint32_t u;
          std::memcpy(&u, x + j, 4);
          h[j] = std::uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        }
        continue;
      }
      const RowRange rr = range_of(lo, hi, bits);
      std::memcpy(out + r * 8, &rr.lo, 4);
      std::memcpy(out + r * 8 + 4, &rr.scale, 4);
      // Three loops the compiler vectorises: the row's hashes (one per 4 columns), the codes (u_j is
      // the j-th 16-bit chunk of the hashes, little-endian), the packed bytes.
      const std::uint64_t k = row_key(key, src.global_ids ? src.global_ids[i] : i);
      for (std::int64_t g = 0; g < groups; ++g) hashes[std::size_t(g)] = mix64(k ^ std::uint64_t(g));
      const auto* u16 = reinterpret_cast<const HashChunk16*>(hashes.data());
      const float lo_r = rr.lo, inv = rr.inv;
      const std::uint32_t top = (1u << bits) - 1;
      std::uint8_t* __restrict c = codes.data();
#pragma omp simd
      for (std::int64_t j = 0; j < cols; ++j) {
        const float u = float(u16[j]) * (1.0f / 65536.0f);
        const float v = (x[j] - lo_r) * inv + u;
        const std::uint32_t q = std::uint32_t(v);  // v >= 0: truncation is floor
        c[j] = std::uint8_t(q > top ? top : q);
      }
      pack_codes(c, cols, bits, row_bytes, out + rows * 8 + r * row_bytes);
    }
  }
  if (bad) {  // report the first offending value with the reference's message
    const std::int64_t i = src.index(bad_row);
    const float* x = src.data + i * src.ld;
    for (std::int64_t j = 0; j < cols; ++j)
      if (!std::isfinite(x[j]) || too_large(width, x[j])) non_finite(src.global_ids ? src.global_ids[i] : i, j, x[j]);
  }
}

void decode_rows(const std::uint8_t* in, std::int64_t rows, std::int64_t cols, Width width, const RowTarget& dst) {
  const int bits = checked_bits(width);
  const std::int64_t row_bytes = scheduler::row_payload_bytes(cols, width);
#pragma omp parallel
  {
    std::vector<std::uint8_t> codes(static_cast<std::size_t>(row_bytes * 8 + 8));  // 1-bit: 8 codes a byte
#pragma omp for schedule(static)
    for (std::int64_t r = 0; r < rows; ++r) {
      float* __restrict y = dst.data + dst.index(r) * dst.ld;
      if (width == Width::fp32() || width == Width::fp16()) {
        const float* f = reinterpret_cast<const float*>(in + r * cols * 4);
        const _Float16* h = reinterpret_cast<const _Float16*>(in + r * cols * 2);
        if (dst.accumulate) {
#pragma omp simd
          for (std::int64_t j = 0; j < cols; ++j) y[j] += width == Width::fp32() ? f[j] : static_cast<float>(h[j]);
        } else if (width == Width::fp32()) {
          std::memcpy(y, f, std::size_t(cols) * 4);
        } else {
#pragma omp simd
          for (std::int64_t j = 0; j < cols; ++j) y[j] = static_cast<float>(h[j]);
        }
        continue;
      }
      if (width == Width::bf16()) {
        const std::uint16_t* h = reinterpret_cast<const std::uint16_t*>(in + r * cols * 2);
#pragma omp simd
        for (std::int64_t j = 0; j < cols; ++j) {
          const std::uint32_t u = std::uint32_t(h[j]) << 16;
          float v;
          std::memcpy(&v, &u, 4);
          y[j] = dst.accumulate ? y[j] + v : v;
        }
        continue;
      }
      float lo, scale;
      std::memcpy(&lo, in + r * 8, 4);
      std::memcpy(&scale, in + r * 8 + 4, 4);
      const std::uint8_t* payload = in + rows * 8 + r * row_bytes;
      unpack_codes(payload, cols, bits, row_bytes, codes.data());
      const std::uint8_t* __restrict c = codes.data();
      if (dst.accumulate) {
#pragma omp simd
        for (std::int64_t j = 0; j < cols; ++j) y[j] += lo + float(c[j]) * scale;
      } else {
#pragma omp simd
        for (std::int64_t j = 0; j < cols; ++j) y[j] = lo + float(c[j]) * scale;
      }
    }
  }
}

}  // namespace adaqp::engine
