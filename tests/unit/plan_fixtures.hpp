// Graphs the plan tests build plans on.
#pragma once
#include <vector>

#include "graph/dataset.hpp"
#include "graph/partition.hpp"
#include "graph/registry.hpp"

namespace adaqp::test {

// Cora (structure only), METIS into P parts (seed 0).
inline std::vector<graph::LocalPartition> cora_parts(int P) {
  graph::LoadOptions opt;
  opt.features = false;
  const auto d = graph::load_dataset("cora", opt);
  return graph::build_partitions(d.adj, graph::partition_graph(d.adj, P, graph::PartitionMethod::metis_cut, 0), P);
}

}  // namespace adaqp::test
