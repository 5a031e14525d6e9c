// Internal to the scheduler: the class that writes one rank's plan (build_plan.hpp is the interface).
// Its parts live in files named for the step they build:
//   plan_builder.cpp   declarations (buffers, messages, parameters), the task primitives (GEMM,
//                      SpMM) and their sizes, the whole build;
//   build_exchange.cpp halo exchanges: posting receives, packing and sending, unpacking; the stale
//                      stores of pipelining; message widths and layouts;
//   build_forward.cpp  one layer's forward pass (input dropout, transform, aggregation, bias);
//   build_backward.cpp the loss gradient, one layer's backward pass, the all-reduce and the step.
// The order in which a builder adds tasks and buffers is the plan (tasks are listed in issue
// order), so a change of order is a change of every plan: scripts/plan_dumps.sh proves a
// refactoring leaves them unchanged.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "graph/partition.hpp"
#include "scheduler/adaptive.hpp"
#include "scheduler/build_plan.hpp"
#include "scheduler/peers.hpp"
#include "scheduler/plan.hpp"

namespace adaqp::scheduler {

class PlanBuilder {
 public:
  PlanBuilder(const graph::PartitionShape& part, const ModelShape& m, Strategy s, bool training, Width width,
              const BitAssignment* assignment, const PeerOptions& peers);
  Plan build();

 private:
  static constexpr Direction F = Direction::forward, B = Direction::backward;

  // One layer's sizes and parameters.
  struct Layer {
    int l = 0;
    std::int64_t in = 0, out = 0;  // input / output columns
    bool tf = false;               // transform first (ModelShape::transform_first)
    bool sparse = false;           // the first layer over sparse features
    bool last = false;
    int w = -1, w_self = -1, bias = -1;  // parameter indices (w_self: GraphSAGE only)
    std::string prefix;                  // "layerL." for buffer names
  };
  Layer layer(int l) const;

  // ---- declarations and primitives (plan_builder.cpp) -----------------------------------
  int buffer(const std::string& name, std::int64_t rows, std::int64_t cols, bool persistent = false);
  int message(int peer, std::int64_t bytes, bool outgoing);
  int add(Task t);  // appends t with the next id; returns it
  void declare_params();
  static Operand buf(int id) { return {Operand::buffer, id}; }
  static Operand value(int id) { return {Operand::param_value, id}; }
  static Operand grad(int id) { return {Operand::param_grad, id}; }
  Task task(TaskKind kind, int l, Direction d, std::vector<int> deps, const std::string& what) const;
  // dst rows [b, e) (+)= M[rows b..e) src; M = the aggregation or its transpose.
  int spmm(int l, Direction d, std::vector<int> deps, int src, int dst, std::int64_t cols, std::int64_t b,
           std::int64_t e, bool transpose, const std::string& what);
  // c (+)= op(a) op(b), m x n, inner k.
  int gemm(int l, Direction d, std::vector<int> deps, Operand a, bool ta, Operand b, bool tb, Operand c, std::int64_t m,
           std::int64_t n, std::int64_t k, bool accumulate, const std::string& what);
  // Non-zeros of forward operator rows [b, e): all inner rows, the central or the marginal ones.
  std::int64_t fwd_nnz(std::int64_t b, std::int64_t e) const;
  std::int64_t halo_rows(int q) const { return part_.halo_rows[std::size_t(q)]; }
  std::int64_t send_rows(int q) const { return part_.send_rows[std::size_t(q)]; }
  // First row of q's rows in the halo rows / in the concatenated send lists.
  std::int64_t halo_offset(int q) const;
  std::int64_t send_offset(int q) const;
  // Exchanging inputs (stale pipelining), from the second layer on, in training with dropout: the
  // rows travel before dropout and every rank drops all its local rows, halo rows included, with
  // this epoch's masks (PipeGCN's order: a stale row is dropped afresh, and its gradient goes back
  // through the mask that was applied to it).
  bool drop_after(int l) const;
  // Layer l reads its halo input rows from the rank's features instead of exchanging anything
  // (forward_layer).
  bool local_first_layer(int l) const;

