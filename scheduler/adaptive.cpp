#include "scheduler/adaptive.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "base/error.hpp"
#include "base/random.hpp"

namespace adaqp::scheduler {

AssignScheme parse_assign_scheme(const std::string& name) {
  if (name == "adaptive") return AssignScheme::adaptive;
  if (name == "random") return AssignScheme::random;
  throw Error("--assign '" + name + "': unknown scheme (allowed: adaptive, random; uniform widths: --bits 2|4|8)");
}

const char* to_string(AssignScheme s) {
  return s == AssignScheme::adaptive ? "adaptive" : "random";
}

std::vector<Width> parse_widths(const std::string& list) {
  std::vector<Width> out;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    const Width w = parse_width(item);
    if (!w.quantized())
      throw Error("--widths '" + list + "': '" + item + "' is not a quantized width (allowed: 1, 2, 4, 8)");
    if (std::find(out.begin(), out.end(), w) != out.end())
      throw Error("--widths '" + list + "': " + item + " given twice");
    out.push_back(w);
  }
  if (out.empty()) throw Error("--widths '" + list + "': no width given (e.g. 2,4,8)");
  std::sort(out.begin(), out.end());
  return out;
}

std::string widths_name(const std::vector<Width>& widths) {
  std::string s;
  for (Width w : widths) s += (s.empty() ? "" : ",") + width_name(w);
  return s;
}

BitAssignment assign_bits(const std::vector<ChannelStats>& channels, const std::vector<std::vector<ChannelCost>>& costs,
                          const AssignConfig& config, AssignReport* report) {
  if (config.group_size < 1) throw Error("--group-size " + std::to_string(config.group_size) + ": must be >= 1");
  BitAssignment out;
  AssignReport rep;
  // Rounds: channels grouped by (layer, direction).
  std::map<std::pair<int, int>, std::vector<const ChannelStats*>> rounds;
  for (const auto& c : channels)
    if (!c.weighted_range2.empty()) rounds[{c.key.layer, int(c.key.dir)}].push_back(&c);
  CounterRng rng(hash_key({config.seed, 0xb175ULL}));
  for (const auto& [round, members] : rounds) {
    AssignmentProblem p;
    p.lambda = config.lambda;
    p.time_scale_s = config.time_scale_s;
    p.widths = config.widths;
    std::vector<std::vector<std::int32_t>> orders;
    std::vector<std::pair<int, std::int64_t>> group_of;  // per group: (member, rows)
    for (std::size_t m = 0; m < members.size(); ++m) {
      const auto& c = *members[m];
      p.channels.push_back(costs[c.key.sender][c.key.receiver]);
      std::vector<std::int32_t> order(c.weighted_range2.size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](std::int32_t a, std::int32_t b) { return c.weighted_range2[a] > c.weighted_range2[b]; });
      for (std::size_t at = 0; at < order.size(); at += std::size_t(config.group_size)) {
        const std::size_t end = std::min(order.size(), at + std::size_t(config.group_size));
        double s = 0;
        for (std::size_t i = at; i < end; ++i) s += c.weighted_range2[order[i]];
        p.groups.push_back({int(m), std::int64_t(end - at), c.cols, s});
        group_of.push_back({int(m), std::int64_t(end - at)});
      }
      orders.push_back(std::move(order));
    }
    Assignment a;
    if (config.scheme == AssignScheme::adaptive) {
      a = solve_milp(p, config.time_limit_s);
    } else {
      std::vector<Width> widths(p.groups.size());
      for (auto& w : widths) w = p.widths[rng.below(p.widths.size())];
      a = evaluate(p, widths);
      a.method = "random";
    }
    rep.solve_s += a.solve_s;
    rep.methods.push_back(a.method);
    rep.objective += a.objective;
    rep.predicted_variance += a.variance;
    for (std::size_t m = 0; m < members.size(); ++m) {
      MessageLayout layout;
      layout.order = orders[m];
      for (std::size_t g = 0; g < p.groups.size(); ++g)
        if (group_of[g].first == int(m)) {
          layout.group_rows.push_back(group_of[g].second);
          layout.group_widths.push_back(a.widths[g]);
          rep.rows_at_bits[a.widths[g]] += group_of[g].second;
          rep.rows_by_channel[members[m]->key][a.widths[g]] += group_of[g].second;
        }
      out[members[m]->key] = std::move(layout);
    }
  }
  if (report) *report = rep;
  return out;
}

std::map<Width, double> parse_width_fractions(const std::string& spec) {
  std::map<Width, double> out;
  double sum = 0;
  std::stringstream items(spec);
  for (std::string item; std::getline(items, item, ',');) {
    const auto colon = item.find(':');
    const auto bad = [&](const std::string& why) {
      return Error("--width-mix '" + spec + "': item '" + item + "' " + why +
                   " (expected BITS:FRACTION,... such as 2:0.5,4:0.4,8:0.1, or a run record)");
    };
    if (colon == std::string::npos) throw bad("has no ':'");
    std::vector<Width> w;
    try {
      w = parse_widths(item.substr(0, colon));
    } catch (const Error&) {
      throw bad("is not a quantized width");
    }
    double f = -1;
    try {
      std::size_t used = 0;
      f = std::stod(item.substr(colon + 1), &used);
      if (used != item.size() - colon - 1) f = -1;
    } catch (const std::exception&) {
    }
    if (!(f > 0) || !std::isfinite(f)) throw bad("needs a fraction > 0");
    if (out.count(w.front())) throw bad("repeats a width");
    out[w.front()] = f;
    sum += f;
  }
  if (out.empty()) throw Error("--width-mix '" + spec + "': no widths");
  for (auto& [w, f] : out) f /= sum;
  return out;
}

