// One rank's share of a partitioned dataset: everything a rank trains on, and the sizes of every
// rank's share (the plans of all ranks are built and validated together from sizes alone).
// Made in memory from a whole Dataset (make_shard: `train --dataset`, every rank loads the graph
// and keeps its share) or read from a partition folder (graph/partition_folder.hpp:
// `train --partitions DIR`, a rank reads only its part); both give the same shard.
//
// Sizes: n_inner = part.num_inner(), n_halo = part.num_halo(), n_local = n_inner + n_halo,
// F = info.num_features, P = part.parts.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "graph/dataset.hpp"
#include "graph/partition.hpp"

namespace adaqp::graph {

// What run records say about a dataset: its names and counts, no arrays.
struct DatasetInfo {
  std::string name, source;
  std::string split_rule;  // the split drawn (Dataset::split_rule)
  std::int64_t num_nodes = 0, num_directed_edges = 0, num_features = 0;
  int num_classes = 0;
  std::int64_t n_train = 0, n_val = 0, n_test = 0;  // nodes in each split, all parts
};
DatasetInfo info_of(const Dataset& d);

struct Shard {
  DatasetInfo info;
  PartitionMethod method = PartitionMethod::metis_cut;
  std::uint64_t partition_seed = 0;
  std::string folder;                     // the partition folder it was read from; "" when made in memory
  std::string partition_id;               // the folder's id (graph/partition_folder.hpp); "" when made in memory
  LocalPartition part;                    // this rank's rows, halo, send lists and local CSR
  std::vector<PartitionShape> shapes;     // P: every rank's sizes; shapes[rank] == shape_of(part)
  std::vector<std::int64_t> feature_nnz;  // P: non-zero features of every rank's inner rows
  std::vector<std::int64_t> degree;       // n_local: global in-degree of every local column
  std::vector<float> features;            // n_local x F, row-major: inner rows, then halo rows
  std::vector<std::int32_t> labels;       // n_inner: class or -1 (unlabelled)
  std::vector<std::uint8_t> train_mask, val_mask, test_mask;  // n_inner: 1 = in that split
  // This rank's start-up, in seconds: reading the dataset or its part, and partitioning (0 when
  // read from a folder). Recorded in the run's summary (docs/metrics.md).
  double load_s = 0, partition_s = 0;

  int rank() const { return part.rank; }
  int parts() const { return part.parts; }
};

// Non-zeros of every part's inner feature rows (owner[v] in [0, parts)).
std::vector<std::int64_t> feature_nnz_by_part(const Dataset& d, const std::vector<std::int32_t>& owner, int parts);

// Rank `rank`'s share of d under the partition `parts` (build_partitions of `owner`). d must hold
// its features; feature_nnz = feature_nnz_by_part(d, owner, P).
Shard make_shard(const Dataset& d, const std::vector<LocalPartition>& parts,
                 const std::vector<std::int64_t>& feature_nnz, int rank, PartitionMethod method,
                 std::uint64_t partition_seed);

}  // namespace adaqp::graph
