// Runs one rank's plan (scheduler/plan.hpp) with the CPU kernels and a Communicator.
// Buffers and message slots are allocated once, at construction, from the plan's declarations.
// Tasks are issued in list order on the calling thread; sends and receives are posted when
// reached, and a task that depends on one waits for it (that wait is the `comm_s` of the step).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "base/error.hpp"
#include "engine/comm/communicator.hpp"
#include "engine/model.hpp"
#include "engine/optimizer.hpp"
#include "engine/step_driver.hpp"
#include "engine/workspace.hpp"
#include "scheduler/memory_plan.hpp"
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
  double loss = 0;  // this rank's share of the loss (sum over its training rows / normaliser)
  // Stale stores (the CPU backend measures them): over the rows received into a store this step,
  // the sum of |received - stored|^2 and of |stored|^2 (the stored values being last epoch's).
  double stale_drift_sq = 0, stale_norm_sq = 0;
};

// Quantization error of one run's packs (collected on request): measured squared error of the
// decoded values against the originals, and the model's bound sum of cols * range^2 / (4 (2^b-1)^2).
struct QuantStats {
  double error_sq = 0;  // sum over quantized elements of (x^ - x)^2
  double bound_sq = 0;  // the worst-case model of the same sum
  double model_sq = 0;  // the variance model of the same sum: (C - 2) range^2 / (6 (2^b-1)^2) per row
  std::int64_t elements = 0;
  void add(const QuantStats& o) {
    error_sq += o.error_sq;
    bound_sq += o.bound_sq;
    model_sq += o.model_sq;
    elements += o.elements;
  }
};

// Shared by the executors of every backend (CPU here, engine/cuda/executor.hpp):
// Local rows of every pack / unpack of a plan, by task id, in message order (empty for other
// tasks and for sampled row sets, which come with each epoch's sample; *sampled tells whether
// the plan has any).
std::vector<std::vector<graph::NodeId>> message_rows(const scheduler::Plan& plan, const graph::LocalPartition& part,
                                                     bool* sampled);
// The rows of the plan's sampled packs / unpacks for one epoch's boundary sample.
void sample_message_rows(const scheduler::Plan& plan, const graph::LocalPartition& part,
                         const scheduler::BoundarySample& sample,
                         std::vector<std::vector<graph::NodeId>>& rows_by_task);
// (rows, width) of each group of a pack / unpack's message; a uniform message is one group.
std::vector<std::pair<std::int64_t, scheduler::Width>> message_groups(const scheduler::Task& t);
// Quantization error of one encoded group: `count` rows (row r at src + rows[r] * ld) of `cols`
// values against their decoding from `message` (a quantized width); each row's range (max - min) into
// ranges when not null. scratch: reused decode space.
QuantStats pack_stats(const float* src, std::int64_t ld, const graph::NodeId* rows, std::int64_t count,
                      std::int64_t cols, scheduler::Width width, const std::uint8_t* message, float* ranges,
                      std::vector<float>& scratch);

// The persistent buffers of a run (stale stores), by name; shared by the plans that declare them.
using PersistentBuffers = std::map<std::string, Matrix<float>>;
// Checks that `from` (a checkpoint's stores) has exactly the names and shapes of a backend's
// stores `to` (any map from name to something with rows and cols); throws adaqp::Error otherwise.
template <class Stores>
void check_stores(const PersistentBuffers& from, const Stores& to) {
  if (from.size() != to.size())
    throw Error("checkpoint: " + std::to_string(from.size()) + " stale stores saved, this run's plans declare " +
                std::to_string(to.size()));
  for (const auto& [name, m] : from) {
    auto it = to.find(name);
    if (it == to.end() || it->second.rows != m.rows || it->second.cols != m.cols)
      throw Error("checkpoint: stale store '" + name + "' is not one this run's plans declare with that shape");
  }
}
// Copies every store of `from` into the one of the same name and shape in `to`, in place (matrices
// stay where they are). Throws adaqp::Error when names or shapes differ.
void copy_stores(const PersistentBuffers& from, PersistentBuffers& to);

// What the trainer asks of the executor of a plan, whichever backend runs it: the CPU's
// PlanExecutor below (the reference) or the GPU's (engine/cuda/executor.hpp).
class Executor {
 public:
  virtual ~Executor() = default;
  virtual void set_boundary_sample(const scheduler::BoundarySample& sample) = 0;
  // Runs every task once; see PlanExecutor::run. A GPU executor works on the device copies of
  // params, adam and x made by its backend and reads only whether adam / loss are given.
  virtual StepTimes run(const std::vector<Param<float>*>& params, Adam<float>* adam, const Features<float>& x,
                        const DropoutKey* key, const LossInputs* loss) = 0;
  // A buffer's values on the host (a GPU executor copies it down). Valid until the next run of any
  // executor of the backend (buffers share an arena: scheduler/memory_plan.hpp).
  virtual MatrixView<const float> host_buffer(int id) = 0;
  virtual void collect_stats(bool on) = 0;
  virtual const std::vector<float>& row_ranges(int task_id) const = 0;
  virtual void trace(std::vector<double>* task_seconds) = 0;
  virtual const QuantStats& quant_stats() const = 0;
  virtual const std::map<std::pair<int, int>, QuantStats>& quant_stats_by_layer() const = 0;
  virtual const scheduler::Plan& plan() const = 0;
};