BitAssignment mix_assignment(const std::vector<Plan>& plans, const WidthMix& mix) {
  if (mix.group_size < 1) throw Error("--group-size " + std::to_string(mix.group_size) + ": must be >= 1");
  BitAssignment out;
  for (std::size_t r = 0; r < plans.size(); ++r)
    for (const Task& t : plans[r].tasks) {
      if (t.kind != TaskKind::pack) continue;
      const ChannelKey key{t.layer, t.dir, int(r), t.peer};
      if (out.count(key)) continue;  // a channel packed twice (stale stores): one layout
      const std::string name = "layer " + std::to_string(t.layer) + " " + to_string(t.dir) + " " + std::to_string(r) +
                               "->" + std::to_string(t.peer);
      MessageLayout lay;
      const auto add_groups = [&](Width w, std::int64_t rows) {
        for (std::int64_t at = 0; at < rows; at += mix.group_size) {
          lay.group_rows.push_back(std::min(mix.group_size, rows - at));
          lay.group_widths.push_back(w);
        }
      };
      if (!mix.channels.empty()) {
        const auto it = mix.channels.find(key);
        if (it == mix.channels.end()) throw Error("--width-mix: the run's assignment has no channel " + name);
        std::int64_t total = 0;
        for (const auto& [w, rows] : it->second) {
          add_groups(w, rows);
          total += rows;
        }
        if (total != t.rows)
          throw Error("--width-mix: channel " + name + " has " + std::to_string(total) + " rows in the run's " +
                      "assignment, " + std::to_string(t.rows) + " here (another partition or model)");
      } else {
        // Largest remainder: floors first, the rows left to the largest fractional parts.
        std::vector<std::pair<Width, double>> f(mix.fractions.begin(), mix.fractions.end());
        std::vector<std::int64_t> rows(f.size());
        std::vector<std::pair<double, std::size_t>> rest;
        std::int64_t left = t.rows;
        for (std::size_t i = 0; i < f.size(); ++i) {
          const double exact = f[i].second * double(t.rows);
          rows[i] = std::int64_t(std::floor(exact));
          left -= rows[i];
          rest.push_back({exact - double(rows[i]), i});
        }
        std::stable_sort(rest.begin(), rest.end(), [](auto a, auto b) { return a.first > b.first; });
        for (std::size_t k = 0; left > 0; ++k, --left) ++rows[rest[k % rest.size()].second];
        for (std::size_t i = 0; i < f.size(); ++i) add_groups(f[i].first, rows[i]);
      }
      out[key] = std::move(lay);
    }
  if (!mix.channels.empty())
    for (const auto& [key, hist] : mix.channels)
      if (!out.count(key))
        throw Error("--width-mix: the run's assignment has channel layer " + std::to_string(key.layer) + " " +
                    to_string(key.dir) + " " + std::to_string(key.sender) + "->" + std::to_string(key.receiver) +
                    ", which these plans do not send (another partition or model)");
  return out;
}

std::vector<std::int32_t> serialize(const BitAssignment& a) {
  std::vector<std::int32_t> d = {std::int32_t(a.size())};
  for (const auto& [k, l] : a) {
    d.insert(d.end(), {k.layer, std::int32_t(k.dir), k.sender, k.receiver, std::int32_t(l.order.size()),
                       std::int32_t(l.group_rows.size())});
    d.insert(d.end(), l.order.begin(), l.order.end());
    for (std::size_t g = 0; g < l.group_rows.size(); ++g) {
      d.push_back(std::int32_t(l.group_rows[g]));
      d.push_back(l.group_widths[g].code());
    }
  }
  return d;
}

BitAssignment deserialize(const std::vector<std::int32_t>& d) {
  BitAssignment a;
  std::size_t i = 0;
  const std::int32_t n = d.at(i++);
  for (std::int32_t c = 0; c < n; ++c) {
    ChannelKey k{d.at(i), Direction(d.at(i + 1)), d.at(i + 2), d.at(i + 3)};
    const std::int32_t rows = d.at(i + 4), groups = d.at(i + 5);
    i += 6;
    MessageLayout l;
    l.order.assign(d.begin() + std::ptrdiff_t(i), d.begin() + std::ptrdiff_t(i + std::size_t(rows)));
    i += std::size_t(rows);
    for (std::int32_t g = 0; g < groups; ++g, i += 2) {
      l.group_rows.push_back(d.at(i));
      const Width w = Width::from_code(d.at(i + 1));
      if (!w.valid()) throw std::logic_error("bit assignment: width code " + std::to_string(d.at(i + 1)));
      l.group_widths.push_back(w);
    }
    a[k] = std::move(l);
  }
  return a;
}

}  // namespace adaqp::scheduler
