// Paired-seed comparisons of a sweep's runs against their baseline (docs/metrics.md: paired
// differences), the one definition behind OUT/paired.csv, the report's paired table and its
// accuracy-difference-against-speedup figure.
//
// Context: every axis of a point except `seed` and the strategy axes (mode, bits, stale,
// stale_momentum, boundary_rate, lambda, group_size, assign_period, assign_time). Baseline: the point of the
// same context with mode vanilla, bits 32 and no peer strategy. For a strategy and a measure m
// (test_acc_at_best_val, final_test_acc, tail_test_acc), over the n seeds where both the strategy's
// and the baseline's engine runs finished:
//   d_s     = 100 (m(strategy, s) - m(baseline, s))        percentage points
//   mean    = (1/n) sum_s d_s
//   se      = sd / sqrt(n), sd the sample standard deviation (n - 1), n >= 2
//   95% CI  = mean -+ t(0.975, n - 1) se                    Student's t quantile (Boost.Math)
//   speedup = mean_s median_epoch_s(baseline) / mean_s median_epoch_s(strategy), same seeds
// Accuracy on shared memory, time on the link (issue 18, item 3): a context that ran on shared
// memory (link none) with a link model ALPHA_US:GBPS has the numerics of that link but not its
// time. When the sweep also ran the same context over an emulated link of that rate (link RATE
// equal to GBPS Gbit/s, any link_model), the speedup comes from those runs instead (every seed
// where both the strategy and the baseline finished there), and the row names that link
// (speedup_link) and its seeds (speedup_seeds); otherwise speedup_link is empty: the row's own runs.
// Verdict on a claim "loses at most M points" (M = 0.3): decided within when the interval's lower
// end is >= -M, decided beyond when its upper end is < -M, otherwise undecided (the interval is
// too wide, or straddles -M); n < 2 has no interval.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

namespace adaqp::experiments {

// The manifest axes that make a strategy (mode, widths, staleness, all-reduce schedule, ...); every
// other axis but the seed and the executor is the context a strategy runs in. Defined once here;
// plots/report.py receives it from `adaqp report` (--strategy-axes).
const std::set<std::string>& strategy_axes();

struct PairedDifference {
  int n = 0;
  double mean = 0, se = 0, ci_low = 0, ci_high = 0;  // points; se and the CI are NaN when n < 2
};

// From per-seed values of the strategy and the baseline (same order, same length, fractions).
PairedDifference paired_difference(const std::vector<double>& strategy, const std::vector<double>& baseline);

inline constexpr double kClaimMarginPoints = 0.3;
// "within", "beyond" or "undecided" (see above), "n<2" without an interval.
std::string claim_verdict(const PairedDifference& d, double margin_points = kClaimMarginPoints);

// One finished run: its sweep point (axis -> value), executor and summary record fields.
struct FinishedRun {
  std::map<std::string, std::string> point;
  std::string executor;                   // engine | simulator
  std::map<std::string, double> summary;  // numeric summary fields
  std::string strategy;                   // the summary's `strategy` (mode and peer strategy)
};

struct PairedRow {
  std::map<std::string, std::string> context;  // the context axes
  std::string strategy, baseline;              // labels: strategy name, "-BITS" when not 32
  std::string measure;
  PairedDifference diff;
  double speedup = 0;
  std::string speedup_link;   // "" = the speedup of the row's own runs; else the link whose runs gave it
  std::string speedup_seeds;  // the seeds behind the speedup when it came from the link's runs
  std::string verdict;
  std::string seeds;  // the paired seeds, space-separated
};

// Every (context, strategy other than the baseline, measure) with at least one paired seed, in a
// stable order (context, strategy, measure).
std::vector<PairedRow> paired_rows(const std::vector<FinishedRun>& runs);

// The rows as CSV (header: the context axes, strategy, baseline, measure, n, mean_points,
// se_points, ci_low_points, ci_high_points, verdict_0.3, speedup, speedup_link, speedup_seeds, seeds).
std::string paired_csv(const std::vector<PairedRow>& rows);

}  // namespace adaqp::experiments
