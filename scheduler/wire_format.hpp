// Wire widths and the bytes of a message, the one definition used by the scheduler (plan sizes),
// the codecs (buffer layout) and the records (bytes_sent, bytes_meta).
//
// A message of `rows` rows x `cols` columns at width w:
//   fp32: rows, no metadata.                      payload = rows * cols * 4
//   fp16: IEEE binary16 rows, no metadata.        payload = rows * cols * 2
//   bf16: bfloat16 rows (the upper half of fp32, rounded to nearest even), no metadata.
//                                                 payload = rows * cols * 2
//   quant(b), b = 1, 2, 4, 8: stochastic quantization: first every row's metadata (two fp32: min,
//     scale), then every row's codes, packed low bits first within a byte, each row padded to whole
//     bytes: metadata = rows * 8, payload = rows * ceil(cols * b / 8)
#pragma once
#include <compare>
#include <cstdint>
#include <ostream>
#include <string>

#include "base/host_device.hpp"

namespace adaqp::scheduler {

inline constexpr std::int64_t kRowMetaBytes = 8;  // fp32 min + fp32 scale

// How the elements of a message travel: one of the widths above, or `mixed` (a message whose rows
// use several widths; its MessageLayout says which). A 4-byte value type.
//
// code(): the integer plan dumps, layouts exchanged between ranks, checkpoints and the records'
// histograms hold: 32, 16 (fp16), -16 (bf16: a width of 16 bits like fp16, so it needs its own
// code; negative so that no arithmetic on codes can take it for a bit count), 1, 2, 4, 8; 0 = mixed.
class Width {
 public:
  ADAQP_HOST_DEVICE constexpr Width() = default;  // fp32
  ADAQP_HOST_DEVICE static constexpr Width fp32() { return Width(32); }
  ADAQP_HOST_DEVICE static constexpr Width fp16() { return Width(16); }
  ADAQP_HOST_DEVICE static constexpr Width bf16() { return Width(-16); }
  // Stochastic quantization to b bits (valid for b = 1, 2, 4, 8).
  ADAQP_HOST_DEVICE static constexpr Width quant(int b) { return Width(b); }
  ADAQP_HOST_DEVICE static constexpr Width mixed() { return Width(0); }
  // The width of a code (see above); check valid() before encoding with it.
  ADAQP_HOST_DEVICE static constexpr Width from_code(int code) { return Width(code); }

  ADAQP_HOST_DEVICE constexpr int code() const { return code_; }
  // One of fp32, fp16, bf16, quant(1 | 2 | 4 | 8): a width a message can be encoded at.
  ADAQP_HOST_DEVICE constexpr bool valid() const { return quantized() || code_ == 16 || code_ == -16 || code_ == 32; }
  ADAQP_HOST_DEVICE constexpr bool quantized() const { return code_ == 1 || code_ == 2 || code_ == 4 || code_ == 8; }
  // fp16 or bf16: 16-bit floating point, no metadata.
  ADAQP_HOST_DEVICE constexpr bool half() const { return code_ == 16 || code_ == -16; }
  ADAQP_HOST_DEVICE constexpr bool is_mixed() const { return code_ == 0; }
  // Bits one element occupies on the wire: 1, 2, 4, 8, 16 (fp16, bf16) or 32 (0 for mixed).
  ADAQP_HOST_DEVICE constexpr int element_bits() const { return code_ < 0 ? -code_ : code_; }

  ADAQP_HOST_DEVICE friend constexpr bool operator==(Width a, Width b) { return a.code_ == b.code_; }
  // Ordered by code (for maps keyed by width): bf16, mixed, 1, 2, 4, 8, fp16, fp32.
  friend constexpr auto operator<=>(Width, Width) = default;

 private:
  ADAQP_HOST_DEVICE constexpr explicit Width(int code) : code_(code) {}
  int code_ = 32;
};

// Bytes of one row's payload, of the metadata of `rows` rows, and of a whole message (valid widths).
ADAQP_HOST_DEVICE constexpr std::int64_t row_payload_bytes(std::int64_t cols, Width w) {
  return w.quantized() ? (cols * w.element_bits() + 7) / 8 : cols * (w.element_bits() / 8);
}
ADAQP_HOST_DEVICE constexpr std::int64_t meta_bytes(std::int64_t rows, Width w) {
  return w.quantized() ? rows * kRowMetaBytes : 0;
}
ADAQP_HOST_DEVICE constexpr std::int64_t payload_bytes(std::int64_t rows, std::int64_t cols, Width w) {
  return rows * row_payload_bytes(cols, w);
}
ADAQP_HOST_DEVICE constexpr std::int64_t message_bytes(std::int64_t rows, std::int64_t cols, Width w) {
  return payload_bytes(rows, cols, w) + meta_bytes(rows, w);
}

// The user-facing name of a width: "1", "2", "4", "8", "fp16", "bf16", "32" (what --bits accepts, and
// what records print); "mixed" for a mixed message.
inline std::string width_name(Width w) {
  if (w == Width::fp16()) return "fp16";
  if (w == Width::bf16()) return "bf16";
  if (w.is_mixed()) return "mixed";
  return std::to_string(w.code());
}
// The width a --bits value names (1, 2, 4, 8, 16 or fp16, bf16, 32); mixed when it names none.
inline Width parse_width(const std::string& s) {
  if (s == "fp16" || s == "16") return Width::fp16();
  if (s == "bf16") return Width::bf16();
  if (s == "32") return Width::fp32();
  if (s == "1" || s == "2" || s == "4" || s == "8") return Width::quant(std::stoi(s));
  return Width::mixed();
}
inline constexpr const char* kWidthsAllowed = "1, 2, 4, 8, fp16 (16), bf16, 32";
// Prints width_name (test messages, logs).
inline std::ostream& operator<<(std::ostream& os, Width w) {
  return os << width_name(w);
}

}  // namespace adaqp::scheduler
