// Codecs: sizes, grid round trip, unbiasedness and variance against theory, fast == reference
// bit for bit, constant rows, top code, non-finite input, fp16 and bf16.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "base/error.hpp"
#include "base/random.hpp"
#include "engine/codec.hpp"
#include "scheduler/wire_format.hpp"

using namespace adaqp;
using namespace adaqp::engine;
using scheduler::message_bytes;
using scheduler::Width;

namespace {
std::vector<std::uint8_t> encode(const std::vector<float>& x, std::int64_t rows, std::int64_t cols, Width bits,
                                 const QuantKey& key, bool fast, const std::vector<std::int64_t>* ids = nullptr) {
  std::vector<std::uint8_t> out(std::size_t(message_bytes(rows, cols, bits)), 0xAB);
  RowSource src{x.data(), cols, nullptr, 0, ids ? ids->data() : nullptr};
  if (fast)
    encode_rows(src, rows, cols, bits, key, out.data());
  else
    reference::encode_rows(src, rows, cols, bits, key, out.data());
  return out;
}
std::vector<float> decode(const std::vector<std::uint8_t>& in, std::int64_t rows, std::int64_t cols, Width bits,
                          bool fast) {
  std::vector<float> y(std::size_t(rows * cols), 0.0f);
  RowTarget dst{y.data(), cols, nullptr, 0, false};
  if (fast)
    decode_rows(in.data(), rows, cols, bits, dst);
  else
    reference::decode_rows(in.data(), rows, cols, bits, dst);
  return y;
}
std::vector<float> random_rows(std::int64_t n, std::uint64_t seed) {
  CounterRng rng(seed);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (auto& v : x) v = float(rng.normal() * 3.0 + 1.0);
  return x;
}
}  // namespace

TEST_CASE("message sizes are exact", "[codec]") {
  CHECK(message_bytes(10, 7, Width::fp32()) == 280);
  CHECK(message_bytes(10, 7, Width::fp16()) == 140);
  CHECK(message_bytes(10, 7, Width::quant(8)) == 10 * (8 + 7));
  CHECK(message_bytes(10, 7, Width::quant(4)) == 10 * (8 + 4));  // 28 bits -> 4 bytes
  CHECK(message_bytes(10, 7, Width::quant(2)) == 10 * (8 + 2));  // 14 bits -> 2 bytes
  CHECK(scheduler::meta_bytes(10, Width::quant(2)) == 80);
  CHECK(message_bytes(10, 7, Width::quant(1)) == 10 * (8 + 1));     // 7 bits -> 1 byte
  CHECK(message_bytes(10, 17, Width::quant(1)) == 10 * (8 + 3));    // 17 bits -> 3 bytes
  CHECK(message_bytes(10, 256, Width::quant(1)) == 10 * (8 + 32));  // 8 values a byte
  CHECK(scheduler::parse_width("1") == Width::quant(1));
  CHECK(scheduler::meta_bytes(10, Width::fp16()) == 0);
  CHECK(message_bytes(10, 7, Width::bf16()) == 140);
  CHECK(scheduler::meta_bytes(10, Width::bf16()) == 0);
  CHECK(scheduler::parse_width("bf16") == Width::bf16());
  CHECK(scheduler::parse_width("fp16") == Width::fp16());
  CHECK(scheduler::parse_width("4") == Width::quant(4));
  CHECK(scheduler::parse_width("12").is_mixed());
  CHECK(scheduler::width_name(Width::bf16()) == "bf16");
}

TEST_CASE("wire widths: codes, predicates, order", "[codec]") {
  // The codes plan dumps, layouts and checkpoints hold.
  CHECK(Width().code() == 32);
  CHECK(Width::bf16().code() == -16);
  CHECK(Width::mixed().code() == 0);
  CHECK(Width::from_code(-16) == Width::bf16());
  CHECK(Width::bf16() != Width::fp16());
  CHECK(Width::bf16().element_bits() == 16);
  CHECK(Width::quant(4).element_bits() == 4);
  CHECK(Width::bf16().half());
  CHECK_FALSE(Width::quant(8).half());
  CHECK(Width::quant(2).quantized());
  CHECK(Width::quant(1).quantized());
  CHECK(Width::quant(1).valid());
  CHECK(Width::quant(1).element_bits() == 1);
  CHECK(Width::quant(1) < Width::quant(2));
  CHECK_FALSE(Width::fp16().quantized());
  CHECK_FALSE(Width::mixed().valid());
  CHECK_FALSE(Width::quant(3).valid());
  CHECK(Width::from_code(8).valid());
  CHECK(Width::quant(2) < Width::quant(8));  // maps keyed by width list narrow widths first
  CHECK(scheduler::width_name(Width::mixed()) == "mixed");
}

