// The alpha-beta model of a link fitted to measured message times: the one fit behind the engine's
// link probe (channel costs of the adaptive assigner, engine/trainer.hpp: probe_links) and the
// simulator's calibration (simulator/profile.hpp: fit_link, used by `adaqp calibrate`).
#pragma once
#include <utility>
#include <vector>

namespace adaqp::scheduler {

struct AlphaBeta {
  double alpha_s = 0;          // latency of one message (s), >= 0
  double beta_s_per_byte = 0;  // inverse bandwidth (s per byte)
  double r2 = 0;               // coefficient of determination of the fit on the samples
};

// Ordinary least squares of seconds = alpha + beta * bytes over (bytes, seconds) samples. When the
// intercept comes out negative (latency below the timer's resolution), alpha = 0 and the line is
// fitted through the origin. Throws adaqp::Error with fewer than 2 samples.
AlphaBeta fit_alpha_beta(const std::vector<std::pair<double, double>>& bytes_seconds);

// Ping-pong samples (bytes one way, a 1-byte reply: round trip = 2 alpha + beta * bytes): the same
// fit with the intercept halved.
AlphaBeta fit_round_trip(const std::vector<std::pair<double, double>>& bytes_round_trip_s);

}  // namespace adaqp::scheduler
