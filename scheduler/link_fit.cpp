#include "scheduler/link_fit.hpp"

#include "base/error.hpp"

namespace adaqp::scheduler {

AlphaBeta fit_alpha_beta(const std::vector<std::pair<double, double>>& bytes_seconds) {
  if (bytes_seconds.size() < 2) throw Error("link fit: needs at least 2 message sizes");
  const double n = double(bytes_seconds.size());
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const auto& [x, y] : bytes_seconds) {
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const double den = n * sxx - sx * sx;
  AlphaBeta l;
  l.beta_s_per_byte = den > 0 ? (n * sxy - sx * sy) / den : 0;
  l.alpha_s = (sy - l.beta_s_per_byte * sx) / n;
  if (l.alpha_s < 0) {  // latency below resolution: fit through the origin
    l.alpha_s = 0;
    l.beta_s_per_byte = sxx > 0 ? sxy / sxx : 0;
  }
  const double mean = sy / n;
  double ss_res = 0, ss_tot = 0;
  for (const auto& [x, y] : bytes_seconds) {
    const double pred = l.alpha_s + l.beta_s_per_byte * x;
    ss_res += (y - pred) * (y - pred);
    ss_tot += (y - mean) * (y - mean);
  }
  l.r2 = ss_tot > 0 ? 1.0 - ss_res / ss_tot : 1.0;
  return l;
}

AlphaBeta fit_round_trip(const std::vector<std::pair<double, double>>& bytes_round_trip_s) {
  AlphaBeta l = fit_alpha_beta(bytes_round_trip_s);
  l.alpha_s /= 2;
  return l;
}

}  // namespace adaqp::scheduler