TEST_CASE("fast codec equals the reference bit for bit", "[codec]") {
  const QuantKey key{5, 3, 1, 1};
  for (Width bits : {Width::quant(1), Width::quant(2), Width::quant(4), Width::quant(8), Width::fp16(), Width::bf16(),
                     Width::fp32()})
    for (std::int64_t cols : {1, 3, 4, 5, 7, 8, 9, 17, 64, 255}) {
      CAPTURE(bits, cols);
      const std::int64_t rows = 37;
      auto x = random_rows(rows * cols, std::uint64_t(cols));
      for (std::int64_t j = 0; j < cols; ++j) x[std::size_t(5 * cols + j)] = 2.5f;  // a constant row
      std::vector<std::int64_t> ids(rows);
      std::iota(ids.begin(), ids.end(), 1000);
      const auto a = encode(x, rows, cols, bits, key, false, &ids), b = encode(x, rows, cols, bits, key, true, &ids);
      REQUIRE(a == b);
      const auto ya = decode(a, rows, cols, bits, false), yb = decode(a, rows, cols, bits, true);
      REQUIRE(std::memcmp(ya.data(), yb.data(), ya.size() * 4) == 0);
      // Constant rows decode exactly; every value stays within its row's range.
      for (std::int64_t j = 0; j < cols; ++j) REQUIRE(ya[std::size_t(5 * cols + j)] == 2.5f);
      if (bits == Width::fp32()) REQUIRE(ya == x);
    }
}

TEST_CASE("values on the grid round-trip exactly, the top code never overflows", "[codec]") {
  const QuantKey key{1, 1, 0, 0};
  for (Width width : {Width::quant(1), Width::quant(2), Width::quant(4), Width::quant(8)}) {
    const int bits = width.element_bits(), levels = (1 << bits) - 1;
    // lo = -2, scale = 0.5: every grid value lo + k * scale is exact in fp32.
    std::vector<float> x;
    for (int k = 0; k <= levels; ++k) x.push_back(-2.0f + 0.5f * float(k));
    const std::int64_t cols = std::int64_t(x.size());
    for (bool fast : {false, true}) {
      const auto enc = encode(x, 1, cols, width, key, fast);
      CHECK(decode(enc, 1, cols, width, fast) == x);
      // The last code is the top code: all ones in its field, nothing spilled past the row.
      const std::uint8_t* payload = enc.data() + 8;
      const std::int64_t last_bit = (cols - 1) * bits;
      CHECK(((payload[last_bit / 8] >> (last_bit % 8)) & levels) == levels);
    }
  }
}

TEST_CASE("stochastic rounding is unbiased with the predicted variance", "[codec]") {
  const std::int64_t cols = 64, trials = 4000;
  const auto x = random_rows(cols, 99);
  for (Width width : {Width::quant(1), Width::quant(2), Width::quant(4), Width::quant(8)}) {
    const int bits = width.element_bits();
    std::vector<double> mean(cols, 0.0), sq(cols, 0.0);
    for (std::int64_t t = 0; t < trials; ++t) {
      const QuantKey key{7, t, 0, 0};
      const auto y = decode(encode(x, 1, cols, width, key, true), 1, cols, width, true);
      for (std::int64_t j = 0; j < cols; ++j) {
        mean[j] += y[j];
        sq[j] += double(y[j] - x[j]) * double(y[j] - x[j]);
      }
    }
    const float lo = *std::min_element(x.begin(), x.end()), hi = *std::max_element(x.begin(), x.end());
    const double scale = (double(hi) - lo) / double((1 << bits) - 1);
    double predicted = 0, measured = 0;
    for (std::int64_t j = 0; j < cols; ++j) {
      const double pos = (double(x[j]) - lo) / scale, f = pos - std::floor(pos);
      const double var = scale * scale * f * (1 - f);
      predicted += var;
      measured += sq[j] / double(trials);
      // Unbiased: the mean of the trials is within 5 standard errors of x (plus the 2^-16 grain of u).
      const double se = std::sqrt(std::max(var, 1e-12) / double(trials));
      CAPTURE(bits, j, x[j], mean[j] / double(trials));
      REQUIRE(std::fabs(mean[j] / double(trials) - x[j]) <= 5 * se + scale / 65536.0 + 1e-6);
    }
    CAPTURE(bits, predicted, measured);
    CHECK(measured == Approx(predicted).epsilon(0.10));    // within 10% of theory
    CHECK(predicted <= double(cols) * scale * scale / 4);  // the docs/design.md bound
  }
}

