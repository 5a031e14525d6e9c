#include "experiments/paired.hpp"

#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

#include "experiments/csv.hpp"
#include "experiments/manifest.hpp"

namespace adaqp::experiments {

const std::set<std::string>& strategy_axes() {
  static const std::set<std::string> s = {"mode",          "bits",   "stale",       "stale_momentum",
                                          "boundary_rate", "lambda", "group_size",  "assign_period",
                                          "assign_time",   "widths", "stale_bound", "allreduce"};
  return s;
}

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const char* const kMeasures[] = {"test_acc_at_best_val", "final_test_acc", "tail_test_acc"};

std::string value(const std::map<std::string, std::string>& m, const std::string& k) {
  const auto it = m.find(k);
  return it == m.end() ? "" : it->second;
}

bool is_baseline(const FinishedRun& r) {
  return value(r.point, "mode") == "vanilla" && value(r.point, "bits") == "32" && value(r.point, "stale") != "true" &&
         (value(r.point, "boundary_rate").empty() || value(r.point, "boundary_rate") == "1") &&
         value(r.point, "allreduce") != "after";
}

std::string label(const FinishedRun& r) {
  const std::string name = r.strategy.empty() ? value(r.point, "mode") : r.strategy;
  const std::string bits = value(r.point, "bits");
  std::string l = bits == "32" || bits.empty() ? name : name + "-" + bits;
  if (bits == "adaptive")  // the assigner's settings are part of the strategy
    l += " (lambda " + value(r.point, "lambda") + ", groups " + value(r.point, "group_size") + ", period " +
         value(r.point, "assign_period") +
         (value(r.point, "assign_time").empty() || value(r.point, "assign_time") == "range"
              ? ""
              : ", time " + value(r.point, "assign_time")) +
         (value(r.point, "widths").empty() || value(r.point, "widths") == "2,4,8"
              ? ""
              : ", widths " + value(r.point, "widths")) +
         ")";
  const std::string bound = value(r.point, "stale_bound");
  if (!bound.empty() && bound != "none") l += " (bound " + bound + ")";
  if (value(r.point, "allreduce") == "after") l += " (all-reduce after)";
  return l;
}

std::string number(double v) {
  if (!std::isfinite(v)) return "";
  std::ostringstream s;
  s.precision(6);
  s << v;
  return s.str();
}

}  // namespace

PairedDifference paired_difference(const std::vector<double>& strategy, const std::vector<double>& baseline) {
  if (strategy.size() != baseline.size()) throw std::logic_error("paired_difference: unequal lengths");
  PairedDifference d;
  d.n = int(strategy.size());
  d.se = d.ci_low = d.ci_high = kNaN;
  if (d.n == 0) {
    d.mean = kNaN;
    return d;
  }
  std::vector<double> diff(strategy.size());
  for (std::size_t i = 0; i < diff.size(); ++i) {
    diff[i] = 100.0 * (strategy[i] - baseline[i]);
    d.mean += diff[i] / double(d.n);
  }
  if (d.n < 2) return d;
  double ss = 0;
  for (double x : diff) ss += (x - d.mean) * (x - d.mean);
  d.se = std::sqrt(ss / double(d.n - 1)) / std::sqrt(double(d.n));
  const boost::math::students_t t(double(d.n - 1));
  const double q = boost::math::quantile(boost::math::complement(t, 0.025));
  d.ci_low = d.mean - q * d.se;
  d.ci_high = d.mean + q * d.se;
  return d;
}

std::string claim_verdict(const PairedDifference& d, double margin_points) {
  if (d.n < 2 || !std::isfinite(d.ci_low)) return "n<2";
  if (d.ci_low >= -margin_points) return "within";
  if (d.ci_high < -margin_points) return "beyond";
  return "undecided";
}

