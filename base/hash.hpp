// FNV-1a, 64 bits: a fast, non-cryptographic fingerprint of bytes (manifest hashes and point ids
// in experiments/manifest.cpp, the executable's id in run records). Incremental: add() any number
// of chunks, hex() gives 16 lowercase hex digits.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace adaqp {

struct Fnv1a {
  std::uint64_t h = 1469598103934665603ull;
  void add(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) {
      h ^= p[i];
      h *= 1099511628211ull;
    }
  }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
    return buf;
  }
};

inline std::string fnv1a_hex(const std::string& bytes) {
  Fnv1a f;
  f.add(bytes.data(), bytes.size());
  return f.hex();
}

}  // namespace adaqp
