// From per-row statistics of every exchange channel to message layouts (adaptive bit widths).
//
// A channel is one message of one exchange round: (layer, direction, sender, receiver). Its rows
// are in "base order" (forward: the sender's send list for the receiver; backward: the sender's
// halo rows owned by the receiver). For every row the assigner needs weight x range^2, where the
// range (max - min of the row, measured by the sender when it last packed it) sets the
// quantization step and the weight says how much the row counts at the receiver (forward: the sum
// of the receiver's aggregation coefficients on that halo row; backward: 1, the gradient is added
// once into the owner's row).
// Per round (layer, direction): each channel's rows are sorted by weighted variance (largest first)
// and cut into groups of group_size rows; every group gets a width from the MILP / greedy of
// scheduler/bit_assignment.hpp (scheme adaptive) or at random (scheme random).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "scheduler/bit_assignment.hpp"
#include "scheduler/plan.hpp"

namespace adaqp::scheduler {

struct ChannelKey {
  int layer = 0;
  Direction dir = Direction::forward;
  int sender = 0, receiver = 0;
  auto tie() const { return std::tuple(layer, int(dir), sender, receiver); }
  bool operator<(const ChannelKey& o) const { return tie() < o.tie(); }
  bool operator==(const ChannelKey& o) const { return tie() == o.tie(); }
};

struct ChannelStats {
  ChannelKey key;
  std::int64_t cols = 0;
  std::vector<double> weighted_range2;  // per row, base order
};

enum class AssignScheme { adaptive, random };
AssignScheme parse_assign_scheme(const std::string& name);  // "adaptive" | "random"
const char* to_string(AssignScheme s);

struct AssignConfig {
  AssignScheme scheme = AssignScheme::adaptive;
  double lambda = 0.5;
  std::int64_t group_size = 100;
  double time_limit_s = 5.0;  // per round
  std::uint64_t seed = 0;     // random scheme
  double time_scale_s = 0;    // AssignmentProblem::time_scale_s of every round (0: each round's T_max)
  std::vector<Width> widths{Width::quant(2), Width::quant(4), Width::quant(8)};  // to choose from, increasing
};

// "--widths" values: a comma-separated list of distinct quantized widths ("1,2,4,8"), returned
// increasing; throws adaqp::Error naming the value otherwise.
std::vector<Width> parse_widths(const std::string& list);
std::string widths_name(const std::vector<Width>& widths);  // "2,4,8"

// Layouts of every channel, the input of build_plan.
using BitAssignment = std::map<ChannelKey, MessageLayout>;

struct AssignReport {
  double solve_s = 0;                          // all rounds
  std::vector<std::string> methods;            // per round: "milp-optimal", "milp", "greedy-fallback", "random"
  double objective = 0;                        // sum over rounds
  double predicted_variance = 0;               // sum over rounds of the model's weighted variance
  std::map<Width, std::int64_t> rows_at_bits;  // histogram: width -> message rows
  std::map<ChannelKey, std::map<Width, std::int64_t>> rows_by_channel;  // the same per channel
};

// costs[sender][receiver]: the channel's alpha-beta model.
BitAssignment assign_bits(const std::vector<ChannelStats>& channels, const std::vector<std::vector<ChannelCost>>& costs,
                          const AssignConfig& config, AssignReport* report);

// Widths given instead of assigned (the simulator's stand-in for the assigner, whose choice
// depends on run-time row ranges): per channel the rows at each width (a run's assignment, as its
// record keeps them), else the same fractions of every channel's rows.
struct WidthMix {
  std::map<ChannelKey, std::map<Width, std::int64_t>> channels;  // rows per width, per channel
  std::map<Width, double> fractions;                             // used when `channels` is empty
  std::int64_t group_size = 100;  // rows per group, as the assigner cuts them (a group is one pack call)
};
// "2:0.46,4:0.47,8:0.07": fractions of message rows per quantized width (> 0, normalised to sum 1);
// throws adaqp::Error naming the item otherwise.
std::map<Width, double> parse_width_fractions(const std::string& spec);
// The layouts of every channel of `plans` (all ranks' plans built with one width: their pack tasks
// are the channels) under `mix`: each width's rows cut into groups of at most group_size rows, by
// increasing width, rows in base order; fractions are turned into whole rows by largest remainder. Throws adaqp::Error
// when a channel of the mix does not have the plan's rows (another partition or model), or the plans have a channel it
// lacks.
BitAssignment mix_assignment(const std::vector<Plan>& plans, const WidthMix& mix);

// Flattens / restores an assignment (for broadcasting it from the rank that solved it).
std::vector<std::int32_t> serialize(const BitAssignment& a);
BitAssignment deserialize(const std::vector<std::int32_t>& data);

}  // namespace adaqp::scheduler
