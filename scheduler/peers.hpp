// Peer strategies: the communication-reduction ideas of other systems, built by the same scheduler
// as AdaQP's modes and executed by the same engine and simulator.
//
//   stale pipelining (PipeGCN, Wan et al., ICLR 2022): every exchange's result is used one epoch
//     later. At epoch t a layer aggregates the halo rows (forward) and halo-row gradients
//     (backward) that were sent at epoch t - 1, so nothing on the compute lane waits for a message;
//     this epoch's messages land in per-layer stores that epoch t + 1 reads. With momentum g the
//     stores are smoothed: store = g * store + (1 - g) * received (PipeGCN's feature and gradient
//     smoothing; g = 0: plain staleness). The first epoch exchanges synchronously (nothing is
//     stale yet) and fills the stores.
//     The stale rows are layer inputs H (every layer after the first aggregates first:
//     ModelShape::exchange_inputs), which this epoch's weights multiply, as in PipeGCN. The first
//     layer's inputs are the features, which never go stale: it exchanges nothing and reads its
//     halo rows from the rank's copy (Plan::halo_features), so it is exact.
//   boundary node sampling (BNS-GCN, Wan et al., MLSys 2022): every epoch each pair of ranks keeps
//     s = floor(p * b) of the b boundary nodes the owner sends to the holder, chosen afresh per
//     epoch from a seeded hash both sides compute (no index exchange). Dropped nodes and their
//     edges are left out of that epoch's aggregation (their halo rows are zero); kept rows are
//     scaled by b / s in both directions, so the aggregation is an unbiased estimate of the full one
//     under the full graph's normalisation (BNS-GCN's handling).
//   reduced precision (SANCUS-style fp16, and bf16): wire widths (scheduler/wire_format.hpp).
//
// Combinations: stale pipelining runs with --mode vanilla or quant (any uniform width): it already
// overlaps the whole exchange, so the overlap modes are rejected. Boundary sampling runs with every
// mode and uniform width. Stale pipelining runs with adaptive widths too (every row still travels
// every epoch; a message is packed and unpacked within one epoch's plan, so both sides use the same
// layouts). Stale pipelining and sampling together, and sampling with adaptive widths (whose layouts
// assume every row travels every epoch), are rejected. Evaluation is always the full, fresh, fp32
// exchange. Bounded staleness (engine::TrainConfig::stale_bound, --stale-bound) runs the warm-up
// (synchronous) plan again on the epochs it forces.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "graph/partition.hpp"
#include "scheduler/plan.hpp"

namespace adaqp::scheduler {

struct PeerOptions {
  bool stale = false;         // stale pipelining
  double stale_momentum = 0;  // smoothing of the stale stores, in [0, 1)
  double boundary_rate = 1;   // fraction of boundary nodes kept per epoch, in (0, 1]; 1 = no sampling
  // Stale pipelining only: build the first epoch's plan (synchronous exchange that fills the stores).
  bool warmup = false;
  // Not a peer strategy but a way to build any plan (--allreduce overlap): each gradient bucket is
  // all-reduced as soon as backward has produced it, while backward of the earlier layers runs, and
  // updated by the optimizer as soon as it is in; a dominant first layer's bucket goes first, a
  // sparse one in row blocks (build_backward.cpp). false (--allreduce after): one bucket per layer,
  // every one after the whole backward pass, then one update. The same sums and updates either way,
  // so the losses are identical.
  bool overlap_allreduce = false;
  // Stale pipelining with --stale-bound auto: the unpacks into the stale stores also measure how far
  // the received rows moved from the stored ones (Task::measure_drift; one more pass over the rows).
  // Set from TrainConfig::stale_auto by engine::plan_peers, not by hand.
  bool measure_drift = false;

  bool sampled() const { return boundary_rate < 1; }
  bool any() const { return stale || sampled(); }
};

// Checks the options and their combination with a mode (adaptive: --bits adaptive). Throws
// adaqp::Error naming the flag and value on the first problem.
void check_peers(const PeerOptions& peers, Mode mode, bool adaptive);

// A short name of the strategy for records and reports: "adaqp", "quant", "pipegcn",
// "pipegcn-m0.9", "bns-0.1", "quant+bns-0.1", ... (mode and peer options; widths are separate).
std::string strategy_name(Mode mode, const PeerOptions& peers);

// Rows kept of a boundary list of `rows` rows at rate p: floor(p * rows) (BNS-GCN's count).
std::int64_t sampled_rows(std::int64_t rows, double rate);

// One epoch's boundary sample of one rank: per peer q, the positions kept (ascending) in
// part.send_rows[q] (rows this rank sends to q) and in q's halo rows on this rank (rows received
// from q). The owner's and the holder's choices agree because both rank the same global ids by
// hash(seed, epoch, owner, holder, global id) and keep the sampled_rows() smallest.
struct BoundarySample {
  std::vector<std::vector<std::int32_t>> send_pos, halo_pos;
};
BoundarySample sample_boundary(const graph::LocalPartition& part, double rate, std::uint64_t seed, std::int64_t epoch);

}  // namespace adaqp::scheduler