TEST_CASE("non-finite input is a clear error, fp16 rounds to nearest", "[codec]") {
  const QuantKey key{};
  std::vector<float> x = {1.0f, std::numeric_limits<float>::quiet_NaN(), 2.0f};
  std::vector<std::int64_t> ids = {42};
  for (Width bits : {Width::quant(2), Width::quant(8), Width::fp16()})
    for (bool fast : {false, true}) {
      CAPTURE(bits, fast);
      CHECK_THROWS_WITH(encode(x, 1, 3, bits, key, fast, &ids),
                        Catch::Contains("non-finite") && Catch::Contains("node 42") && Catch::Contains("column 1"));
    }
  x[1] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(encode(x, 1, 3, Width::quant(4), key, true, &ids), Error);
  x[1] = 1e6f;  // finite but beyond fp16
  CHECK_THROWS_WITH(encode(x, 1, 3, Width::fp16(), key, true, &ids), Catch::Contains("column 1"));
  CHECK(from_half(to_half(1.0f + 1.0f / 4096)) == 1.0f);  // below half an fp16 ulp: rounds down
  CHECK(from_half(to_half(65504.0f)) == 65504.0f);
}

TEST_CASE("fp16 and bf16 round trips stay within their precision", "[codec]") {
  // Round to nearest: relative error at most half an ulp, 2^-11 (fp16, 10 fraction bits) and 2^-8
  // (bf16, 7 fraction bits), for values in fp16's normal range; bf16 keeps fp32's exponent range.
  const QuantKey key{1, 1, 0, 0};
  const std::int64_t rows = 64, cols = 33;
  auto x = random_rows(rows * cols, 11);
  for (auto [bits, eps] : {std::pair{Width::fp16(), 0x1p-11}, std::pair{Width::bf16(), 0x1p-8}}) {
    CAPTURE(bits);
    const auto y = decode(encode(x, rows, cols, bits, key, true), rows, cols, bits, true);
    double worst = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (std::fabs(x[i]) > 1e-4) worst = std::max(worst, std::fabs(double(y[i]) - x[i]) / std::fabs(double(x[i])));
    CHECK(worst <= eps);
    CHECK(worst > eps / 16);  // the format really is that coarse (the test can fail)
    // Values representable in the format round-trip exactly.
    std::vector<float> exact = {0.0f, -0.0f, 1.0f, -2.5f, 0.15625f, 1024.0f, -3.0f * 0x1p-10f};
    const auto e = decode(encode(exact, 1, std::int64_t(exact.size()), bits, key, false), 1, std::int64_t(exact.size()),
                          bits, false);
    CHECK(e == exact);
  }
  CHECK(from_bfloat16(to_bfloat16(1e30f)) == Approx(1e30f).epsilon(0x1p-8));      // beyond fp16, fine in bf16
  CHECK(from_bfloat16(to_bfloat16(1.0f + 0x1p-8f)) == 1.0f);                      // a tie: rounds to even
  CHECK(from_bfloat16(to_bfloat16(1.0f + 0x1p-7f + 0x1p-8f)) == 1.0f + 0x1p-6f);  // tie, odd: rounds up
  std::vector<float> big = {1.0f, 3.4e38f, 2.0f};
  CHECK_THROWS_WITH(encode(big, 1, 3, Width::bf16(), key, true), Catch::Contains("column 1"));
  CHECK_THROWS_WITH(encode(big, 1, 3, Width::bf16(), key, false), Catch::Contains("column 1"));
}

TEST_CASE("gather / scatter-add through row lists", "[codec]") {
  // Rows 3 and 1 of a 4 x 5 matrix are sent; the receiver adds them into its rows 0 and 2.
  std::vector<float> x(20);
  std::iota(x.begin(), x.end(), 0.0f);
  const std::int32_t send[] = {3, 1}, recv[] = {0, 2};
  std::vector<std::uint8_t> msg(std::size_t(message_bytes(2, 5, Width::fp32())));
  encode_rows({x.data(), 5, send, 0, nullptr}, 2, 5, Width::fp32(), {}, msg.data());
  std::vector<float> y(20, 1.0f);
  decode_rows(msg.data(), 2, 5, Width::fp32(), {y.data(), 5, recv, 0, true});
  CHECK(y[0] == 16.0f);  // 1 + x[15]
  CHECK(y[10] == 6.0f);  // 1 + x[5]
  CHECK(y[5] == 1.0f);
}

TEST_CASE("the row key's prefix form equals the whole-tuple hash", "[codec]") {
  const QuantKey k{12345, 7, 2, 1};
  for (std::int64_t g : {0L, 1L, 99999L})
    CHECK(quant_row_key(quant_key_prefix(k), g) == hash_key({k.seed, 7, 2, 1, std::uint64_t(g), 0x9a17ULL}));
}
