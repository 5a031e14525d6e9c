// The epoch plan: one rank's training step (or evaluation pass) as a DAG of tasks. Built by the
// scheduler only (scheduler/build_plan.hpp); executed for real by engine/executor and on cost
// models by the simulator. The plan is data: no MPI, CUDA or clock here.
//
// Conventions. Tasks are listed in a valid topological order (deps point to earlier tasks); the
// list order is the order a single compute lane issues them. A send or recv task only posts the
// operation; a task that depends on it waits for its completion. Sizes are in elements (rows,
// cols, nnz) and bytes; `width` is how a message's elements travel (scheduler/wire_format.hpp).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "scheduler/wire_format.hpp"

namespace adaqp::scheduler {

// Each kind reads its operands src (and src2) and writes dst (Task's operand fields).
enum class TaskKind {
  dropout,           // dst = dropout(src) over rows [0, rows), mask kept for dropout_backward
  gemm,              // dst (+)= op(src) op(src2): m = rows, n = cols, k = inner
  spmm,              // dst rows in row_sel (+)= M[rows] src, M = forward aggregation or its transpose;
                     // inner = rows of src (columns of M)
  spmm_features,     // dst (+)= X W with X = src, the sparse (dropped) input features, W = src2
  spmm_features_t,   // dst (+)= X^T G with G = src, X = src2 (parameter gradient of a sparse first layer)
  bias_act,          // dst += bias (param src); then ReLU if relu
  act_backward,      // dst *= [out > 0] with out = buffer src (ReLU derivative)
  bias_grad,         // dst (a parameter gradient) = column sums of buffer src
  dropout_backward,  // dst = src * mask(dropout that produced buffer src2) * 1/(1-p)
  pack,              // message slot <- rows row_sel of buffer src
  unpack,            // rows row_sel of buffer dst (+)= scale * message slot; with smoothing s (overwrite
                     // only): dst = s * dst + (1 - s) * scale * message
  copy_rows,         // rows row_sel of buffer dst (+)= rows [src_begin, src_begin + rows) of buffer src
                     // (zeros when src is none): moves stale stores in, clears dropped halo rows
  send,              // post a send of message slot to peer
  recv,              // post a receive of message slot from peer
  loss,              // softmax cross-entropy of logits src over training rows -> gradient dst
  allreduce,         // sum gradient elements [grad_begin, grad_end) over ranks (a bucket: one layer's
                     // parameters, or a row block of a large weight); posted without blocking, the
                     // optimizer waits for every bucket
  optimizer,         // optimizer update of gradient elements [grad_begin, grad_end) (every parameter under
                     // --allreduce after, one bucket's under overlap); the first in list order starts the step
};
enum class Lane { compute, comm };
enum class Direction { forward, backward, none };
enum class Strategy { vanilla, overlap };
// The paper's modes: vanilla (fp32, no overlap), quant (quantized, no overlap), overlap (fp32,
// overlap), adaqp (quantized and overlapped).
enum class Mode { vanilla, quant, overlap, adaqp };

const char* to_string(TaskKind k);
const char* to_string(Lane l);
const char* to_string(Direction d);
const char* to_string(Strategy s);
Strategy parse_strategy(const std::string& name);  // "vanilla" | "overlap"; throws adaqp::Error
Mode parse_mode(const std::string& name);          // "vanilla" | "quant" | "overlap" | "adaqp"
const char* to_string(Mode m);
inline Strategy strategy_of(Mode m) {
  return m == Mode::overlap || m == Mode::adaqp ? Strategy::overlap : Strategy::vanilla;
}
inline bool quantizes(Mode m) {
  return m == Mode::quant || m == Mode::adaqp;
}

// Rows of a buffer a task touches.
struct RowSet {
  enum Kind { all, range, send_list, halo } kind = all;
  std::int64_t begin = 0, end = 0;  // range: [begin, end)
  int peer = -1;                    // send_list: LocalPartition::send_rows[peer]; halo: rows owned by peer
  // send_list / halo: only this epoch's boundary sample of the list (scheduler/peers.hpp), in
  // list order; the executor is given the sample before each run.
  bool sampled = false;
};

// How a message's rows travel when they do not all use one width (adaptive assignment): the
// message holds the exchange's rows in `order` (positions into the row set; empty = as listed),
// cut into consecutive groups of group_rows[k] rows sent at width group_widths[k], each group in
// the wire format of its width, one after the other. Empty: every row at Task::width, as listed.
struct MessageLayout {
  std::vector<std::int32_t> order;
  std::vector<std::int64_t> group_rows;
  std::vector<Width> group_widths;
  bool empty() const { return group_rows.empty(); }
  bool operator==(const MessageLayout&) const = default;
};

struct Operand {
  enum Kind { none, buffer, features, param_value, param_grad } kind = none;
  int id = -1;  // buffer id or parameter index (features: the input feature matrix)
};

struct Task {
  int id = 0;
  TaskKind kind = TaskKind::gemm;
  Lane lane = Lane::compute;
  int layer = -1;
  Direction dir = Direction::none;
  std::vector<int> deps;
  // Sizes (what a cost model needs).
  std::int64_t rows = 0, cols = 0, inner = 0, nnz = 0, bytes = 0;
  int peer = -1;
  Width width;                  // pack / unpack / send / recv: wire width (fp32 by default; mixed: see layout)
  MessageLayout layout;         // pack / unpack: per-group widths when mixed
  std::int64_t meta_bytes = 0;  // metadata part of bytes (quantized messages)
  // Operands (what each kind reads and writes: TaskKind). The JSON dump names them a, b, c.
  Operand src, src2, dst;
  bool trans_a = false, trans_b = false, accumulate = false, relu = false;
  RowSet row_sel;
  bool transpose_matrix = false;  // spmm: use the aggregation's transpose
  int message = -1;               // pack / unpack / send / recv: message slot
  int tag = 0;
  double dropout = 0;
  std::int64_t src_begin = 0;  // copy_rows: first row of src
  double scale = 1;            // unpack: factor on the decoded rows (boundary sampling: b / s)
  double smoothing = 0;        // unpack: momentum of a stale store (0: the message replaces it)
  // allreduce: its bucket, elements [begin, end) of every parameter's gradient laid end to end in
  // Plan::params order (grad_offset), each row-major
  std::int64_t grad_begin = 0, grad_end = 0;
  bool measure_drift = false;  // unpack into a stale store: also measure the rows' drift
  std::string label;
};

// An unpack that decodes into scratch and then combines with its target rows: scaled (boundary
// sampling), smoothed (stale momentum) or measuring the drift of a stale store's rows
// (--stale-bound auto). The one rule for the engine (which path it takes) and the simulator (such
// an unpack costs one more pass over its rows: cost class "copy").
inline bool unpacks_via_scratch(const Task& t) {
  return t.kind == TaskKind::unpack && (t.scale != 1 || t.smoothing != 0 || t.measure_drift);
}

// Where a task's time goes in a step's accounting (docs/metrics.md): the gradient all-reduce is
// reduce_s (whatever its lane), packing / unpacking a message narrower than fp32 is quant_s, other
// compute-lane tasks are compute_s, posting a send or receive is comm_s (as is waiting for one,
// which no task owns). The one rule of the CPU and CUDA executors and the simulator.
enum class TimeBucket { compute, comm, quant, reduce };
TimeBucket time_bucket(const Task& t);
const char* to_string(TimeBucket b);
// Adds seconds to the field of `times` the bucket names (any struct with compute_s, comm_s,
// quant_s and reduce_s: engine::StepTimes, simulator::RankPrediction).
template <class Times>
void add_time(Times& times, TimeBucket b, double seconds) {
  switch (b) {
    case TimeBucket::compute:
      times.compute_s += seconds;
      break;
    case TimeBucket::comm:
      times.comm_s += seconds;
      break;
    case TimeBucket::quant:
      times.quant_s += seconds;
      break;
    case TimeBucket::reduce:
      times.reduce_s += seconds;
      break;
  }
}

struct BufferSpec {
  std::string name;
  std::int64_t rows = 0, cols = 0;
  // Kept across runs and plans (by name; zero when first made): the stale stores of pipelining.
  bool persistent = false;
};
struct MessageSpec {
  int peer = -1;
  std::int64_t bytes = 0;
  bool outgoing = true;
};
struct ParamSpec {
  std::string name;
  std::int64_t rows = 0, cols = 0;
};

struct Plan {
  int rank = 0, ranks = 1;
  Strategy strategy = Strategy::vanilla;
  bool training = true;
  Width width;  // width of the training exchanges (evaluation plans: fp32)
  std::vector<BufferSpec> buffers;
  std::vector<MessageSpec> messages;
  std::vector<ParamSpec> params;
  std::vector<Task> tasks;
  int logits_buffer = -1;  // n_inner x classes, output of the last layer
  // The features operand holds the rank's halo rows too (num_local rows: inner, then halo in halo
  // order). The first layer then reads its halo rows there instead of exchanging them: features
  // never change, and dropout masks depend only on global ids, so the rank computes exactly the
  // rows an owner would send. Aggregate-first, it aggregates them; transform-first (only when
  // exchanging inputs), it multiplies them by W too and keeps their gradients, dW = X^T G over
  // all num_local rows.
  bool halo_features = false;

  std::int64_t bytes_sent() const;  // sum of send tasks' bytes (payload + metadata)
  std::int64_t bytes_meta() const;  // metadata part of bytes_sent()
  // Where parameter p's gradient starts when every gradient is laid end to end in params order
  // (elements; p == params.size(): the total): the coordinates of all-reduce buckets.
  std::int64_t grad_offset(std::size_t p) const;
};

// Checks one plan: ids, dependency ranges, acyclicity, message slots, operand ids. Throws
// adaqp::Error with "plan of rank R: task T (...): ..." on the first problem.
void validate(const Plan& plan);
// Checks every plan, then that each rank's sends to a peer match that peer's receives from it,
// one for one in order, with the same tag and byte count.
void validate(const std::vector<Plan>& plans);

std::string to_json(const Plan& plan);  // pretty JSON
std::string to_dot(const Plan& plan);   // Graphviz digraph, one cluster per lane

}  // namespace adaqp::scheduler
