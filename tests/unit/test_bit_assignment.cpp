// Adaptive bit-width assignment: the MILP equals brute force on small instances, greedy is never
// better than the MILP, and the extremes of lambda give the obvious answers.
#include <catch2/catch.hpp>
#include <set>

#include "base/random.hpp"
#include "graph/partition.hpp"
#include "scheduler/adaptive.hpp"
#include "scheduler/bit_assignment.hpp"
#include "scheduler/build_plan.hpp"

using namespace adaqp;
using namespace adaqp::scheduler;

namespace {
AssignmentProblem random_problem(std::uint64_t seed, int channels, int groups, double lambda) {
  CounterRng rng(seed);
  AssignmentProblem p;
  p.lambda = lambda;
  for (int c = 0; c < channels; ++c)
    p.channels.push_back({1e-4 * rng.uniform(), 1e-8 * (0.5 + rng.uniform())});  // ~ 1 Gbit/s links
  for (int g = 0; g < groups; ++g)
    p.groups.push_back({int(rng.below(std::uint64_t(channels))), 50 + std::int64_t(rng.below(500)),
                        16 + std::int64_t(rng.below(240)), std::exp(4 * rng.normal())});
  return p;
}

Assignment brute_force(const AssignmentProblem& p) {
  const int G = int(p.groups.size()), W = int(p.widths.size());
  std::vector<int> digit(G, 0);
  std::vector<Width> widths(G);
  Assignment best;
  best.objective = 1e300;
  for (;;) {
    for (int g = 0; g < G; ++g) widths[g] = p.widths[digit[g]];
    const auto a = evaluate(p, widths);
    if (a.objective < best.objective) best = a;
    int g = 0;
    while (g < G && ++digit[g] == W) digit[g++] = 0;
    if (g == G) break;
  }
  return best;
}
}  // namespace

TEST_CASE("MILP equals brute force on small instances, greedy is never better", "[assignment]") {
  for (std::uint64_t seed = 1; seed <= 12; ++seed)
    for (double lambda : {0.1, 0.5, 0.9}) {
      const auto p = random_problem(seed, 1 + int(seed % 3), 6, lambda);
      const auto exact = brute_force(p);
      const auto milp = solve_milp(p, 10.0);
      const auto greedy = solve_greedy(p);
      CAPTURE(seed, lambda, milp.method);
      CHECK(milp.method == "milp-optimal");
      CHECK(milp.objective == Approx(exact.objective).epsilon(1e-9));
      CHECK(greedy.objective >= milp.objective - 1e-12);
    }
}

TEST_CASE("lambda = 1 keeps every group at 8 bits, lambda = 0 reaches the all-2-bit round time", "[assignment]") {
  auto p = random_problem(77, 2, 20, 1.0);
  for (Width w : solve_milp(p, 5.0).widths) CHECK(w == Width::quant(8));
  p.lambda = 0.0;
  // Only the slowest channel matters then; groups on the other channel may keep any width.
  const double fastest = evaluate(p, std::vector<Width>(p.groups.size(), Width::quant(2))).round_s;
  CHECK(solve_milp(p, 5.0).round_s == Approx(fastest));
  CHECK(solve_greedy(p).round_s == Approx(fastest));
}

TEST_CASE("evaluate: variance and round time follow the model", "[assignment]") {
  AssignmentProblem p;
  p.lambda = 0.5;
  p.channels = {{0.001, 1e-6}, {0.0, 2e-6}};
  p.groups = {{0, 10, 4, 9.0}, {1, 20, 8, 1.0}};
  const auto a = evaluate(p, {Width::quant(2), Width::quant(8)});
  // V = 9 * 4 / (4 * 3^2) + 1 * 8 / (4 * 255^2)
  CHECK(a.variance == Approx(1.0 + 8.0 / (4.0 * 255 * 255)));
  // channel 0: 0.001 + 1e-6 * 10 * (1 + 8) = 0.00109; channel 1: 2e-6 * 20 * (8 + 8) = 0.00064
  CHECK(a.round_s == Approx(0.00109));
  CHECK_THROWS(
      solve_greedy(AssignmentProblem{p.groups, p.channels, 1.5, {Width::quant(2), Width::quant(4), Width::quant(8)}}));
  // Only quantized widths can be assigned.
  CHECK_THROWS_WITH(solve_greedy(AssignmentProblem{p.groups, p.channels, 0.5, {Width::quant(2), Width::fp16()}}),
                    Catch::Contains("fp16 is not 1, 2, 4 or 8"));
}