// Makes the executors of one training run and owns what they share across plans (the stale
// stores of pipelining, device copies of the model). One per run and rank.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::unique_ptr<Executor> make(const scheduler::Plan& plan) = 0;
  // Copies the trained parameter values back into the host model (a no-op on the CPU).
  virtual void finish(const std::vector<Param<float>*>& params) = 0;
  // What runs the plans, for the run record ({"name": "cpu", ...}).
  virtual nlohmann::json describe() const = 0;

  // Checkpoints (engine/checkpoint.hpp): the training state as this backend holds it, copied to
  // and from the host. `adam` is the host optimizer the CPU steps; a GPU backend keeps parameter
  // values and moments on the device and copies those instead. Stores: the persistent buffers
  // (stale pipelining), by name; set_stores requires the names and shapes the plans declared.
  virtual AdamState optimizer_state(const Adam<float>& adam) = 0;
  virtual void set_training_state(const std::vector<Param<float>*>& params, Adam<float>& adam,
                                  const AdamState& state) = 0;
  virtual PersistentBuffers stores() = 0;
  virtual void set_stores(const PersistentBuffers& stores) = 0;
};

// What a backend is made from; every pointer outlives the backend.
struct BackendInputs {
  const graph::LocalPartition* part = nullptr;
  const Aggregation* agg = nullptr;
  Communicator* comm = nullptr;
  std::vector<Param<float>*> params;  // Model::params()
  AdamConfig adam;
  const Features<float>* x = nullptr;
  const LossInputs* loss = nullptr;  // training rows; labels also serve evaluation
  std::string transport = "auto";    // TrainConfig::transport
  bool share_buffers = true;         // TrainConfig::share_buffers: one arena for every plan (CPU)
};
std::unique_ptr<Backend> make_cpu_backend(const BackendInputs& in);
// Backends other than "cpu" register themselves here (engine/cuda: cuda::register_backend(),
// called by the programs that link it). make_backend throws adaqp::Error for an unknown or
// unavailable name, saying which are built.
using BackendFactory = std::function<std::unique_ptr<Backend>(const BackendInputs&)>;
void register_backend(const std::string& name, BackendFactory factory);
std::unique_ptr<Backend> make_backend(const std::string& name, const BackendInputs& in);
std::vector<std::string> backend_names();

class PlanExecutor : public Executor, private StepHooks {
 public:
  // All references must outlive the executor. `persistent` is required when the plan declares
  // persistent buffers: they are taken from it by name (made, zero, when missing). `workspace`:
  // the other buffers and the message slots live there, placed by scheduler::plan_memory (each
  // run first asks it for the plan's arena); null: each has its own allocation and keeps its
  // values after the run (tests that inspect intermediate buffers).
  PlanExecutor(const scheduler::Plan& plan, const graph::LocalPartition& part, const Aggregation& agg,
               Communicator& comm, PersistentBuffers* persistent = nullptr, Workspace* workspace = nullptr);

  // Boundary sampling: the rows of this epoch's sample (scheduler::sample_boundary) for the
  // plan's sampled row sets; required before each run of a plan that has them.
  void set_boundary_sample(const scheduler::BoundarySample& sample) override;

  // Runs every task once. params in plan.params order (Model::params()); adam is used by the
  // optimizer task, key by dropout tasks and quantizing packs (seed, epoch), loss by the loss task
  // (null where the plan has none).
  StepTimes run(const std::vector<Param<float>*>& params, Adam<float>* adam, const Features<float>& x,
                const DropoutKey* key, const LossInputs* loss) override;

  MatrixView<const float> buffer(int id) const { return buf_[std::size_t(id)]; }
  MatrixView<const float> host_buffer(int id) override { return buffer(id); }
  // Where the plan's buffers and message slots are placed (also without a workspace).
  const scheduler::MemoryLayout& memory() const { return memory_; }

  // When on, packs record each message row's range (max - min), in message order, and the
  // quantization error of the run (costs one extra decode per quantized message).
  void collect_stats(bool on) override { collect_ = on; }
  const std::vector<float>& row_ranges(int task_id) const override { return ranges_[task_id]; }
  // When given (plan.tasks.size() entries), each run adds every task's execution seconds (waits
  // for its dependencies excluded) to its entry; null stops tracing.
  void trace(std::vector<double>* task_seconds) override { trace_ = task_seconds; }
  const QuantStats& quant_stats() const override { return quant_stats_; }
  // The same per (layer, direction: 0 forward, 1 backward) of the packs.
  const std::map<std::pair<int, int>, QuantStats>& quant_stats_by_layer() const override { return quant_by_layer_; }
  const scheduler::Plan& plan() const override { return plan_; }

