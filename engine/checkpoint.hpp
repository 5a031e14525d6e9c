// Checkpoints of a training run (--checkpoint DIR --checkpoint-every K, --resume): everything a
// rank needs to continue a killed run and produce exactly the losses of an uninterrupted one.
//
// Layout: DIR/epoch-NNNNNNNN/rank-R.ckpt, one file per rank, each written to a temporary name and
// renamed; once every rank has written its file, rank 0 writes DIR/latest (also by rename) naming
// that epoch's folder and removes older ones. A run killed at any moment leaves `latest` naming a
// complete set. File: "ADAQPCKPT1\n", the JSON header's length (8 bytes, little-endian), the header,
// the sections' bytes in header order, then a CRC-32 of everything before it (4 bytes).
// Dropout masks, quantization noise and boundary samples are functions of (seed, epoch), so the
// epoch is the random streams' position.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/comm/communicator.hpp"
#include "engine/executor.hpp"
#include "engine/optimizer.hpp"

namespace adaqp::engine {

struct Checkpoint {
  // The run's identity: the `run` record's settings (minus what may change on resume: epochs,
  // comm_timeout_s, checkpoint_every), the dataset's counts and the rank count. A checkpoint
  // whose identity differs is refused, naming the first key that differs.
  nlohmann::json identity;
  int rank = 0, ranks = 1;
  std::int64_t epoch = 0;                  // epochs completed
  std::vector<std::vector<float>> params;  // values, Model::params() order
  AdamState adam;                          // moments and steps
  std::vector<std::int32_t> assignment;    // scheduler::serialize of the widths in use (adaptive)
  bool has_assignment = false;
  std::vector<double> link_costs;  // adaptive: [sender][receiver] (alpha_s, beta_s_per_byte)
  PersistentBuffers stores;        // stale pipelining's stores
  std::string records;             // rank 0: the JSON Lines written so far (run and epochs)
};

// Writes this rank's checkpoint; every rank calls it for the same epoch (collective: it waits for
// every rank's file before rank 0 moves DIR/latest). Throws adaqp::Error when DIR cannot be written.
void write_checkpoint(const std::string& dir, const Checkpoint& ck, Communicator& comm);

// Reads this rank's file of the epoch DIR/latest names. Throws adaqp::Error naming the file when
// there is none, it is truncated or corrupt (CRC), or it belongs to another run (identity), rank
// or rank count.
Checkpoint read_checkpoint(const std::string& dir, int rank, int ranks, const nlohmann::json& identity);

}  // namespace adaqp::engine