namespace {

using SeedRuns = std::map<std::string, const FinishedRun*>;  // seed -> run

// One context: its axes, and per strategy label the runs by seed; the first run of a seed wins.
struct Context {
  std::map<std::string, std::string> axes;
  std::map<std::string, SeedRuns> by_strategy;
  std::string baseline;
};

// mean over seeds of the baseline's median epoch / the strategy's, over the seeds both ran
// (restricted to `only` when it is not empty); `used` gets those seeds.
double speedup_over(const SeedRuns& strategy, const SeedRuns& baseline, const std::set<std::string>& only,
                    std::string& used) {
  double a = 0, b = 0;
  used.clear();
  for (const auto& [seed, run] : strategy) {
    const auto bt = baseline.find(seed);
    if (bt == baseline.end() || (!only.empty() && !only.count(seed))) continue;
    if (!run->summary.count("median_epoch_s") || !bt->second->summary.count("median_epoch_s")) continue;
    a += run->summary.at("median_epoch_s");
    b += bt->second->summary.at("median_epoch_s");
    used += (used.empty() ? "" : " ") + seed;
  }
  return a > 0 ? b / a : kNaN;
}

// The context that ran `c` over the emulated link its link model describes (see paired.hpp), if any.
const Context* timing_context(const Context& c, const std::map<std::string, Context>& contexts) {
  if (value(c.axes, "link") != "none") return nullptr;
  const std::string model = value(c.axes, "link_model");
  const auto colon = model.find(':');
  if (colon == std::string::npos) return nullptr;
  const double gbps = std::stod(model.substr(colon + 1));
  for (const auto& [key, t] : contexts) {
    if (t.baseline.empty() || !(std::abs(link_rate_gbps(value(t.axes, "link")) - gbps) <= 1e-9 * gbps)) continue;
    bool same = t.axes.size() == c.axes.size();
    for (const auto& [k, v] : c.axes)
      if (k != "link" && k != "link_model") same = same && value(t.axes, k) == v;
    if (same) return &t;
  }
  return nullptr;
}

}  // namespace

std::vector<PairedRow> paired_rows(const std::vector<FinishedRun>& runs) {
  std::map<std::string, Context> contexts;  // by the context's text
  for (const auto& r : runs) {
    if (r.executor != "engine") continue;
    std::map<std::string, std::string> axes;
    std::string key;
    for (const auto& [k, v] : r.point)
      if (k != "seed" && k != "executor" && !strategy_axes().count(k)) {
        axes[k] = v;
        key += k + "=" + v + ";";
      }
    auto& c = contexts[key];
    c.axes = axes;
    const std::string l = label(r);
    if (is_baseline(r)) c.baseline = l;
    c.by_strategy[l].emplace(value(r.point, "seed"), &r);
  }
  std::vector<PairedRow> out;
  for (const auto& [key, c] : contexts) {
    if (c.baseline.empty()) continue;
    const auto& base = c.by_strategy.at(c.baseline);
    const Context* timing = timing_context(c, contexts);
    for (const auto& [name, seeds] : c.by_strategy) {
      if (name == c.baseline) continue;
      // The speedup from the link's runs when they exist for this strategy.
      double link_speedup = kNaN;
      std::string link_seeds;
      if (timing && timing->by_strategy.count(name))
        link_speedup =
            speedup_over(timing->by_strategy.at(name), timing->by_strategy.at(timing->baseline), {}, link_seeds);
      for (const char* m : kMeasures) {
        std::vector<double> a, b;
        std::set<std::string> paired;
        std::string seed_list;
        for (const auto& [seed, run] : seeds) {
          const auto bt = base.find(seed);
          if (bt == base.end() || !run->summary.count(m) || !bt->second->summary.count(m)) continue;
          a.push_back(run->summary.at(m));
          b.push_back(bt->second->summary.at(m));
          paired.insert(seed);
          seed_list += (seed_list.empty() ? "" : " ") + seed;
        }
        if (a.empty()) continue;
        PairedRow row;
        row.context = c.axes;
        row.strategy = name;
        row.baseline = c.baseline;
        row.measure = m;
        row.diff = paired_difference(a, b);
        row.seeds = seed_list;
        row.verdict = claim_verdict(row.diff);
        if (std::isfinite(link_speedup)) {
          row.speedup = link_speedup;
          row.speedup_link = value(timing->axes, "link");
          row.speedup_seeds = link_seeds;
        } else {
          std::string used;
          row.speedup = speedup_over(seeds, base, paired, used);
        }
        out.push_back(std::move(row));
      }
    }
  }
  return out;
}

std::string paired_csv(const std::vector<PairedRow>& rows) {
  std::set<std::string> axes;
  for (const auto& r : rows)
    for (const auto& [k, v] : r.context) axes.insert(k);
  std::ostringstream csv;
  for (const auto& k : axes) csv << k << ",";
  csv << "strategy,baseline,measure,n,mean_points,se_points,ci_low_points,ci_high_points,verdict_0.3,speedup,speedup_"
         "link,speedup_seeds,seeds\n";
  for (const auto& r : rows) {
    for (const auto& k : axes) csv << csv_field(value(r.context, k)) << ",";
    csv << csv_field(r.strategy) << "," << csv_field(r.baseline) << "," << r.measure << "," << r.diff.n << ","
        << number(r.diff.mean) << "," << number(r.diff.se) << "," << number(r.diff.ci_low) << ","
        << number(r.diff.ci_high) << "," << r.verdict << "," << number(r.speedup) << "," << csv_field(r.speedup_link)
        << "," << csv_field(r.speedup_seeds) << "," << csv_field(r.seeds) << "\n";
  }
  return csv.str();
}

}  // namespace adaqp::experiments
