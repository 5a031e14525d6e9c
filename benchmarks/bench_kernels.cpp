// Kernel and training-epoch benchmarks (Google Benchmark). Run: build/bench_kernels
// SpMM reports bytes/s as the bytes a row-gathering SpMM must move at least:
//   nnz * (index 4 B + value 4 B + cols * sizeof(T) gathered) + rows * cols * sizeof(T) written.
// The GCN epoch benchmark is the training step of `adaqp train` (forward, loss, backward, Adam)
// on Amazon Computers, GCN 3 x 256, with 1 and 2 threads; its time is the `epoch_s` metric.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <chrono>

#include "engine/cpu/blas.hpp"
#include "engine/cpu/kernels.hpp"
#include "engine/loss.hpp"
#include "engine/model.hpp"
#include "engine/optimizer.hpp"
#include "engine/trainer.hpp"
#include "graph/dataset.hpp"
#include "graph/partition.hpp"

namespace {

using namespace adaqp;

const graph::Dataset& amazon() {
  static const graph::Dataset d = graph::load_dataset("amazon-computers");
  return d;
}

struct Setup {
  std::vector<graph::LocalPartition> parts;
  engine::Aggregation agg;
};
const Setup& amazon_setup() {
  static const Setup s = [] {
    Setup s;
    const auto& d = amazon();
    s.parts = graph::build_partitions(d.adj, std::vector<std::int32_t>(d.num_nodes, 0), 1);
    s.agg = engine::make_aggregation(engine::ModelKind::gcn, s.parts[0], graph::column_degrees(s.parts[0], d.adj));
    return s;
  }();
  return s;
}

void set_threads(int t) {
  omp_set_num_threads(t);
  engine::cpu::set_blas_threads(t);
}

void BM_SpmmGcnAggregation(benchmark::State& state) {
  const int threads = int(state.range(0));
  const std::int64_t cols = state.range(1);
  set_threads(threads);
  const auto& a = amazon_setup().agg.fwd;
  engine::Matrix<float> b(a.num_cols, cols), c(a.num_rows, cols);
  for (std::size_t i = 0; i < b.data.size(); ++i) b.data[i] = float(i % 13) * 0.1f;
  for (auto _ : state) {
    engine::cpu::spmm(a, 0, a.num_rows, b.data.data(), cols, c.data.data(), false);
    benchmark::DoNotOptimize(c.data.data());
  }
  const double bytes = double(a.nnz()) * (8.0 + double(cols) * 4.0) + double(a.num_rows * cols) * 4.0;
  state.SetBytesProcessed(std::int64_t(bytes) * state.iterations());
  state.counters["nnz"] = double(a.nnz());
}
BENCHMARK(BM_SpmmGcnAggregation)
    ->ArgsProduct({{1, 2}, {16, 64, 256}})
    ->ArgNames({"threads", "cols"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// First-layer product X W (Amazon Computers features, 767 -> 256) as sparse CSR vs dense GEMM:
// the evidence behind engine::kSparseFeatureDensity.
void BM_FeatureTimesWeight(benchmark::State& state) {
  const int threads = int(state.range(0));
  const bool sparse = state.range(1) != 0;
  set_threads(threads);
  const auto& d = amazon();
  const auto& part = amazon_setup().parts[0];
  const auto x = engine::make_features<float>(d.features.data(), d.num_features, part.inner_global, sparse ? 1.0 : 0.0);
  const std::int64_t out = 256, n = x.rows();
  engine::Matrix<float> w(d.num_features, out), y(n, out);
  for (std::size_t i = 0; i < w.data.size(); ++i) w.data[i] = float(i % 7) * 0.01f;
  for (auto _ : state) {
    if (sparse)
      engine::cpu::spmm(x.sparse, 0, n, w.data.data(), out, y.data.data(), false);
    else
      engine::cpu::gemm(false, false, n, out, d.num_features, 1.0f, x.dense.data.data(), d.num_features, w.data.data(),
                        out, 0.0f, y.data.data(), out);
    benchmark::DoNotOptimize(y.data.data());
  }
  state.counters["density"] = sparse ? double(x.sparse.nnz()) / double(n * d.num_features) : 1.0;
}
BENCHMARK(BM_FeatureTimesWeight)
    ->ArgsProduct({{1, 2}, {0, 1}})
    ->ArgNames({"threads", "sparse"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// One training step, GCN 3 x 256 on Amazon Computers (what `epoch_s` measures).
void BM_GcnEpochAmazonComputers(benchmark::State& state) {
  const int threads = int(state.range(0));
  set_threads(threads);
  const auto& d = amazon();
  const auto& s = amazon_setup();
  const auto& part = s.parts[0];
  engine::ModelConfig mc;
  mc.kind = engine::ModelKind::gcn;
  mc.layers = 3;
  mc.hidden = 256;
  engine::Model<float> model(mc, d.num_features, d.num_classes, 1);
  const auto x =
      engine::make_features<float>(d.features.data(), d.num_features, part.inner_global, engine::kSparseFeatureDensity);
  engine::Adam<float> adam({}, model.params());
  std::vector<std::int32_t> labels(d.labels.begin(), d.labels.end());
  engine::Matrix<float> grad;
  std::int64_t epoch = 0;
  const double n_train = double(d.count(d.train_mask));
  for (auto _ : state) {
    const engine::DropoutKey key{1, ++epoch};
    const auto& logits = model.forward(s.agg, x, &key, part.inner_global);
    engine::softmax_cross_entropy(logits, labels, d.train_mask, n_train, &grad);
    model.backward(s.agg, grad);
    adam.step();
  }
}
BENCHMARK(BM_GcnEpochAmazonComputers)
    ->Arg(1)
    ->Arg(2)
    ->ArgName("threads")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3.0);

}  // namespace

BENCHMARK_MAIN();
