#include "scheduler/bit_assignment.hpp"

#include <CbcModel.hpp>
#include <CoinPackedMatrix.hpp>
#include <OsiClpSolverInterface.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <queue>

#include "base/error.hpp"
#include "scheduler/wire_format.hpp"

namespace adaqp::scheduler {
namespace {

double variance_of(const RowGroup& g, Width w) {
  const double levels = double((1 << w.element_bits()) - 1);
  return g.weighted_range2 * double(g.cols) / (4.0 * levels * levels);
}
double bytes_of(const RowGroup& g, Width w) {
  return double(message_bytes(g.rows, g.cols, w));
}

struct Norms {
  double v_max = 1, t_max = 1;
};
Norms norms_of(const AssignmentProblem& p) {
  Norms n;
  double v = 0;
  std::vector<double> bytes(p.channels.size(), 0);
  for (const auto& g : p.groups) {
    v += variance_of(g, p.widths.front());
    bytes[g.channel] += bytes_of(g, p.widths.back());
  }
  double t = 0;
  for (std::size_t c = 0; c < p.channels.size(); ++c)
    t = std::max(t, p.channels[c].alpha_s + p.channels[c].beta_s_per_byte * bytes[c]);
  n.v_max = v > 0 ? v : 1;
  n.t_max = p.time_scale_s > 0 ? p.time_scale_s : t > 0 ? t : 1;
  return n;
}

void check(const AssignmentProblem& p) {
  if (!(p.lambda >= 0 && p.lambda <= 1)) throw Error("--lambda " + std::to_string(p.lambda) + ": must be in [0, 1]");
  if (p.widths.empty()) throw Error("bit assignment: no allowed width");
  for (Width w : p.widths)
    if (!w.quantized()) throw Error("bit assignment: width " + width_name(w) + " is not 1, 2, 4 or 8");
  for (const auto& g : p.groups)
    if (g.channel < 0 || g.channel >= int(p.channels.size()))
      throw std::logic_error("bit assignment: group on missing channel " + std::to_string(g.channel));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Assignment evaluate(const AssignmentProblem& p, const std::vector<Width>& widths) {
  Assignment a;
  a.widths = widths;
  std::vector<double> bytes(p.channels.size(), 0);
  for (std::size_t i = 0; i < p.groups.size(); ++i) {
    a.variance += variance_of(p.groups[i], widths[i]);
    bytes[p.groups[i].channel] += bytes_of(p.groups[i], widths[i]);
  }
  for (std::size_t c = 0; c < p.channels.size(); ++c)
    a.round_s = std::max(a.round_s, p.channels[c].alpha_s + p.channels[c].beta_s_per_byte * bytes[c]);
  const Norms n = norms_of(p);
  a.objective = p.lambda * a.variance / n.v_max + (1 - p.lambda) * a.round_s / n.t_max;
  return a;
}

Assignment solve_greedy(const AssignmentProblem& p) {
  check(p);
  const auto t0 = std::chrono::steady_clock::now();
  const int W = int(p.widths.size()), G = int(p.groups.size()), C = int(p.channels.size());
  std::vector<std::vector<int>> on_channel(C);
  for (int g = 0; g < G; ++g) on_channel[p.groups[g].channel].push_back(g);
  auto time_of = [&](int c, double b) { return p.channels[c].alpha_s + p.channels[c].beta_s_per_byte * b; };
  // Bounds of the round time: every group at the lowest / highest width.
  double z_low = 0, z_high = 0;
  for (int c = 0; c < C; ++c) {
    double lo = 0, hi = 0;
    for (int g : on_channel[c]) {
      lo += bytes_of(p.groups[g], p.widths.front());
      hi += bytes_of(p.groups[g], p.widths.back());
    }
    z_low = std::max(z_low, time_of(c, lo));
    z_high = std::max(z_high, time_of(c, hi));
  }
  // For a target round time Z, each channel independently lowers its groups, cheapest variance
  // per byte saved first, until it fits in Z. Targets: 65 points from z_low to z_high.
  std::vector<int> level(G);
  Assignment best;
  best.objective = 1e300;
  for (int k = 0; k <= 64; ++k) {
    const double z = z_low + (z_high - z_low) * double(k) / 64.0;
    std::fill(level.begin(), level.end(), W - 1);
    for (int c = 0; c < C; ++c) {
      double bytes = 0;
      for (int g : on_channel[c]) bytes += bytes_of(p.groups[g], p.widths.back());
      using Step = std::pair<double, int>;  // (variance added per byte saved, group)
      std::priority_queue<Step, std::vector<Step>, std::greater<Step>> steps;
      auto push = [&](int g) {
        if (level[g] == 0) return;
        const double dv =
            variance_of(p.groups[g], p.widths[level[g] - 1]) - variance_of(p.groups[g], p.widths[level[g]]);
        const double db = bytes_of(p.groups[g], p.widths[level[g]]) - bytes_of(p.groups[g], p.widths[level[g] - 1]);
        steps.push({db > 0 ? dv / db : 1e300, g});
      };
      for (int g : on_channel[c]) push(g);
      while (time_of(c, bytes) > z * (1 + 1e-12) && !steps.empty()) {
        const int g = steps.top().second;
        steps.pop();
        bytes -= bytes_of(p.groups[g], p.widths[level[g]]) - bytes_of(p.groups[g], p.widths[level[g] - 1]);
        --level[g];
        push(g);
      }
    }
    std::vector<Width> widths(G);
    for (int g = 0; g < G; ++g) widths[g] = p.widths[level[g]];
    const Assignment a = evaluate(p, widths);
    if (a.objective < best.objective) best = a;
  }
  best.method = "greedy";
  best.solve_s = seconds_since(t0);
  return best;
}

Assignment solve_milp(const AssignmentProblem& p, double time_limit_s) {
  check(p);
  const auto t0 = std::chrono::steady_clock::now();
  const Assignment greedy = solve_greedy(p);
  const int G = int(p.groups.size()), W = int(p.widths.size()), C = int(p.channels.size());
  if (G == 0) return greedy;
  const Norms n = norms_of(p);
  // Columns: x[g][w] (binary) then Z (continuous, >= 0).
  const int nx = G * W, ncols = nx + 1;
  std::vector<double> obj(ncols, 0), col_lb(ncols, 0), col_ub(ncols, 1);
  for (int g = 0; g < G; ++g)
    for (int w = 0; w < W; ++w) obj[g * W + w] = p.lambda * variance_of(p.groups[g], p.widths[w]) / n.v_max;
  obj[nx] = (1 - p.lambda) / n.t_max;
  col_ub[nx] = COIN_DBL_MAX;
  CoinPackedMatrix rows(false, 0, 0);
  std::vector<double> row_lb, row_ub;
  // One width per group: sum_w x[g][w] = 1.
  for (int g = 0; g < G; ++g) {
    std::vector<int> idx(W);
    std::vector<double> val(W, 1.0);
    for (int w = 0; w < W; ++w) idx[w] = g * W + w;
    rows.appendRow(W, idx.data(), val.data());
    row_lb.push_back(1);
    row_ub.push_back(1);
  }
  // Each channel within the round: beta_c * sum bytes - Z <= -alpha_c.
  std::vector<std::vector<int>> on_channel(C);
  for (int g = 0; g < G; ++g) on_channel[p.groups[g].channel].push_back(g);
  for (int c = 0; c < C; ++c) {
    std::vector<int> idx;
    std::vector<double> val;
    for (int g : on_channel[c])
      for (int w = 0; w < W; ++w) {
        idx.push_back(g * W + w);
        val.push_back(p.channels[c].beta_s_per_byte * bytes_of(p.groups[g], p.widths[w]));
      }
    idx.push_back(nx);
    val.push_back(-1.0);
    rows.appendRow(int(idx.size()), idx.data(), val.data());
    row_lb.push_back(-COIN_DBL_MAX);
    row_ub.push_back(-p.channels[c].alpha_s);
  }
  OsiClpSolverInterface solver;
  solver.messageHandler()->setLogLevel(0);
  solver.loadProblem(rows, col_lb.data(), col_ub.data(), obj.data(), row_lb.data(), row_ub.data());
  for (int i = 0; i < nx; ++i) solver.setInteger(i);
  CbcModel model(solver);
  model.setLogLevel(0);
  model.messageHandler()->setLogLevel(0);
  model.setMaximumSeconds(std::max(0.01, time_limit_s));
  // The objective is normalised to about [0, 1]: CBC's default gaps and cutoff increment (1e-5)
  // would stop it at solutions a few 1e-6 from the optimum.
  model.setAllowableGap(1e-12);
  model.setAllowableFractionGap(1e-12);
  model.setDblParam(CbcModel::CbcCutoffIncrement, 1e-12);
  // Warm start from the greedy solution.
  std::vector<double> start(ncols, 0);
  for (int g = 0; g < G; ++g) {
    const int w = int(std::find(p.widths.begin(), p.widths.end(), greedy.widths[g]) - p.widths.begin());
    start[g * W + w] = 1;
  }
  start[nx] = greedy.round_s;
  model.setBestSolution(start.data(), ncols, greedy.objective, true);
  model.branchAndBound();
  Assignment out = greedy;
  out.method = "greedy-fallback";
  if (const double* x = model.bestSolution()) {
    std::vector<Width> widths(G, p.widths.back());
    for (int g = 0; g < G; ++g)
      for (int w = 0; w < W; ++w)
        if (x[g * W + w] > 0.5) widths[g] = p.widths[w];
    const Assignment milp = evaluate(p, widths);
    if (milp.objective <= greedy.objective + 1e-12) {
      out = milp;
      out.method = model.isProvenOptimal() ? "milp-optimal" : "milp";
    }
  }
  out.solve_s = seconds_since(t0);
  return out;
}

}  // namespace adaqp::scheduler
