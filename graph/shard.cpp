#include "graph/shard.hpp"

#include <stdexcept>

namespace adaqp::graph {

DatasetInfo info_of(const Dataset& d) {
  DatasetInfo i;
  i.name = d.name;
  i.source = d.source;
  i.split_rule = d.split_rule;
  i.num_nodes = d.num_nodes;
  i.num_directed_edges = d.num_directed_edges();
  i.num_features = d.num_features;
  i.num_classes = d.num_classes;
  i.n_train = d.count(d.train_mask);
  i.n_val = d.count(d.val_mask);
  i.n_test = d.count(d.test_mask);
  return i;
}

std::vector<std::int64_t> feature_nnz_by_part(const Dataset& d, const std::vector<std::int32_t>& owner, int parts) {
  std::vector<std::int64_t> nnz(std::size_t(parts), 0);
  const std::int64_t f = d.num_features;
  for (std::int64_t v = 0; v < d.num_nodes; ++v) {
    const float* row = d.features.data() + v * f;
    std::int64_t n = 0;
    for (std::int64_t j = 0; j < f; ++j) n += row[j] != 0.0f;
    nnz[std::size_t(owner[std::size_t(v)])] += n;
  }
  return nnz;
}

Shard make_shard(const Dataset& d, const std::vector<LocalPartition>& parts,
                 const std::vector<std::int64_t>& feature_nnz, int rank, PartitionMethod method,
                 std::uint64_t partition_seed) {
  if (rank < 0 || rank >= int(parts.size())) throw std::logic_error("make_shard: rank outside the partition");
  if (d.features.empty()) throw std::logic_error("make_shard: the dataset was loaded without features");
  Shard s;
  s.info = info_of(d);
  s.method = method;
  s.partition_seed = partition_seed;
  s.part = parts[std::size_t(rank)];
  for (const auto& p : parts) s.shapes.push_back(shape_of(p));
  s.feature_nnz = feature_nnz;
  s.degree = column_degrees(s.part, d.adj);
  const std::int64_t f = d.num_features, n_local = s.part.num_local(), n_inner = s.part.num_inner();
  s.features.resize(std::size_t(n_local * f));
  for (std::int64_t c = 0; c < n_local; ++c) {
    const float* src = d.features.data() + s.part.global_of_col(c) * f;
    std::copy(src, src + f, s.features.begin() + c * f);
  }
  s.labels.resize(std::size_t(n_inner));
  s.train_mask.resize(std::size_t(n_inner));
  s.val_mask.resize(std::size_t(n_inner));
  s.test_mask.resize(std::size_t(n_inner));
  for (std::int64_t i = 0; i < n_inner; ++i) {
    const auto g = std::size_t(s.part.inner_global[std::size_t(i)]);
    s.labels[std::size_t(i)] = d.labels[g];
    s.train_mask[std::size_t(i)] = d.train_mask[g];
    s.val_mask[std::size_t(i)] = d.val_mask[g];
    s.test_mask[std::size_t(i)] = d.test_mask[g];
  }
  return s;
}

}  // namespace adaqp::graph
