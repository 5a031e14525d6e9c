// Partitioning graphs that do not fit one host: the R processes of
// `mpirun -np R adaqp partition --method ptscotch --out DIR` each hold one block of nodes
// ([N r / R, N (r + 1) / R)) with their rows, features, labels and masks, partition the
// distributed graph with PT-Scotch (or the seeded random method), move every row to the process
// that writes its part (part p: process p mod R), fetch the halo rows' features from their blocks,
// and write the same partition folder as the single-host path (graph/partition_folder.hpp;
// meta.json and part-R.npz, DIR on a folder every process sees).
//
// Blocks: an "sbm:" spec (or a registered sbm) is generated block by block (graph/synthetic.hpp:
// SbmGenerator; each process draws its nodes' endpoints and receives the reverse edges from the
// others), so no process holds the whole graph. Any other dataset is loaded whole by every process
// and cut (correct, not memory-scalable).
// Memory per process: its block (rows, features), plus O(N) labels, degrees and owners, plus the
// rows of the parts it writes. Needs MPI and PT-Scotch (Debian libptscotch-dev).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "graph/partition.hpp"
#include "graph/partition_folder.hpp"

namespace adaqp::graph {

struct DistributedPartitionOptions {
  DatasetSpec dataset;  // spec, split, split seed
  int parts = 2;
  PartitionMethod method = PartitionMethod::ptscotch;  // ptscotch or random
  std::uint64_t seed = 0;
  // PT-Scotch's strategy: flags joined by commas ("default", "quality", "speed", "balance",
  // "safety", "scalability": Scotch's SCOTCH_STRAT* flags) or a Scotch strategy string (has a '{').
  std::string strategy = "default";
  std::string out;  // the folder to write
};

struct DistributedPartitionResult {
  nlohmann::json meta;                              // meta.json's content (every process)
  double load_s = 0, partition_s = 0, write_s = 0;  // maxima over processes
  std::int64_t peak_rss_bytes = 0;                  // max over processes
};

// Collective over MPI_COMM_WORLD (MPI initialised by the caller). An adaqp::Error on any process
// becomes adaqp::CollectiveError with the same line on every process; nothing is left behind.
DistributedPartitionResult partition_distributed(const DistributedPartitionOptions& options);

}  // namespace adaqp::graph