  // ---- halo exchanges (build_exchange.cpp) ----------------------------------------------
  // Halo exchange of buffer `data` (cols columns) in direction d, in two steps.
  //   forward: rows send_rows[q] of `data` go to q; rows halo(q) of `data` come from q.
  //   backward: rows halo(q) go to q (gradients of q's rows); they are added into rows send_rows[q].
  // post_exchange posts every receive, then packs (after `ready`) and sends; finish_exchange
  // unpacks each received message once `after` is done too, and returns the unpack tasks (stale
  // pipelining: the tasks that read the store).
  struct Pending {
    int layer;
    Direction dir;
    int data;
    std::int64_t cols;
    std::vector<int> recv_task, recv_msg;
    int zero = -1;           // boundary sampling, forward: the task clearing the halo rows before the unpacks
    std::vector<int> packs;  // the pack tasks (they read `data`)
  };
  Pending post_exchange(int l, Direction d, int data, std::int64_t cols, const std::vector<int>& ready);
  std::vector<int> finish_exchange(const Pending& pend, const std::vector<int>& after);
  // Rows of the full boundary lists, and of this epoch's sample (boundary sampling).
  std::int64_t full_in(Direction d, int q) const { return d == F ? halo_rows(q) : send_rows(q); }
  std::int64_t full_out(Direction d, int q) const { return d == F ? send_rows(q) : halo_rows(q); }
  std::int64_t rows_in(Direction d, int q) const { return sampled_rows(full_in(d, q), peers_.boundary_rate); }
  std::int64_t rows_out(Direction d, int q) const { return sampled_rows(full_out(d, q), peers_.boundary_rate); }
  // Width, bytes and metadata bytes of one channel's message, and its layout when assigned.
  struct Wire {
    Width width;
    std::int64_t bytes, meta;
    const MessageLayout* layout;
  };
  Wire wire(int l, Direction d, int sender, int receiver, std::int64_t rows, std::int64_t cols) const;
  // A pack / unpack / send / recv task of one message: the fields they all share.
  Task message_task(TaskKind kind, int l, Direction d, std::vector<int> deps, const std::string& what, int peer,
                    std::int64_t rows, std::int64_t cols, const Wire& w, int msg) const;
  // Stale pipelining (see build_exchange.cpp).
  struct Deferred {
    Task unpack;
    std::vector<int> deps;
  };
  std::vector<int> finish_stale(const Pending& pend, const std::vector<int>& after);
  int stale_read(const Pending& pend, int store, int q, std::vector<int> deps);
  void emit_deferred_unpacks();

  // ---- forward (build_forward.cpp) ------------------------------------------------------
  // What a layer multiplies, and the tasks after which it is ready.
  struct Input {
    Operand x;
    std::vector<int> ready;
  };
  int forward_layer(int l, int prev);  // returns the task producing the layer's output
  Input layer_input(const Layer& y, int prev, int in_buf, bool local_x);
  std::vector<int> forward_transform_first(const Layer& y, const Input& x, int out_buf, bool local_x);
  std::vector<int> forward_aggregate_first(const Layer& y, const Input& x, int in_buf, int out_buf, bool local_x);
  // dst rows [b, e) (+)= X rows [b, e) times a weight (dense GEMM or sparse-feature product).
  int times_weight(const Layer& y, const Operand& x, int param, Operand dst, bool acc, std::vector<int> deps,
                   const std::string& what, std::int64_t b, std::int64_t e);
  // dst rows [0, n) = A src, with src's halo rows exchanged first. Returns the spmm task ids.
  std::vector<int> aggregate(int l, const std::vector<int>& ready, int src, int dst, std::int64_t cols);

