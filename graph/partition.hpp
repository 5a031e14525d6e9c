// Partitioning a graph into P parts (one per rank) and the per-part views every executor uses.
//
// Node orders (all deterministic):
//   inner nodes of part p: central nodes first, then marginal nodes, each by increasing global id;
//   halo nodes of part p: grouped by owner (increasing rank), by increasing global id in a group;
//   send_rows[q] of part p: the inner nodes part q holds as halo, in q's halo order for owner p.
// So the k-th row p sends to q is the k-th halo row q expects from p: no ids travel at run time.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "graph/csr.hpp"

namespace adaqp::graph {

// metis_cut ("metis", the default) minimises the edge cut balancing nodes per part; metis_volume
// ("metis-vol") minimises the communication volume, same balance; metis_edges ("metis-edges")
// minimises the cut under two constraints, nodes and edges per part (every node weighs 1 and its
// in-degree: METIS multi-constraint, 3% tolerance each, like DGL's balance_edges), so every rank
// gets about the same SpMM work, at the price of a larger cut (README: adaqp partition); random
// deals a seeded permutation round-robin.
// ptscotch ("ptscotch"): PT-Scotch over MPI, the processes of `adaqp partition` each holding a
// block of the graph (graph/distributed_partition.hpp); partition_graph refuses it.
enum class PartitionMethod { metis_cut, metis_volume, metis_edges, random, ptscotch };
// "metis", "metis-vol", "metis-edges", "random", "ptscotch"
PartitionMethod parse_partition_method(const std::string& name);
std::string to_string(PartitionMethod m);

// owner[v] in [0, parts) for every node; deterministic for a given (graph, method, parts, seed).
std::vector<std::int32_t> partition_graph(const Csr& adj, int parts, PartitionMethod method, std::uint64_t seed);
// The random method alone: needs only the node count.
std::vector<std::int32_t> random_owner(std::int64_t nodes, int parts, std::uint64_t seed);

struct LocalPartition {
  int rank = 0, parts = 1;
  std::int64_t num_central = 0, num_marginal = 0;  // inner = central + marginal
  std::vector<std::int64_t> inner_global;          // local inner id -> global id (num_inner entries)
  std::vector<std::int64_t> halo_global;           // halo index -> global id
  std::vector<std::int64_t> halo_begin;        // parts + 1: halo rows owned by q are [halo_begin[q], halo_begin[q+1])
  std::vector<std::vector<NodeId>> send_rows;  // per peer q: local inner ids to send to q
  // rows = inner nodes (local order), cols = inner ids then num_inner + halo index; pattern of the
  // global adjacency restricted to the part's in-edges (no self-loops). Within a row, columns are
  // ordered by increasing global id (not local id).
  Csr adj;

  std::int64_t num_inner() const { return num_central + num_marginal; }
  std::int64_t num_halo() const { return std::int64_t(halo_global.size()); }
  std::int64_t num_local() const { return num_inner() + num_halo(); }  // columns of adj
  std::int64_t global_of_col(std::int64_t col) const {
    return col < num_inner() ? inner_global[col] : halo_global[col - num_inner()];
  }
};

std::vector<LocalPartition> build_partitions(const Csr& adj, const std::vector<std::int32_t>& owner, int parts);

// Part p alone, from its own rows (what build_partitions does for every part, and a distributed
// partitioner for the parts a process holds): nodes = the part's nodes in increasing global id,
// row(v) = v's in-neighbours (global ids, increasing), owner(u) = the part of any node. The graph
// must be symmetric: p sends q its nodes with an in-neighbour in q, which are q's halo rows from p.
// local_of (optional): scratch with one entry per node of the graph, reused across parts, for
// constant-time local ids (a process holding the whole graph); without it ids are binary-searched.
using RowOf = std::function<std::span<const NodeId>(std::int64_t)>;
using OwnerOf = std::function<int(std::int64_t)>;
LocalPartition build_part(int p, int parts, const std::vector<std::int64_t>& nodes, const RowOf& row,
                          const OwnerOf& owner, std::vector<std::int64_t>* local_of = nullptr);

// Sizes of one rank's partition: all the scheduler needs to build its plan (no ids).
struct PartitionShape {
  int rank = 0, parts = 1;
  std::int64_t num_central = 0, num_marginal = 0;
  std::vector<std::int64_t> halo_rows;             // [q]: rows this rank receives from q per exchange (0 for itself)
  std::vector<std::int64_t> send_rows;             // [q]: rows this rank sends to q per exchange
  std::int64_t nnz_central = 0, nnz_marginal = 0;  // local adjacency non-zeros (no self-loops) by row class
  std::int64_t nnz_to_halo = 0;                    // of those, non-zeros in halo columns

  std::int64_t num_inner() const { return num_central + num_marginal; }
  std::int64_t num_halo() const;
  std::int64_t num_local() const { return num_inner() + num_halo(); }
};
PartitionShape shape_of(const LocalPartition& part);

// A statistical model of METIS-like partitions, for graphs too large to hold or partition here.
// Every part gets nodes / parts inner nodes (the remainder to the first parts) and
// directed_edges / parts local in-edges; a fraction `marginal` of its inner nodes is marginal and
// holds that fraction of its edges; a fraction `remote` of its edges comes from halo nodes; it
// receives halo = `halo` x inner rows per exchange, in equal shares from `peers` parts (the next
// ones, cyclically; 0 = all others), and sends as many to the previous ones (so sends and receives
// match). Spec: "nodes=N,edges=E[,halo=0.3,marginal=0.3,remote=0.1,peers=0]", E directed.
struct ShapeModel {
  std::int64_t nodes = 0, directed_edges = 0;
  double halo = 0.3, marginal = 0.3, remote = 0.1;
  int peers = 0;
};
ShapeModel parse_shape_model(const std::string& spec);  // throws adaqp::Error naming the key
std::vector<PartitionShape> model_shapes(const ShapeModel& model, int parts);

struct PartitionStats {
  int parts = 0;
  std::int64_t num_nodes = 0, num_directed_edges = 0;
  std::int64_t edge_cut = 0;                         // undirected edges whose endpoints have different owners
  std::vector<std::vector<std::int64_t>> halo_rows;  // [p][q]: rows p receives from q per exchange
  std::int64_t comm_volume_rows = 0;                 // sum of halo_rows: rows moved per exchanged layer, one direction
  std::vector<std::int64_t> inner, halo, marginal, local_edges;  // per part
  double marginal_fraction = 0;                                  // sum marginal / num_nodes
  double node_imbalance = 0;                                     // max inner / mean inner (1 = perfect)
  double edge_imbalance = 0;                                     // max local edges / mean local edges
};

// Every statistic follows from the parts' sizes (one definition, used by `adaqp partition`, the
// partition folder's metadata and the run record); num_nodes and num_directed_edges are the sums
// of the parts' inner nodes and local in-edges (= the graph's when the parts cover it).
PartitionStats partition_stats(const std::vector<PartitionShape>& shapes);
PartitionStats partition_stats(const std::vector<LocalPartition>& parts);

// Global in-degree of every local column of part (inner ids, then halo indices): n_local entries,
// the degrees GCN / SAGE normalise with (engine::make_aggregation).
std::vector<std::int64_t> column_degrees(const LocalPartition& part, const Csr& global_adj);

}  // namespace adaqp::graph
