// Full-graph training of one model on one dataset. This trainer runs a single process
// (P = 1); the distributed plan executor builds on the same model, loss and optimizer.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/metrics.hpp"
#include "engine/model.hpp"
#include "engine/optimizer.hpp"
#include "graph/dataset.hpp"

namespace adaqp::engine {

struct TrainConfig {
  std::string dataset;  // spec as given (recorded in the run record)
  ModelConfig model;
  AdamConfig adam;
  std::int64_t epochs = 200;
  std::uint64_t seed = 0;  // weights and dropout
  int threads = 0;         // OpenMP + BLAS threads; 0 = all cores
  std::string metrics_path;  // JSON Lines output, empty = none
};

// Input features at most this dense are kept as CSR (sparse first-layer products); measured on
// this machine's 2 cores, sparse X W beats OpenBLAS's dense GEMM up to about this density.
inline constexpr double kSparseFeatureDensity = 0.5;

struct TrainResult {
  std::vector<EpochMetrics> epochs;
  Summary summary;
};

// Called after every epoch (for progress lines).
using EpochCallback = std::function<void(const EpochMetrics&)>;

// The `run` record: every setting, build options, host, dataset counts.
nlohmann::json run_record(const TrainConfig& config, const graph::Dataset& data, int ranks);

TrainResult train(const graph::Dataset& data, const TrainConfig& config, const EpochCallback& on_epoch = {});

// Global in-degree of every node (the normalisation of GCN / SAGE uses global degrees).
std::vector<std::int64_t> global_degrees(const graph::Csr& adj);

}  // namespace adaqp::engine