  // ---- backward (build_backward.cpp) ----------------------------------------------------
  // A gradient buffer and the task after which it is complete.
  struct Grad {
    int buffer = -1, ready = -1;
  };
  void backward(int loss_after);
  Grad loss_gradient(int loss_after);
  // One layer's backward pass from the gradient of its output; returns the gradient of the
  // previous layer's output (unused after layer 0). Appends the parameter-gradient tasks.
  Grad backward_layer(const Layer& y, Grad g, std::vector<int>& grad_tasks);
  std::vector<int> backward_transform_first(const Layer& y, const Grad& g, int gin, std::vector<int>& grad_tasks);
  std::vector<int> backward_aggregate_first(const Layer& y, const Grad& g, int gin, std::vector<int>& grad_tasks);
  // grad(param) = X^T G over the first `rows` rows of the layer's input X and of G.
  int param_gradient(const Layer& y, int g_buf, int param, std::vector<int> deps, const std::string& what,
                     std::int64_t rows);
  // dst (nl rows) = A^T src (n rows); halo rows of dst go back to their owners and are added into
  // their send_list rows; rows [0, n) of dst get those contributions. Returns the tasks after which
  // dst rows [0, n) are final. `then_inner` runs after the inner-row spmm and before the unpacks.
  std::vector<int> aggregate_backward(int l, const std::vector<int>& ready, int src, int dst, std::int64_t cols,
                                      const std::function<std::vector<int>(int)>& then_inner);
  // dst rows [0, rows) = src rows through layer l's input dropout mask (src == dst: in place).
  int dropout_backward(int l, std::vector<int> deps, int src, int dst, std::int64_t rows, std::int64_t cols,
                       const std::string& what);
  // The weight gradient dW = X^T G of layer y (param_gradient), in weight_blocks(y) row blocks when
  // that is more than one. Returns the task making the last (or only) block.
  int weight_gradient(const Layer& y, int g_buf, std::vector<int> deps, const std::string& what, std::int64_t rows);
  // Row blocks of the first layer's weight gradient: with --allreduce overlap, when the first
  // layer's bucket is reduced first (first_bucket_first) and its input is sparse, blocks of at least
  // kWeightBlockElems elements (at most kMaxWeightBlocks), each all-reduced as soon as it is made
  // (its transfer then starts while the next block is computed); else 1.
  static constexpr std::int64_t kWeightBlockElems = std::int64_t(1) << 17;  // 512 KiB of fp32
  static constexpr int kMaxWeightBlocks = 8;
  int weight_blocks(const Layer& y) const;
  // Layer l's bucket: its parameters' gradients, less the rows of its weight already reduced in
  // blocks (first_reduced_), after the tasks that produce them.
  int allreduce_bucket(int l, const std::vector<int>& grad_tasks);
  // A bucket of gradient elements [begin, end) (Plan::grad_offset coordinates) after deps.
  int allreduce_range(int l, std::vector<int> deps, std::int64_t begin, std::int64_t end);
  void optimizer_step(const std::vector<int>& reduces);
  // --allreduce overlap, when the first layer's bucket holds more parameters than every other
  // bucket together: the layers above it make their parameter gradients (and post their buckets)
  // only after the first layer's bucket is posted, so that its transfer hides their compute
  // (otherwise it is produced last, when nothing is left to hide it behind). The same tasks on the
  // same inputs, in another list order: the sums are unchanged.
  bool first_bucket_first() const;
  // Adds a parameter-gradient task of layer l made by `make` to grad_tasks now or, while
  // defer_params_ is set, when backward() releases layer l's held tasks.
  void param_task(int l, std::function<int()> make, std::vector<int>& grad_tasks);

  const graph::PartitionShape& part_;
  ModelShape m_;
  Strategy strategy_;
  Width width_;
  const BitAssignment* assignment_;
  PeerOptions peers_;
  std::int64_t n_, nl_;             // inner rows, local rows (inner + halo)
  std::vector<Deferred> deferred_;  // stale pipelining: unpacks issued after the optimizer step
  std::vector<int> early_buckets_;  // all-reduce tasks of the first layer's weight row blocks
  std::int64_t first_reduced_ = 0;  // elements of the first layer's weight those blocks reduce
  bool defer_params_ = false;       // param_task: hold parameter-gradient tasks back (first_bucket_first)
  std::vector<std::vector<std::function<void()>>> held_params_;  // per layer: the held ones, in order
  std::int64_t nnz_to_inner_ = 0, nnz_to_halo_ = 0, self_loops_ = 0;
  Plan plan_;
  std::vector<int> in_, mid_, out_;  // per layer: input, intermediate and output buffers
  Operand x0_;  // what the first layer multiplied: its input buffer, or raw / dropped sparse features
};

}  // namespace adaqp::scheduler