 private:
  // Rows per chunk of an SpMM / GEMM while messages are in flight (progress calls in between).
  static constexpr std::int64_t kProgressRows = 2048;
  float* rows_ptr(const scheduler::Operand& o, const std::vector<Param<float>*>& params, const Features<float>& x,
                  std::int64_t* ld);
  int execute(const scheduler::Task& t, StepTimes& times) override;  // StepHooks
  void request_done(const scheduler::Task& t) override;              // StepHooks: a bucket is reduced
  // The task kinds with more than a line of work (execute dispatches).
  void run_dropout(const scheduler::Task& t);
  void run_gemm(const scheduler::Task& t);
  void run_spmm(const scheduler::Task& t);  // aggregation rows, in chunks while messages are in flight
  void run_pack(const scheduler::Task& t);
  void run_unpack(const scheduler::Task& t);
  void run_copy_rows(const scheduler::Task& t);
  // f(parameter, begin, end) for each parameter's elements [begin, end) inside t's gradient range
  // [grad_begin, grad_end) (a bucket or an optimizer update; scheduler::Plan::grad_offset).
  void for_each_part(const scheduler::Task& t,
                     const std::function<void(std::size_t, std::int64_t, std::int64_t)>& f) const;
  // Copies bucket t's gradient elements between the parameters and flat_grads_ (to_flat: into it).
  void copy_bucket(const scheduler::Task& t, bool to_flat);
  // Copies a bucket's gradients into flat_grads_ and posts their all-reduce (-1 on one rank).
  int post_allreduce(const scheduler::Task& t);

  // The arguments of the run in progress (null outside run()).
  struct RunArgs {
    const std::vector<Param<float>*>* params = nullptr;
    Adam<float>* adam = nullptr;
    const Features<float>* x = nullptr;
    const DropoutKey* key = nullptr;
    const LossInputs* loss = nullptr;
  };
  RunArgs args_;
  const scheduler::Plan& plan_;
  const graph::LocalPartition& part_;
  const Aggregation& agg_;
  Communicator& comm_;
  // Points buf_ and msg_ at the workspace's arena (a no-op without one).
  void bind_workspace();
  scheduler::MemoryLayout memory_;
  Workspace* workspace_ = nullptr;
  std::vector<Matrix<float>> buffers_;  // owned non-persistent buffers (no workspace)
  std::vector<MatrixView<float>> buf_;  // every buffer by plan id (arena, owned or persistent)
  std::vector<std::uint8_t*> msg_;      // every message slot by plan id (arena or messages_)
  bool sampled_ = false;                // the plan has sampled row sets
  bool sample_given_ = false;
  std::vector<std::vector<std::uint8_t>> messages_;  // owned message slots (no workspace)
  std::vector<std::int64_t> local_global_;           // local row (inner, then halo) -> global node id
  std::vector<std::vector<std::uint8_t>> masks_;     // per buffer: dropout mask (when a backward needs it)
  std::vector<bool> mask_needed_;
  graph::Csr dropped_features_;               // this step's dropped sparse features (storage reused)
  std::vector<std::uint8_t> kept_;            // dropout_sparse's per-entry mask (storage reused)
  const graph::Csr* sparse_input_ = nullptr;  // dropped_features_, or the features when not dropped
  // X[0:dw_rows_]^T of the sparse input the weight gradient reads (dW = X^T G as a gather), made
  // once for constant features and after each step's dropout (storage reused); dw_rows_: the
  // plan's spmm_features_t rows (-1: none). Valid while input_t_of_, its index storage and nnz match.
  graph::Csr input_t_;
  const graph::Csr* input_t_of_ = nullptr;
  const graph::NodeId* input_t_data_ = nullptr;
  std::int64_t input_t_nnz_ = -1;
  std::int64_t dw_rows_ = -1;
  const graph::Csr& transposed_input(const graph::Csr& xs, std::int64_t rows);
  // The first layer's sparse input of this step (the features' dropout task sets it).
  const graph::Csr& sparse_input(const Features<float>& x) const { return sparse_input_ ? *sparse_input_ : x.sparse; }
  std::vector<int> request_;                           // per task: communicator request of a send / recv, or -1
  std::vector<std::vector<graph::NodeId>> task_rows_;  // pack / unpack: local rows in message order
  bool collect_ = false;
  std::vector<double>* trace_ = nullptr;
  std::vector<std::vector<float>> ranges_;  // per pack task
  QuantStats quant_stats_;
  std::map<std::pair<int, int>, QuantStats> quant_by_layer_;
  std::vector<float> scratch_;
  double drift_sq_ = 0, norm_sq_ = 0;      // this run's stale-store drift (StepTimes)
  std::vector<float> flat_grads_;          // every parameter gradient, in plan order (the buckets' storage)
  std::vector<std::int64_t> grad_offset_;  // per parameter: its first element in flat_grads_; then the total
  int first_update_ = -1;                  // the plan's first optimizer task: it starts the step
  StepDriver driver_;
};

}  // namespace adaqp::engine
