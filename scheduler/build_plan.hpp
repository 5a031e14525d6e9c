// The scheduler: builds each rank's epoch plan from the model shape, the rank's partition and a
// strategy. Strategies are ways of building plans, never branches in an executor:
//   vanilla: every layer exchanges its halo rows, then aggregates all rows;
//   overlap: central rows (no remote in-neighbour) are aggregated while the marginal exchange is in
//            flight; marginal rows after it lands. Backward: halo-row gradients are computed and
//            sent first, inner rows are aggregated while they travel.
// Per layer the exchange moves min(in, out) columns: transform-first (X W, exchange, aggregate)
// when out <= in, aggregate-first (exchange X, aggregate, then W) otherwise.
#pragma once
#include <cstdint>
#include <vector>

#include "graph/partition.hpp"
#include "scheduler/adaptive.hpp"
#include "scheduler/peers.hpp"
#include "scheduler/plan.hpp"

namespace adaqp::scheduler {

struct ModelShape {
  bool sage = false;               // GraphSAGE (self weight, mean aggregation) or GCN (self-loops)
  std::vector<std::int64_t> dims;  // [features, hidden x (layers - 1), classes]
  double dropout = 0;              // probability in [0, 1)
  bool sparse_input = false;       // the first layer multiplies sparse features (transform-first only)
  std::int64_t feature_nnz = 0;    // non-zeros of the rank's sparse features (sizes only)
  // Every layer aggregates first, so its exchanges carry the layer's input rows H (and gradients
  // with respect to them) rather than H W. Stale pipelining needs this: PipeGCN's stale quantity
  // is the boundary input H of the previous epoch, multiplied by this epoch's weights; a stale
  // H W would also carry the previous epoch's weights (from the second layer on; see
  // transform_first). Otherwise (false) a layer transforms first when that narrows the rows
  // (out <= in), which sends fewer bytes.
  bool exchange_inputs = false;

  int layers() const { return int(dims.size()) - 1; }
  // The first layer keeps the ordinary rule under exchange_inputs: its input rows are features,
  // which never go stale, and a transform-first first layer computes its halo rows X[halo] W itself
  // from the rank's copy of the halo features (Plan::halo_features), so nothing is exchanged.
  bool transform_first(int layer) const { return !(exchange_inputs && layer > 0) && dims[layer + 1] <= dims[layer]; }
  // Parameter index of a layer's weights / bias (order: w_neigh, [w_self], bias per layer).
  int param_index(int layer, int which) const { return layer * (sage ? 3 : 2) + which; }
};

// One rank's plan. training = false builds the evaluation pass (forward without dropout, fp32
// exchanges). width: width of the training exchanges of embeddings and embedding gradients
// (fp32, fp16, bf16, quant 8, 4, 2; scheduler/wire_format.hpp); the gradient all-reduce stays fp32. A channel
// that has a layout in `assignment` uses it instead (mixed widths; training plans only). `peers`:
// stale pipelining or boundary sampling (scheduler/peers.hpp; training plans only, evaluation
// plans ignore it).
Plan build_plan(const graph::LocalPartition& part, const ModelShape& model, Strategy strategy, bool training,
                Width width = Width::fp32(), const BitAssignment* assignment = nullptr, const PeerOptions& peers = {});
// The same from the partition's sizes alone (what the plan depends on): the simulator builds
// plans of graphs too large to hold from a statistical model of their partitions.
Plan build_plan(const graph::PartitionShape& part, const ModelShape& model, Strategy strategy, bool training,
                Width width = Width::fp32(), const BitAssignment* assignment = nullptr, const PeerOptions& peers = {});

// Every rank's plan, validated together (send/recv matching). Plans are deterministic.
std::vector<Plan> build_plans(const std::vector<graph::LocalPartition>& parts, const ModelShape& model,
                              Strategy strategy, bool training, Width width = Width::fp32(),
                              const BitAssignment* assignment = nullptr, const PeerOptions& peers = {});

}  // namespace adaqp::scheduler
