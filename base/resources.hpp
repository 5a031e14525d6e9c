// What a process uses of its host.
#pragma once
#include <sys/resource.h>

#include <cstdint>

namespace adaqp {

// This process's peak resident set size so far, bytes (getrusage's ru_maxrss, kilobytes on Linux).
inline std::int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return std::int64_t(u.ru_maxrss) * 1024;
}

}  // namespace adaqp
