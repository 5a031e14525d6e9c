// Adaptive bit-width assignment (AdaQP): for one exchange round (a layer and direction), choose a
// width for every group of message rows, trading quantization variance against transfer time.
//
// Model. Group g (rows_g rows of cols_g columns, all on channel c_g) sent at b bits has
//   variance  V_g(b) = S_g * cols_g / (4 (2^b - 1)^2)    with S_g = sum over its rows of
//             (aggregation weight at the receiver) x (row range)^2   -- the worst-case bound of
//             stochastic rounding, weighted by how much the row counts where it lands;
//   size      B_g(b) = message_bytes(rows_g, cols_g, b)  (scheduler/wire_format.hpp).
// Channel c takes T_c = alpha_c + beta_c * sum_{g on c} B_g(b_g) seconds; the round takes
// Z = max_c T_c. The assignment minimises
//   lambda * sum_g V_g(b_g) / V_max + (1 - lambda) * Z / T_max
// with V_max = sum_g V_g(2) (everything at the lowest width) and T_max = max_c T_c with every
// group at the highest width, or, when time_scale_s > 0, T_max = time_scale_s: a time that does not
// scale with the link (the round's share of the epoch's compute, `--assign-time`), so that the
// time term says how much the round's communication costs next to the work it delays. Normalised
// by its own range the time term is the same on every link (only bytes ratios remain), and the
// assigner then picks the same widths at 250 Mbit/s and on loopback. Solved exactly as a MILP (one binary per group and
// width, Z continuous with Z >= T_c) by COIN-OR CBC under a time limit, warm-started from the greedy solution, which is
// also the fallback when CBC finds nothing better in time.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "scheduler/wire_format.hpp"

namespace adaqp::scheduler {

struct RowGroup {
  int channel = 0;
  std::int64_t rows = 0, cols = 0;
  double weighted_range2 = 0;  // S_g
};

struct ChannelCost {
  double alpha_s = 0;          // latency per message
  double beta_s_per_byte = 0;  // inverse bandwidth
};

struct AssignmentProblem {
  std::vector<RowGroup> groups;
  std::vector<ChannelCost> channels;
  double lambda = 0.5;                                                           // weight of variance, in [0, 1]
  std::vector<Width> widths{Width::quant(2), Width::quant(4), Width::quant(8)};  // allowed, increasing
  double time_scale_s = 0;  // > 0: normalises the round time (s); 0: T_max (see above)
};

struct Assignment {
  std::vector<Width> widths;  // per group
  double objective = 0;       // the normalised objective above
  double variance = 0;        // sum_g V_g(b_g)
  double round_s = 0;         // Z
  double solve_s = 0;         // wall time of the solve
  std::string method;         // "milp", "milp-optimal", "greedy", "greedy-fallback"
};

// Objective, variance and round time of a given choice (the one definition used by all solvers).
Assignment evaluate(const AssignmentProblem& p, const std::vector<Width>& widths);

// Greedy: for 65 target round times between the all-lowest and all-highest extremes, every
// channel lowers its groups, least variance added per byte saved first, until it fits the target;
// the best of these assignments wins.
Assignment solve_greedy(const AssignmentProblem& p);

// CBC branch and bound with a time limit; method "milp-optimal" when proven optimal, "milp" when
// stopped by the limit with a solution better than greedy's, "greedy-fallback" otherwise.
Assignment solve_milp(const AssignmentProblem& p, double time_limit_s);

}  // namespace adaqp::scheduler
