// Message codecs: rows of fp32 values <-> the wire format of scheduler/wire_format.hpp.
//
// Stochastic quantization of one row x (length F) to b in {1, 2, 4, 8} bits:
//   lo = min x, hi = max x, scale = (hi - lo) / (2^b - 1)   (fp32; scale = 0 for a constant row)
//   q_j = min(floor((x_j - lo) / scale + u_j), 2^b - 1),  u_j ~ U[0, 1) with 16 random bits
//   x^_j = lo + q_j * scale
// so E[x^_j] = x_j (up to the 2^-16 resolution of u) and Var[x^_j] = scale^2 f_j (1 - f_j) with
// f_j the fractional part of (x_j - lo) / scale; at most scale^2 / 4.
// u_j depends only on (seed, epoch, layer, direction, global row id, j): reproducible anywhere.
// NaN or infinite inputs throw adaqp::Error (also values a 16-bit format cannot hold). fp16 and
// bf16 are round-to-nearest-even (relative error at most 2^-11 and 2^-8); fp32 is a copy.
//
// Two implementations with bit-identical output: the scalar reference (`reference::`) and the
// fast one (OpenMP over rows, vectorisable inner loops), tested against each other.
#pragma once
#include <cstdint>

#include "base/random.hpp"
#include "scheduler/wire_format.hpp"

namespace adaqp::engine {

// Key of a message's random stream; row ids are global node ids.
struct QuantKey {
  std::uint64_t seed = 0;
  std::int64_t epoch = 0;
  int layer = 0;
  int direction = 0;  // 0 forward, 1 backward
};

// The random stream of a message row: hash_key({seed, epoch, layer, direction, global row, 0x9a17}),
// computed as a per-message prefix and a per-row step so that device code (engine/cuda) shares it.
// Element j's u_j takes 16 bits of mix64(row key ^ (j / 4)): bits 16 (j % 4) and up.
inline std::uint64_t quant_key_prefix(const QuantKey& k) {
  std::uint64_t h = kHashStart;
  for (std::uint64_t v : {k.seed, std::uint64_t(k.epoch), std::uint64_t(k.layer), std::uint64_t(k.direction)})
    h = hash_fold(h, v);
  return h;
}
ADAQP_HOST_DEVICE constexpr std::uint64_t quant_row_key(std::uint64_t prefix, std::int64_t global_row) {
  return hash_fold(hash_fold(prefix, std::uint64_t(global_row)), 0x9a17ULL);
}

// Encodes `rows` rows (row r is src + index(r) * ld, index(r) = list ? list[r] : first + r, global
// id global_ids[index(r)]) of `cols` values into out (scheduler::message_bytes(rows, cols, width)).
struct RowSource {
  const float* data = nullptr;
  std::int64_t ld = 0;                 // row stride of data
  const std::int32_t* list = nullptr;  // row indices, or null for [first, first + rows)
  std::int64_t first = 0;
  const std::int64_t* global_ids = nullptr;  // by row index; required for quantized widths
  std::int64_t index(std::int64_t r) const { return list ? std::int64_t(list[r]) : first + r; }
};
// Where decoded rows go: row r to dst + index(r) * ld, overwritten or added.
struct RowTarget {
  float* data = nullptr;
  std::int64_t ld = 0;
  const std::int32_t* list = nullptr;
  std::int64_t first = 0;
  bool accumulate = false;
  std::int64_t index(std::int64_t r) const { return list ? std::int64_t(list[r]) : first + r; }
};

// row_ranges (optional, `rows` floats): each encoded row's max - min, for the bit assigner.
void encode_rows(const RowSource& src, std::int64_t rows, std::int64_t cols, scheduler::Width width,
                 const QuantKey& key, std::uint8_t* out, float* row_ranges = nullptr);
void decode_rows(const std::uint8_t* in, std::int64_t rows, std::int64_t cols, scheduler::Width width,
                 const RowTarget& dst);

namespace reference {
void encode_rows(const RowSource& src, std::int64_t rows, std::int64_t cols, scheduler::Width width,
                 const QuantKey& key, std::uint8_t* out);
void decode_rows(const std::uint8_t* in, std::int64_t rows, std::int64_t cols, scheduler::Width width,
                 const RowTarget& dst);
}  // namespace reference

// fp16 conversions (IEEE binary16, round to nearest even; used by the 16-bit codec).
std::uint16_t to_half(float x);
float from_half(std::uint16_t h);
// bfloat16 conversions (upper 16 bits of fp32, round to nearest even; finite inputs).
std::uint16_t to_bfloat16(float x);
float from_bfloat16(std::uint16_t h);

}  // namespace adaqp::engine
