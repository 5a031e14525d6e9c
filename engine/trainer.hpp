// Full-graph training of one model on one dataset, on P = comm.size() ranks (P = 1: one process).
// Every rank gets its shard (graph/shard.hpp): read from a partition folder (--partitions DIR:
// its part only) or cut from the whole dataset (--dataset: every rank loads it and computes the
// same deterministic partition). Each rank builds every rank's plan from the shards' sizes
// (validated together), runs its own, and the metrics are reduced.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/comm/communicator.hpp"
#include "engine/metrics.hpp"
#include "engine/model.hpp"
#include "engine/optimizer.hpp"
#include "graph/dataset.hpp"
#include "graph/partition.hpp"
#include "graph/shard.hpp"
#include "scheduler/adaptive.hpp"
#include "scheduler/build_plan.hpp"
#include "scheduler/peers.hpp"
#include "scheduler/plan.hpp"

namespace adaqp::engine {

struct TrainConfig {
  std::string dataset;  // spec as given (recorded in the run record)
  // --partitions DIR: rank r reads DIR's part r (graph/partition_folder.hpp); dataset, split and
  // partition settings are then the folder's (load_shard fills them in). "" = from `dataset`.
  std::string partitions;
  // How the dataset was split (graph/split.hpp; canonical text, "" = the dataset's default) and
  // the seed of a random split: the caller loads the data with them; recorded and compared across
  // ranks with every other setting.
  std::string split;
  std::uint64_t split_seed = 0;
  ModelConfig model;
  AdamConfig adam;
  std::int64_t epochs = 200;
  std::int64_t eval_every = 1;                      // evaluate after epochs divisible by this, and after the last one
  std::uint64_t seed = 0;                           // weights and dropout
  int threads = 0;                                  // OpenMP + BLAS threads per rank; 0 = cores / ranks on this host
  scheduler::Mode mode = scheduler::Mode::vanilla;  // strategy (overlap or not) and quantization
  scheduler::Width
      width;  // exchange width of the training step: fp32 for vanilla / overlap; 2, 4, 8, fp16, bf16 when quantized
  bool adaptive = false;  // --bits adaptive: widths from scheduler::assign_bits; `width` is the first period's
  scheduler::AssignConfig assign;
  scheduler::PeerOptions peers;     // stale pipelining / boundary sampling (scheduler/peers.hpp)
  std::int64_t assign_period = 50;  // epochs between re-assignments
  // Bounded staleness (with peers.stale): a synchronous ("fresh") exchange at least every
  // stale_bound epochs (0: only the first epoch), and with stale_auto also after any epoch whose
  // stale-store drift (EpochMetrics::stale_drift) exceeded stale_drift (Sylvie's adaptor).
  std::int64_t stale_bound = 0;
  bool stale_auto = false;
  double stale_drift = 0.2;
  // How the assigner normalises a round's time (scheduler/bit_assignment.hpp): "range" (the round's
  // own time at the widest width), "compute" (the round's share of the measured compute time of
  // the epoch before: compute_s / (2 layers)) or a number of seconds.
  std::string assign_time = "range";
  std::string link_model = "probe";  // channel costs: "probe" (measured) or "ALPHA_US:GBPS" for every link
  graph::PartitionMethod partition = graph::PartitionMethod::metis_cut;
  std::uint64_t partition_seed = 0;
  std::string metrics_path;     // JSON Lines output, empty = none
  std::string backend = "cpu";  // what runs the plans: "cpu" or "cuda" (engine/executor.hpp: make_backend)
  // How ranks of the cuda backend exchange messages: "mpi" (staged through pinned host memory),
  // "nccl" (device buffers, one rank per GPU) or "auto" (nccl when every rank can, else mpi).
  // The cpu backend talks MPI only ("auto" or "mpi").
  std::string transport = "auto";
  // Where the CPU backend keeps the plans' buffers and message slots: "shared" (one arena, regions
  // placed by lifetime: scheduler/memory_plan.hpp) or "separate" (one allocation each, the
  // reference the shared arena is tested against). The cuda backend allocates each on the device.
  std::string buffers = "shared";
  double comm_timeout_s = kDefaultCommTimeout_s;  // watchdog of every wait and collective; 0 = none
  // --checkpoint DIR: every checkpoint_every epochs (and after the last) every rank writes its state
  // there (engine/checkpoint.hpp); resume: continue from the last complete checkpoint in DIR.
  std::string checkpoint_dir;
  std::int64_t checkpoint_every = 0;
  bool resume = false;
  std::string
      trace_path;  // per-task mean seconds of every rank's training plan (JSON Lines, written by rank 0), empty = none
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

std::string hostname();
std::string utc_now();  // ISO 8601, seconds, UTC ("2026-11-24T20:00:00Z")

// The `build` object of run records and sweep provenance: version, type, compiler, cuda / nccl /
// mpi / sanitize, library versions.
nlohmann::json build_record();

// The `run` record: every setting, build options, host, dataset counts. Training adds the
// partition (partition_record).
nlohmann::json run_record(const TrainConfig& config, const graph::DatasetInfo& data, int ranks);
// The run record's `partition` object: method, seed, folder, id, edge cut, communication volume,
// node and edge imbalance (graph::partition_stats of the shards' sizes).
nlohmann::json partition_record(const graph::Shard& shard);

// The model as the scheduler sees it (widths, dropout, GraphSAGE or GCN, whether exchanges carry
// layer inputs), after checking the exchange settings (--bits against --mode, the peer options);
// throws adaqp::Error naming the flag. The one builder of train, plan and simulate; the caller
// sets sparse_input and feature_nnz.
scheduler::ModelShape model_shape(const TrainConfig& config, std::int64_t features, std::int64_t classes);

// Every rank's training and evaluation plans from the parts' sizes, validated together; and
// whether the first layer reads sparse features (decided on the whole feature matrix, from every
// part's feature non-zeros, so ranks agree).
struct PlanSet {
  bool sparse_features = false;
  bool halo_features = false;  // the features include halo rows (scheduler::Plan::halo_features)
  std::vector<scheduler::Plan> train, eval;
  std::vector<scheduler::Plan> train_first;  // stale pipelining: the first epoch's plans (else empty)
};
// The peer options the plans are built with: config.peers, with measure_drift derived from
// stale_auto (the drift of the stale stores is measured only when it decides the refreshes). The
// one place this is decided, for the trainer and the simulator.
scheduler::PeerOptions plan_peers(const TrainConfig& config);

PlanSet make_plans(const TrainConfig& config, const graph::DatasetInfo& info,
                   const std::vector<graph::PartitionShape>& shapes, const std::vector<std::int64_t>& feature_nnz,
                   const scheduler::BitAssignment* assignment = nullptr);
PlanSet make_plans(const TrainConfig& config, const graph::Shard& shard,
                   const scheduler::BitAssignment* assignment = nullptr);
// The same for a whole dataset and its partition (plan, simulate, tests).
PlanSet make_plans(const graph::Dataset& data, const TrainConfig& config, const std::vector<std::int32_t>& owner,
                   const std::vector<graph::LocalPartition>& parts,
                   const scheduler::BitAssignment* assignment = nullptr);

// This rank's features as its plans read them: the inner rows, then the halo rows when
// plans.halo_features; CSR when plans.sparse_features.
Features<float> local_features(const graph::Shard& shard, const PlanSet& plans);

// What this rank trains on, got the same way on every rank:
//   config.partitions = DIR: reads DIR/meta.json and DIR's part of this rank only, and fills in
//     config's dataset, split, split seed and partition settings from meta.json;
//   otherwise: loads config.dataset whole, computes the partition (the same on every rank:
//     checked) and keeps this rank's shard (the rest is freed on return).
// A failure on any rank (folder cut into another number of parts, a part missing, truncated or
// from another partitioning) throws CollectiveError with the same line on every rank.
graph::Shard load_shard(TrainConfig& config, Communicator& comm);
// This rank's shard of a loaded dataset (the partition of config.partition, checked equal on every rank).
graph::Shard shard_of(const graph::Dataset& data, const TrainConfig& config, Communicator& comm);

// Alpha-beta cost of every ordered pair of ranks, measured by ping-pong ([sender][receiver]).
std::vector<std::vector<scheduler::ChannelCost>> probe_links(Communicator& comm);
// The same from --link-model: "probe" measures; "ALPHA_US:GBPS" gives every link latency ALPHA_US
// microseconds and bandwidth GBPS gigabits per second. Throws adaqp::Error on a malformed value.
std::vector<std::vector<scheduler::ChannelCost>> link_costs(const std::string& model, Communicator& comm);

// The time scale of --assign-time (TrainConfig::assign_time) for an epoch that computed for
// compute_s seconds: 0 for "range", compute_s / (2 layers) for "compute", the number otherwise.
// Throws adaqp::Error naming the value when it is none of these.
double assign_time_scale(const std::string& spec, double compute_s, int layers);

class Executor;
// Gathers the statistics of `trainer`'s last run (collected with collect_stats), solves the
// assignment on rank 0 and broadcasts it; fills the record's solver fields on rank 0.
scheduler::BitAssignment reassign_bits(const Executor& trainer, const graph::LocalPartition& part,
                                       const Aggregation& agg,
                                       const std::vector<std::vector<scheduler::ChannelCost>>& costs,
                                       const TrainConfig& config, double time_scale_s, Communicator& comm,
                                       AssignmentRecord* record);

// Trains this rank's shard; records and the callback only on rank 0. Throws adaqp::Error when the
// ranks' settings or datasets differ (checked first, on every rank). Takes the shard (move it in):
// its feature rows are released once the plans' input features are built from them.
TrainResult train(graph::Shard shard, const TrainConfig& config, Communicator& comm,
                  const EpochCallback& on_epoch = {});
// The same from a whole dataset (shard_of, then train).
TrainResult train(const graph::Dataset& data, const TrainConfig& config, Communicator& comm,
                  const EpochCallback& on_epoch = {});
// Single process.
TrainResult train(const graph::Dataset& data, const TrainConfig& config, const EpochCallback& on_epoch = {});

}  // namespace adaqp::engine
