// Counter-based random numbers: a value depends only on its key (seed and a tuple of counters),
// never on call order or thread count. Used for dropout masks (seed, epoch, layer, node, column),
// synthetic graphs and splits, so that any partitioning of the work reproduces the same stream.
#pragma once
#include <cmath>
#include <cstdint>
#include <initializer_list>

#include "base/host_device.hpp"

namespace adaqp {

// A uint16 view of an array of 64-bit hash words: element j is bits 16 (j % 4) .. 16 (j % 4) + 15
// of word j / 4 (little-endian), the 16 random bits the codecs and dropout take per element. Loops
// that read it vectorise where shifting the words by a per-element amount does not.
typedef std::uint16_t __attribute__((may_alias)) HashChunk16;
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "hash words are read as little-endian 16-bit chunks");

// SplitMix64 finaliser: a bijective 64-bit mixer with full avalanche.
ADAQP_HOST_DEVICE constexpr std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Hash of a key tuple; each element is folded in with a fresh mixing round:
// hash_key({a, b}) == hash_fold(hash_fold(kHashStart, a), b).
inline constexpr std::uint64_t kHashStart = 0x6a09e667f3bcc908ULL;
ADAQP_HOST_DEVICE constexpr std::uint64_t hash_fold(std::uint64_t h, std::uint64_t k) {
  return mix64(h ^ mix64(k));
}
constexpr std::uint64_t hash_key(std::initializer_list<std::uint64_t> key) {
  std::uint64_t h = kHashStart;
  for (std::uint64_t k : key) h = hash_fold(h, k);
  return h;
}

// Uniform in [0, 1) with 53 random bits.
constexpr double to_unit(std::uint64_t bits) {
  return double(bits >> 11) * 0x1.0p-53;
}

// Uniform integer in [0, n) (n > 0), by 128-bit multiply (negligible bias for n << 2^64).
inline std::uint64_t to_range(std::uint64_t bits, std::uint64_t n) {
  return std::uint64_t((static_cast<unsigned __int128>(bits) * n) >> 64);
}

// A small sequential generator on top of the hash, for loops that draw many values from one key.
class CounterRng {
 public:
  explicit CounterRng(std::uint64_t key) : key_(key) {}
  std::uint64_t next() { return mix64(key_ ^ mix64(counter_++)); }
  double uniform() { return to_unit(next()); }
  std::uint64_t below(std::uint64_t n) { return to_range(next(), n); }
  // Standard normal by Box-Muller (uses two uniforms per call; no cached state).
  double normal() {
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  std::uint64_t key_;
  std::uint64_t counter_ = 0;
};

}  // namespace adaqp
