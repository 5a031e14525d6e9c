// The discrete-event executor: runs every rank's plan (the very objects the engine executes,
// built by scheduler::build_plan) on cost models instead of kernels and a transport.
//
// Semantics mirror engine/executor.hpp task for task: each rank issues its tasks in list order on
// one thread; a compute task takes compute_seconds (cost_model.hpp); a send or receive posts in
// Profile::post_s; a task that depends on a send / receive waits for its completion (that wait is
// comm_s); after the last task a rank waits for its unfinished sends. A matched send / receive
// pair moves its bytes over the network (network.hpp) once both are posted (rendezvous). The
// all-reduce starts when the last rank reaches it: its latency, then ring transfers that share the
// network with transfers still in flight (alone, it takes allreduce_seconds). Per-rank times follow
// the definitions of the `epoch` record (docs/metrics.md), predicted.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scheduler/plan.hpp"
#include "simulator/network.hpp"
#include "simulator/profile.hpp"

namespace adaqp::simulator {

// One rank's predicted step, fields as engine::StepTimes (seconds).
struct RankPrediction {
  double total_s = 0, compute_s = 0, comm_s = 0, quant_s = 0, reduce_s = 0;
};

// Start and end (seconds from the step's start) of one task on its rank.
struct TaskSpan {
  double start_s = 0, end_s = 0;
};

struct Prediction {
  std::vector<RankPrediction> ranks;
  // Maxima over ranks, as the epoch record's fields: epoch_s (predicted_epoch_s), compute_s, ...
  double epoch_s = 0, compute_s = 0, comm_s = 0, quant_s = 0, reduce_s = 0;
  std::int64_t bytes_sent = 0, bytes_meta = 0;  // all ranks (Plan::bytes_sent)
  std::int64_t events = 0;                      // rank steps + transfer completions processed
  std::vector<std::vector<TaskSpan>> timeline;  // [rank][task], when asked for
};

// plans: one per rank, rank r at index r, validated together (scheduler::validate). Throws
// adaqp::Error on a plan the executor could not finish (a receive nobody sends).
Prediction simulate(const std::vector<scheduler::Plan>& plans, const Profile& profile, const Network& net,
                    bool timeline = false);

// The `summary` record of a simulated run (docs/metrics.md): epochs 0, ranks, mode, bits and
// predicted_epoch_s, predicted_compute_s, predicted_comm_s, predicted_quant_s,
// predicted_reduce_s (the training step), predicted_eval_s (the evaluation pass), bytes_sent,
// bytes_meta, simulator_events, simulate_s (wall time of the two simulations).
nlohmann::json summary_record(const Prediction& train, const Prediction& eval, int ranks, const std::string& mode,
                              const std::string& bits, double simulate_s);

}  // namespace adaqp::simulator