TEST_CASE("channel layouts: sorted by weighted variance, grouped, round-trip through serialisation", "[assignment]") {
  std::vector<ChannelStats> channels;
  channels.push_back({{0, Direction::forward, 0, 1}, 16, {1, 9, 4, 0, 25, 16, 2}});
  channels.push_back({{0, Direction::forward, 1, 0}, 16, {3, 3}});
  channels.push_back({{1, Direction::backward, 0, 1}, 4, {5, 1, 7}});
  const std::vector<std::vector<ChannelCost>> costs = {{{0, 0}, {1e-5, 1e-8}}, {{1e-5, 1e-8}, {0, 0}}};
  AssignConfig config;
  config.group_size = 3;
  AssignReport report;
  const auto a = assign_bits(channels, costs, config, &report);
  REQUIRE(a.size() == 3);
  const auto& l = a.at(channels[0].key);
  CHECK(l.order == std::vector<std::int32_t>{4, 5, 1, 2, 6, 0, 3});  // decreasing weighted variance
  CHECK(l.group_rows == std::vector<std::int64_t>{3, 3, 1});
  CHECK(report.methods.size() == 2);  // two rounds: (0, forward) and (1, backward)
  std::int64_t rows = 0;
  for (const auto& [width, n] : report.rows_at_bits) rows += n;
  CHECK(rows == 12);
  CHECK(deserialize(serialize(a)) == a);
  config.scheme = AssignScheme::random;
  const auto r = assign_bits(channels, costs, config, &report);
  for (const auto& [key, layout] : r)
    for (Width w : layout.group_widths) CHECK((w == Width::quant(2) || w == Width::quant(4) || w == Width::quant(8)));
  CHECK(report.methods.front() == "random");
}

TEST_CASE("a fixed time scale makes the choice follow the link, the round's own range does not", "[assignment]") {
  auto slow = random_problem(5, 2, 40, 0.5);
  auto fast = slow;
  for (auto& c : fast.channels) c.alpha_s /= 100, c.beta_s_per_byte /= 100;  // the same link, 100x faster
  auto bytes = [&](const AssignmentProblem& p, const Assignment& a) {
    double b = 0;
    for (std::size_t g = 0; g < p.groups.size(); ++g)
      b += double(scheduler::message_bytes(p.groups[g].rows, p.groups[g].cols, a.widths[g]));
    return b;
  };
  // Normalised by each round's own time at 8 bits, only byte ratios remain: the same widths.
  CHECK(solve_greedy(slow).widths == solve_greedy(fast).widths);
  // Normalised by one fixed time (the compute a round delays, --assign-time): the faster link
  // keeps wider codes, the slower one narrower codes than before.
  const double t8 = evaluate(slow, std::vector<Width>(slow.groups.size(), Width::quant(8))).round_s;
  slow.time_scale_s = fast.time_scale_s = t8 / 4;
  const auto a_slow = solve_greedy(slow), a_fast = solve_greedy(fast);
  CHECK(bytes(fast, a_fast) > bytes(slow, a_slow));
  CHECK(solve_milp(fast, 5.0).objective <= a_fast.objective + 1e-12);
}

TEST_CASE("1-bit codes among the choices: exact MILP, the all-1-bit extreme, --widths", "[assignment]") {
  const std::vector<Width> four = {Width::quant(1), Width::quant(2), Width::quant(4), Width::quant(8)};
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    auto p = random_problem(seed, 2, 6, 0.3);
    p.widths = four;
    const auto exact = brute_force(p);
    const auto milp = solve_milp(p, 10.0);
    CAPTURE(seed);
    CHECK(milp.objective == Approx(exact.objective).epsilon(1e-9));
    CHECK(solve_greedy(p).objective >= milp.objective - 1e-12);
  }
  auto p = random_problem(77, 2, 20, 0.0);
  p.widths = four;
  const double fastest = evaluate(p, std::vector<Width>(p.groups.size(), Width::quant(1))).round_s;
  CHECK(solve_milp(p, 5.0).round_s == Approx(fastest));
  // V(1) = S cols / 4: nine times V(2) = S cols / 36.
  AssignmentProblem one;
  one.channels = {{0, 1e-6}};
  one.groups = {{0, 10, 4, 9.0}};
  one.widths = four;
  CHECK(evaluate(one, {Width::quant(1)}).variance == Approx(9.0));
  CHECK(evaluate(one, {Width::quant(1)}).round_s == Approx(1e-6 * 10 * (1 + 8)));

  CHECK(parse_widths("8,1,4,2") == four);
  CHECK(widths_name(parse_widths("4,2")) == "2,4");
  CHECK_THROWS_WITH(parse_widths("1,3"), Catch::Contains("'3' is not a quantized width"));
  CHECK_THROWS_WITH(parse_widths("2,fp16"), Catch::Contains("'fp16'"));
  CHECK_THROWS_WITH(parse_widths("2,2"), Catch::Contains("given twice"));
  CHECK_THROWS_WITH(parse_widths(""), Catch::Contains("no width"));
  // The assigner picks from the configured widths only.
  std::vector<ChannelStats> channels;
  channels.push_back({{0, Direction::forward, 0, 1}, 64, std::vector<double>(40, 1.0)});
  const std::vector<std::vector<ChannelCost>> costs = {{{0, 0}, {1e-5, 1e-7}}, {{1e-5, 1e-7}, {0, 0}}};
  AssignConfig config;
  config.group_size = 4;
  config.lambda = 0.05;  // time dominates: the narrowest width allowed
  config.widths = {Width::quant(1), Width::quant(2)};
  AssignReport report;
  const auto a = assign_bits(channels, costs, config, &report);
  CHECK(report.rows_at_bits.count(Width::quant(1)) == 1);
  for (const auto& [key, layout] : a)
    for (Width w : layout.group_widths) CHECK((w == Width::quant(1) || w == Width::quant(2)));
}

