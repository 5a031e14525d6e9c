// Runs one rank's plan (scheduler/plan.hpp) with the CPU kernels and a Communicator.
// Buffers and message slots are allocated once, at construction, from the plan's declarations.
// Tasks are issued in list order on the calling thread; sends and receives are posted when
// reached, and a task that depends on one waits for it (that wait is the `comm_s` of the step).
#pragma once
#include <cstdint>
#include <map>
#include <vector>

#include "engine/comm/communicator.hpp"
#include "engine/model.hpp"
#include "engine/optimizer.hpp"
#include "scheduler/peers.hpp"
#include "scheduler/plan.hpp"

namespace adaqp::engine {

// Inputs of the loss task: this rank's inner rows.
struct LossInputs {
  const std::vector<std::int32_t>* labels = nullptr;
  const std::vector<std::uint8_t>* mask = nullptr;
  double normaliser = 1;  // training nodes over all ranks
};

// Times of one run of a plan on this rank (seconds) and what it sent (bytes).
struct StepTimes {
  double total_s = 0;    // wall time of the whole plan
  double compute_s = 0;  // compute tasks
  double comm_s = 0;     // blocked waiting for sends / receives
  double reduce_s = 0;   // the gradient all-reduce
  double quant_s = 0;    // packing / unpacking quantized (or fp16) messages
  std::int64_t bytes_sent = 0;
  std::int64_t bytes_meta = 0;
  double loss = 0;       // this rank's share of the loss (sum over its training rows / normaliser)
};

// Quantization error of one run's packs (collected on request): measured squared error of the
// decoded values against the originals, and the model's bound sum of cols * range^2 / (4 (2^b-1)^2).
struct QuantStats {
  double error_sq = 0;    // sum over quantized elements of (x^ - x)^2
  double bound_sq = 0;    // the worst-case model of the same sum
  double model_sq = 0;    // the variance model of the same sum: (C - 2) range^2 / (6 (2^b-1)^2) per row
  std::int64_t elements = 0;
  void add(const QuantStats& o) {
    error_sq += o.error_sq;
    bound_sq += o.bound_sq;
    model_sq += o.model_sq;
    elements += o.elements;
  }
};

// The persistent buffers of a run (stale stores), by name; shared by the plans that declare them.
using PersistentBuffers = std::map<std::string, Matrix<float>>;

class PlanExecutor {
 public:
  // All references must outlive the executor. `persistent` is required when the plan declares
  // persistent buffers: they are taken from it by name (made, zero, when missing).
  PlanExecutor(const scheduler::Plan& plan, const graph::LocalPartition& part, const Aggregation& agg,
               Communicator& comm, PersistentBuffers* persistent = nullptr);

  // Boundary sampling: the rows of this epoch's sample (scheduler::sample_boundary) for the
  // plan's sampled row sets; required before each run of a plan that has them.
  void set_boundary_sample(const scheduler::BoundarySample& sample);

  // Runs every task once. params in plan.params order (Model::params()); adam is used by the
  // optimizer task, key by dropout tasks and quantizing packs (seed, epoch), loss by the loss task
  // (null where the plan has none).
  StepTimes run(const std::vector<Param<float>*>& params, Adam<float>* adam, const Features<float>& x,
                const DropoutKey* key, const LossInputs* loss);

  const Matrix<float>& buffer(int id) const { return *buf_[std::size_t(id)]; }

  // When on, packs record each message row's range (max - min), in message order, and the
  // quantization error of the run (costs one extra decode per quantized message).
  void collect_stats(bool on) { collect_ = on; }
  const std::vector<float>& row_ranges(int task_id) const { return ranges_[task_id]; }
  // When given (plan.tasks.size() entries), each run adds every task's execution seconds (waits
  // for its dependencies excluded) to its entry; null stops tracing.
  void trace(std::vector<double>* task_seconds) { trace_ = task_seconds; }
  const QuantStats& quant_stats() const { return quant_stats_; }
  // The same per (layer, direction: 0 forward, 1 backward) of the packs.
  const std::map<std::pair<int, int>, QuantStats>& quant_stats_by_layer() const { return quant_by_layer_; }
  const scheduler::Plan& plan() const { return plan_; }

 private:
  // Rows per chunk of an SpMM / GEMM while messages are in flight (progress calls in between).
  static constexpr std::int64_t kProgressRows = 2048;
  bool in_flight() const;  // some posted send / receive not yet waited for
  float* rows_ptr(const scheduler::Operand& o, const std::vector<Param<float>*>& params, const Features<float>& x,
                  std::int64_t* ld);
  void execute(const scheduler::Task& t, const std::vector<Param<float>*>& params, Adam<float>* adam,
               const Features<float>& x, const DropoutKey* key, const LossInputs* loss, StepTimes& times);

  const scheduler::Plan& plan_;
  const graph::LocalPartition& part_;
  const Aggregation& agg_;
  Communicator& comm_;
  std::vector<Matrix<float>> buffers_;  // owned (non-persistent) buffers
  std::vector<Matrix<float>*> buf_;      // every buffer by plan id (owned or persistent)
  bool sampled_ = false;                 // the plan has sampled row sets
  bool sample_given_ = false;
  std::vector<std::vector<std::uint8_t>> messages_;
  std::vector<std::int64_t> local_global_;  // local row (inner, then halo) -> global node id
  std::vector<std::vector<std::uint8_t>> masks_;  // per buffer: dropout mask (when a backward needs it)
  std::vector<bool> mask_needed_;
  graph::Csr dropped_features_;
  std::vector<int> request_;  // per task: communicator request of a send / recv, or -1
  std::vector<std::vector<graph::NodeId>> task_rows_;  // pack / unpack: local rows in message order
  bool collect_ = false;
  std::vector<double>* trace_ = nullptr;
  std::vector<std::vector<float>> ranges_;  // per pack task
  QuantStats quant_stats_;
  std::map<std::pair<int, int>, QuantStats> quant_by_layer_;
  std::vector<float> scratch_;
  std::vector<float> flat_grads_;
};

}  // namespace adaqp::engine
