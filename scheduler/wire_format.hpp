// Bytes of a message of `rows` rows x `cols` columns at a given width, the one definition used by
// the scheduler (plan sizes), the codecs (buffer layout) and the records (bytes_sent, bytes_meta).
//   bits = 32: fp32 rows, no metadata.            payload = rows * cols * 4
//   bits = 16: IEEE fp16 rows, no metadata.       payload = rows * cols * 2
//   bits = 2, 4, 8: stochastic quantization: first every row's metadata (two fp32: min, scale),
//     then every row's codes, packed low bits first within a byte, each row padded to whole bytes:
//     metadata = rows * 8, payload = rows * ceil(cols * bits / 8)
#pragma once
#include <cstdint>

namespace adaqp::scheduler {

inline constexpr std::int64_t kRowMetaBytes = 8;  // fp32 min + fp32 scale

inline constexpr bool valid_bits(int bits) { return bits == 2 || bits == 4 || bits == 8 || bits == 16 || bits == 32; }
inline constexpr bool quantized(int bits) { return bits == 2 || bits == 4 || bits == 8; }

inline constexpr std::int64_t row_payload_bytes(std::int64_t cols, int bits) {
  return quantized(bits) ? (cols * bits + 7) / 8 : cols * (bits / 8);
}
inline constexpr std::int64_t meta_bytes(std::int64_t rows, int bits) { return quantized(bits) ? rows * kRowMetaBytes : 0; }
inline constexpr std::int64_t payload_bytes(std::int64_t rows, std::int64_t cols, int bits) {
  return rows * row_payload_bytes(cols, bits);
}
inline constexpr std::int64_t message_bytes(std::int64_t rows, std::int64_t cols, int bits) {
  return payload_bytes(rows, cols, bits) + meta_bytes(rows, bits);
}

}  // namespace adaqp::scheduler
