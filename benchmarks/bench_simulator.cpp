// Simulator speed: events per second of the discrete-event executor on real plans (GCN 3 x 256,
// adaqp mode, 8 bits) of an R-MAT graph partitioned by METIS into P ranks, on a nominal profile
// (every compute class 1 us + 1 ns per feature unit; 10 us, 10 GB/s links; flat topology).
// Reported: simulated events per second and wall time of one training-step simulation.
#include <benchmark/benchmark.h>

#include <map>

#include "engine/trainer.hpp"
#include "graph/dataset.hpp"
#include "graph/partition.hpp"
#include "scheduler/build_plan.hpp"
#include "simulator/cost_model.hpp"
#include "simulator/simulator.hpp"

namespace {

using namespace adaqp;

simulator::Profile nominal_profile() {
  simulator::Profile p;
  p.machine = "nominal";
  p.backend = "cpu";
  for (const auto& c : simulator::cost_classes()) {
    simulator::LinearFit f;
    f.coef_s.assign(c.features.size(), 1e-9);
    f.coef_s[0] = 1e-6;
    p.compute[c.name] = f;
  }
  p.links["inter"] = {10e-6, 1e-10, 1, "nominal"};
  p.post_s = 1e-6;
  return p;
}

const std::vector<scheduler::Plan>& plans_for(int P) {
  static std::map<int, std::vector<scheduler::Plan>> cache;
  auto it = cache.find(P);
  if (it != cache.end()) return it->second;
  static const graph::Dataset data = graph::load_dataset("rmat:scale=16,degree=16,seed=1,features=32,classes=8");
  engine::TrainConfig c;
  c.model.layers = 3;
  c.model.hidden = 256;
  c.mode = scheduler::Mode::adaqp;
  c.width = scheduler::Width::quant(8);
  const auto owner = graph::partition_graph(data.adj, P, graph::PartitionMethod::metis_cut, 0);
  const auto parts = graph::build_partitions(data.adj, owner, P);
  return cache[P] = engine::make_plans(data, c, owner, parts).train;
}

void BM_SimulateTrainingStep(benchmark::State& state) {
  const int P = int(state.range(0));
  const auto& plans = plans_for(P);
  const auto profile = nominal_profile();
  const auto net = simulator::make_network(profile, P, "flat", "none");
  std::int64_t events = 0;
  for (auto _ : state) {
    const auto pred = simulator::simulate(plans, profile, net);
    events += pred.events;
    benchmark::DoNotOptimize(pred.epoch_s);
  }
  state.counters["events_per_s"] = benchmark::Counter(double(events), benchmark::Counter::kIsRate);
  std::int64_t tasks = 0;
  for (const auto& p : plans) tasks += std::int64_t(p.tasks.size());
  state.counters["tasks"] = double(tasks);
}
BENCHMARK(BM_SimulateTrainingStep)
    ->Arg(2)
    ->Arg(8)
    ->Arg(64)
    ->ArgName("ranks")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// P = 64 at the scale of ogbn-products (2,449,029 nodes, 123,718,280 directed edges, 100 features,
// 47 classes) from the statistical partition model (graph::model_shapes: halo 0.5, marginal 0.4,
// remote 0.1, every part exchanging with all 63 others), GCN 3 x 256 adaqp 8 bits: plan building
// and simulation of the training step and the evaluation pass, as `adaqp simulate --shape` does.
void BM_SimulateProductsScaleP64(benchmark::State& state) {
  const auto model = graph::parse_shape_model("nodes=2449029,edges=123718280,halo=0.5,marginal=0.4,remote=0.1");
  const auto profile = nominal_profile();
  const int P = 64;
  const auto net = simulator::make_network(profile, P, "flat", "none");
  engine::TrainConfig c;
  c.model.layers = 3;
  c.model.hidden = 256;
  c.model.dropout = 0.5;
  c.mode = scheduler::Mode::adaqp;
  c.width = scheduler::Width::quant(8);
  const auto ms = engine::model_shape(c, 100, 47);
  std::int64_t events = 0;
  for (auto _ : state) {
    std::vector<scheduler::Plan> train, eval;
    for (const auto& s : graph::model_shapes(model, P)) {
      train.push_back(scheduler::build_plan(s, ms, scheduler::Strategy::overlap, true, scheduler::Width::quant(8)));
      eval.push_back(scheduler::build_plan(s, ms, scheduler::Strategy::overlap, false));
    }
    const auto a = simulator::simulate(train, profile, net);
    const auto b = simulator::simulate(eval, profile, net);
    events += a.events + b.events;
    benchmark::DoNotOptimize(a.epoch_s + b.epoch_s);
  }
  state.counters["events_per_s"] = benchmark::Counter(double(events), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SimulateProductsScaleP64)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
