// Solve time of the adaptive bit-width assignment (Google Benchmark): 100k message rows per
// exchange round, in groups of --group-size rows spread over 4 channels, for 3 layers (3 rounds
// per assignment); greedy alone and the CBC MILP (time limit 5 s per round).
#include <benchmark/benchmark.h>

#include "base/random.hpp"
#include "scheduler/bit_assignment.hpp"

namespace {
using namespace adaqp;
using namespace adaqp::scheduler;

AssignmentProblem round_problem(std::int64_t rows, std::int64_t group_size, std::uint64_t seed) {
  CounterRng rng(seed);
  AssignmentProblem p;
  p.lambda = 0.5;
  for (int c = 0; c < 4; ++c) p.channels.push_back({5e-5, 8e-9 * (0.8 + 0.4 * rng.uniform())});
  for (std::int64_t r = 0; r < rows; r += group_size)
    p.groups.push_back({int(rng.below(4)), group_size, 256, double(group_size) * std::exp(2 * rng.normal())});
  return p;
}

void BM_Assign100kRows3Layers(benchmark::State& state) {
  const std::int64_t group_size = state.range(0);
  const bool milp = state.range(1) != 0;
  double objective = 0;
  for (auto _ : state)
    for (int layer = 0; layer < 3; ++layer) {
      const auto p = round_problem(100000, group_size, std::uint64_t(layer + 1));
      const auto a = milp ? solve_milp(p, 5.0) : solve_greedy(p);
      objective += a.objective;
      benchmark::DoNotOptimize(a.widths.data());
    }
  state.counters["groups_per_round"] = double((100000 + group_size - 1) / group_size);
  state.counters["mean_objective"] = objective / double(3 * state.iterations());
}
BENCHMARK(BM_Assign100kRows3Layers)
    ->ArgsProduct({{100, 1000}, {0, 1}})
    ->ArgNames({"group_size", "milp"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