TEST_CASE("width mixes: every channel of the plans, whole rows in groups, a run's channels checked", "[assignment]") {
  const auto shapes =
      graph::model_shapes(graph::parse_shape_model("nodes=5003,edges=60000,halo=0.3,marginal=0.4,remote=0.1"), 3);
  ModelShape ms;
  ms.dims = {40, 32, 7};
  const auto plans_at = [&](Width w, const BitAssignment* a) {
    std::vector<Plan> plans;
    for (const auto& s : shapes) plans.push_back(build_plan(s, ms, Strategy::overlap, true, w, a));
    return plans;
  };
  const auto plans = plans_at(Width::quant(4), nullptr);
  WidthMix mix;
  mix.fractions = parse_width_fractions("2:1,4:1,8:2");
  mix.group_size = 64;
  CHECK(mix.fractions.at(Width::quant(8)) == Approx(0.5));
  const auto a = mix_assignment(plans, mix);
  std::set<ChannelKey> keys;
  for (std::size_t r = 0; r < plans.size(); ++r)
    for (const auto& t : plans[r].tasks) {
      if (t.kind != TaskKind::pack) continue;
      const ChannelKey k{t.layer, t.dir, int(r), t.peer};
      keys.insert(k);
      REQUIRE(a.count(k) == 1);
      const auto& lay = a.at(k);
      std::int64_t total = 0, at8 = 0;
      for (std::size_t g = 0; g < lay.group_rows.size(); ++g) {
        CHECK(lay.group_rows[g] >= 1);
        CHECK(lay.group_rows[g] <= 64);
        if (g > 0) CHECK(lay.group_widths[g - 1].element_bits() <= lay.group_widths[g].element_bits());
        total += lay.group_rows[g];
        if (lay.group_widths[g] == Width::quant(8)) at8 += lay.group_rows[g];
      }
      CHECK(total == t.rows);
      CHECK(std::abs(double(at8) - 0.5 * double(t.rows)) < 1.0);  // largest remainder: whole rows
    }
  CHECK(keys.size() > 6);
  CHECK(a.size() == keys.size());
  // The plans built with it validate (sender and receiver agree) and send between 2 and 8 bits' bytes.
  const auto mixed = plans_at(Width::quant(4), &a);
  CHECK_NOTHROW(validate(mixed));
  std::int64_t b2 = 0, b8 = 0, bm = 0;
  for (const auto& p : plans_at(Width::quant(2), nullptr)) b2 += p.bytes_sent();
  for (const auto& p : plans_at(Width::quant(8), nullptr)) b8 += p.bytes_sent();
  for (const auto& p : mixed) bm += p.bytes_sent();
  CHECK(b2 < bm);
  CHECK(bm < b8);
  // A run's rows per channel are taken as they are; a count that is not the plan's names the channel.
  WidthMix run;
  run.group_size = 64;
  for (const auto& [k, lay] : a)
    for (std::size_t g = 0; g < lay.group_rows.size(); ++g) run.channels[k][lay.group_widths[g]] += lay.group_rows[g];
  const auto b = mix_assignment(plans, run);
  CHECK((b == a));
  run.channels.begin()->second.begin()->second += 1;
  CHECK_THROWS_WITH(mix_assignment(plans, run), Catch::Contains("rows in the run's assignment"));
  run.channels.begin()->second.begin()->second -= 1;
  run.channels.erase(run.channels.begin());
  CHECK_THROWS_WITH(mix_assignment(plans, run), Catch::Contains("has no channel layer"));
  // Fraction specs.
  CHECK_THROWS_WITH(parse_width_fractions("2:0.5,3:0.5"), Catch::Contains("item '3:0.5' is not a quantized width"));
  CHECK_THROWS_WITH(parse_width_fractions("2:0"), Catch::Contains("needs a fraction > 0"));
  CHECK_THROWS_WITH(parse_width_fractions("2"), Catch::Contains("has no ':'"));
  CHECK_THROWS_WITH(parse_width_fractions("4:1,4:2"), Catch::Contains("repeats a width"));
  CHECK_THROWS_WITH(parse_width_fractions("32:1"), Catch::Contains("not a quantized width"));
}
