// Bytes of a message of `rows` rows x `cols` columns at a given width, the one definition used by
// the scheduler (plan sizes), the codecs (buffer layout) and the records (bytes_sent, bytes_meta).
//   bits = 32: fp32 rows, no metadata.            payload = rows * cols * 4
//   bits = 16: IEEE fp16 rows, no metadata.       payload = rows * cols * 2
//   bits = kBf16 (-16): bfloat16 rows (the upper half of fp32, rounded to nearest even), no
//     metadata.                                   payload = rows * cols * 2
//   bits = 2, 4, 8: stochastic quantization: first every row's metadata (two fp32: min, scale),
//     then every row's codes, packed low bits first within a byte, each row padded to whole bytes:
//     metadata = rows * 8, payload = rows * ceil(cols * bits / 8)
#pragma once
#include <cstdint>
#include <string>

namespace adaqp::scheduler {

inline constexpr std::int64_t kRowMetaBytes = 8;  // fp32 min + fp32 scale

// Wire code of bfloat16 (a width of 16 bits like fp16, so it needs its own code; negative so that
// no arithmetic on widths can mistake it for a bit count).
inline constexpr int kBf16 = -16;

inline constexpr bool valid_bits(int bits) {
  return bits == 2 || bits == 4 || bits == 8 || bits == 16 || bits == kBf16 || bits == 32;
}
inline constexpr bool quantized(int bits) {
  return bits == 2 || bits == 4 || bits == 8;
}
// Bits one element occupies on the wire (bf16: 16).
inline constexpr int element_bits(int bits) {
  return bits == kBf16 ? 16 : bits;
}

inline constexpr std::int64_t row_payload_bytes(std::int64_t cols, int bits) {
  return quantized(bits) ? (cols * bits + 7) / 8 : cols * (element_bits(bits) / 8);
}
inline constexpr std::int64_t meta_bytes(std::int64_t rows, int bits) {
  return quantized(bits) ? rows * kRowMetaBytes : 0;
}
inline constexpr std::int64_t payload_bytes(std::int64_t rows, std::int64_t cols, int bits) {
  return rows * row_payload_bytes(cols, bits);
}
inline constexpr std::int64_t message_bytes(std::int64_t rows, std::int64_t cols, int bits) {
  return payload_bytes(rows, cols, bits) + meta_bytes(rows, bits);
}

// The user-facing name of a wire code: "2", "4", "8", "fp16", "bf16", "32" (what --bits accepts,
// and what records print).
inline std::string width_name(int bits) {
  return bits == 16 ? "fp16" : bits == kBf16 ? "bf16" : std::to_string(bits);
}
// The wire code of a --bits value: 2, 4, 8, 16 or fp16, bf16, 32; 0 when it names none.
inline int parse_width(const std::string& s) {
  if (s == "fp16" || s == "16") return 16;
  if (s == "bf16") return kBf16;
  if (s == "2" || s == "4" || s == "8" || s == "32") return std::stoi(s);
  return 0;
}
inline constexpr const char* kWidthsAllowed = "2, 4, 8, fp16 (16), bf16, 32";

}  // namespace adaqp::scheduler
