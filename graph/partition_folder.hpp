// Partition folders: a graph partitioned once (`adaqp partition --out DIR`), so that under mpirun
// rank r reads only its own part (`adaqp train --partitions DIR`) instead of the whole graph.
//
// DIR/meta.json (one per folder):
//   format "adaqp-partitions", version 1; id (16 hex digits: FNV-1a of the graph, its features,
//   labels and split, the owner of every node and the settings below); dataset_spec, split,
//   split_seed (how the dataset was loaded: the registry's feature normalisation and split apply);
//   dataset {name, source, nodes, directed_edges, features, classes, split, train, val, test};
//   method, seed, parts; strategy (PT-Scotch's --strategy, folders written over MPI by ptscotch
//   only); stats (graph::partition_stats, as `adaqp partition --json` prints);
//   shapes[P] {num_central, num_marginal, halo_rows[P], send_rows[P], nnz_central, nnz_marginal,
//   nnz_to_halo}; feature_nnz[P]; files[P] (part file names).
// DIR/part-R.npz (one per rank; NumPy archive, stored members; sizes as in graph/shard.hpp):
//   partition_id  |u1 (16,)           the folder's id, ASCII
//   counts        <i8 (4,)            rank, parts, num_central, num_marginal
//   inner_global  <i8 (n_inner,)      global id of every inner node (local order)
//   halo_global   <i8 (n_halo,)       global id of every halo node (halo order)
//   halo_begin    <i8 (P + 1,)        halo rows owned by q: [halo_begin[q], halo_begin[q + 1])
//   send_begin    <i8 (P + 1,)        rows sent to q: send_rows[send_begin[q] : send_begin[q + 1]]
//   send_rows     <i4 (sum,)          local inner ids
//   adj_offsets   <i8 (n_inner + 1,)  local in-edge CSR, columns = inner ids, then n_inner + halo index
//   adj_indices   <i4 (nnz,)
//   degree        <i8 (n_local,)      global in-degree of every local column
//   features      <f4 (n_local, F)    inner rows, then halo rows
//   labels        <i4 (n_inner,)      class or -1
//   train_mask, val_mask, test_mask   |b1 (n_inner,)
// A folder is written to DIR.tmp-PID and renamed to DIR when complete: no half-written folder.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "graph/dataset.hpp"
#include "graph/partition.hpp"
#include "graph/shard.hpp"

namespace adaqp::graph {

inline constexpr int kPartitionFolderVersion = 1;

// The statistics as `adaqp partition --json` prints them and meta.json stores them.
nlohmann::json to_json(const PartitionStats& s);
// A dataset's names and counts as meta.json's `dataset` and the run record's `dataset` hold them.
nlohmann::json to_json(const DatasetInfo& info);

// How the dataset of a folder was loaded (recorded in meta.json and in the run records).
struct DatasetSpec {
  std::string spec;   // --dataset as given
  std::string split;  // canonical split spec ("" = the dataset's own)
  std::uint64_t split_seed = 0;
};

// Throws adaqp::Error naming dir when it exists (a folder is never overwritten); `adaqp partition`
// checks before it loads and partitions.
void require_new_folder(const std::string& dir);

// Writes DIR for the partition `owner` of d (build_partitions(d.adj, owner, P) = parts); d must
// hold its features. Throws adaqp::Error naming DIR when it exists or cannot be written (nothing
// is left behind). Returns meta.json's content.
nlohmann::json write_partition_folder(const std::string& dir, const Dataset& d, const DatasetSpec& how,
                                      const std::vector<std::int32_t>& owner, const std::vector<LocalPartition>& parts,
                                      PartitionMethod method, std::uint64_t seed);

// The pieces of write_partition_folder, for writers that hold some parts only (a distributed
// partitioner: graph/distributed_partition.hpp): the file name of part r, one part file, meta.json's
// content, the temporary folder of DIR for process `pid`, and writing meta.json there and renaming
// it to DIR.
std::string part_file(int r);
void write_part_file(const std::string& path, const Shard& shard, const std::string& id);
nlohmann::json folder_meta(const std::string& id, const DatasetSpec& how, const DatasetInfo& info,
                           PartitionMethod method, std::uint64_t seed, const std::vector<PartitionShape>& shapes,
                           const std::vector<std::int64_t>& feature_nnz);
std::string temporary_folder(const std::string& dir, long pid);
void commit_folder(const std::string& tmp, const std::string& dir, const nlohmann::json& meta);

// meta.json of DIR, checked (format, version, sizes of its arrays). Throws adaqp::Error naming the
// file and key at fault.
struct PartitionMeta {
  std::string dir, id;
  DatasetSpec how;
  DatasetInfo info;
  PartitionMethod method = PartitionMethod::metis_cut;
  std::uint64_t seed = 0;
  int parts = 0;
  std::vector<PartitionShape> shapes;
  std::vector<std::int64_t> feature_nnz;
  std::vector<std::string> files;
  nlohmann::json stats;
};
PartitionMeta read_partition_meta(const std::string& dir);

// Rank `rank`'s shard from DIR, run by `ranks` ranks: reads meta.json and part-RANK.npz only.
// Throws adaqp::Error naming the file when the folder was cut into another number of parts, the
// part is missing, truncated or corrupt, belongs to another partitioning, or disagrees with meta.json.
Shard read_shard(const std::string& dir, int rank, int ranks);

}  // namespace adaqp::graph
