// The backward pass in the plan builder (plan_builder.hpp): the loss gradient, each layer's
// parameter and input gradients in reverse order (with the exchanges of halo-row gradients), the
// gradient all-reduce and the optimizer step.
#include <algorithm>
#include <stdexcept>

#include "scheduler/plan_builder.hpp"

namespace adaqp::scheduler {

void PlanBuilder::backward(int loss_after) {
  std::vector<std::vector<int>> grad_tasks(std::size_t(m_.layers()));  // per layer: its parameter gradients
  std::vector<int> reduces;                                            // the buckets' all-reduce tasks
  const bool first_first = first_bucket_first();
  held_params_.assign(std::size_t(m_.layers()), {});
  early_buckets_.clear();
  first_reduced_ = 0;
  Grad g = loss_gradient(loss_after);
  for (int l = m_.layers() - 1; l >= 0; --l) {
    defer_params_ = first_first && l > 0;
    g = backward_layer(layer(l), g, grad_tasks[std::size_t(l)]);
    if (peers_.overlap_allreduce && !defer_params_) reduces.push_back(allreduce_bucket(l, grad_tasks[std::size_t(l)]));
  }
  defer_params_ = false;
  // first_first: the first layer's bucket is in flight; now the upper layers' parameter gradients,
  // each layer's bucket posted once they are made (layer 1 first: what the next forward needs first).
  for (int l = 1; first_first && l < m_.layers(); ++l) {
    for (auto& make : held_params_[std::size_t(l)]) make();
    reduces.push_back(allreduce_bucket(l, grad_tasks[std::size_t(l)]));
  }
  held_params_.clear();
  reduces.insert(reduces.end(), early_buckets_.begin(), early_buckets_.end());
  if (!peers_.overlap_allreduce)
    for (int l = m_.layers() - 1; l >= 0; --l) reduces.push_back(allreduce_bucket(l, grad_tasks[std::size_t(l)]));
  optimizer_step(reduces);
}

PlanBuilder::Grad PlanBuilder::loss_gradient(int loss_after) {
  const int layers = m_.layers();
  const int g_logits = buffer("logits.grad", n_, m_.dims[layers]);
  Task lt = task(TaskKind::loss, layers - 1, B, {loss_after}, "softmax cross-entropy");
  lt.src = buf(out_[layers - 1]);
  lt.dst = buf(g_logits);
  lt.rows = n_;
  lt.cols = m_.dims[layers];
  return {g_logits, add(std::move(lt))};
}

PlanBuilder::Grad PlanBuilder::backward_layer(const Layer& y, Grad g, std::vector<int>& grad_tasks) {
  const int l = y.l;
  if (!y.last) {  // through the ReLU of the layer's output
    Task t = task(TaskKind::act_backward, l, B, {g.ready}, "relu'");
    t.src = buf(out_[l]);
    t.dst = buf(g.buffer);
    t.rows = n_;
    t.cols = y.out;
    g.ready = add(std::move(t));
  }
  param_task(
      l,
      [this, l, y, g] {
        Task bg = task(TaskKind::bias_grad, l, B, {g.ready}, "bias grad");
        bg.src = buf(g.buffer);
        bg.dst = grad(y.bias);
        bg.rows = n_;
        bg.cols = y.out;
        return add(std::move(bg));
      },
      grad_tasks);
  const bool need_dx = l > 0;
  const int gin = need_dx ? buffer(y.prefix + "input.grad", y.tf ? n_ : nl_, y.in) : -1;
  std::vector<int> gin_done =
      y.tf ? backward_transform_first(y, g, gin, grad_tasks) : backward_aggregate_first(y, g, gin, grad_tasks);
  if (m_.sage) {
    param_task(
        l, [this, y, g] { return param_gradient(y, g.buffer, y.w_self, {g.ready}, "dW_self=X^T*G", n_); }, grad_tasks);
    if (need_dx && y.tf)
      gin_done = {gemm(l, B, gin_done, buf(g.buffer), false, value(y.w_self), true, buf(gin), n_, y.in, y.out, true,
                       "+G*W_self^T")};
  }
  if (!need_dx) return g;
  // The gradient of the previous layer's output.
  const int prev_gout = buffer("layer" + std::to_string(l - 1) + ".output.grad", n_, y.in);
  if (drop_after(l)) {
    // Already through the dropout: the inner rows are the previous layer's output gradient.
    Task c = task(TaskKind::copy_rows, l, B, gin_done, "inner rows");
    c.src = buf(gin);
    c.dst = buf(prev_gout);
    c.rows = n_;
    c.cols = y.in;
    c.row_sel = {RowSet::range, 0, n_, -1};
    return {prev_gout, add(std::move(c))};
  }
  // Through this layer's input dropout.
  return {prev_gout, dropout_backward(l, gin_done, gin, prev_gout, n_, y.in, "dropout'")};
}

// The output gradient G through the aggregation into the transformed rows' gradient (its halo rows
// sent back to their owners), then dW = X^T G and dX = G W^T.
std::vector<int> PlanBuilder::backward_transform_first(const Layer& y, const Grad& g, int gin,
                                                       std::vector<int>& grad_tasks) {
  const int l = y.l;
  const int gmid = buffer(y.prefix + "transformed.grad", nl_, y.out);
  if (local_first_layer(l)) {
    // The halo rows were transformed here, so their gradients stay here: dW over every
    // local row equals, summed over ranks, the owners' dW after a backward exchange.
    const int all = spmm(l, B, {g.ready}, g.buffer, gmid, y.out, 0, nl_, true, "A^T*[all]");
    param_task(
        l, [this, y, gmid, all] { return weight_gradient(y, gmid, {all}, "dW=X^T*G[inner+halo]", nl_); }, grad_tasks);
    return {};
  }
  const auto final_rows = aggregate_backward(l, {g.ready}, g.buffer, gmid, y.out, nullptr);
  param_task(
      l, [this, y, gmid, final_rows] { return weight_gradient(y, gmid, final_rows, "dW=X^T*G", n_); }, grad_tasks);
  if (gin < 0) return {};
  return {gemm(l, B, final_rows, buf(gmid), false, value(y.w), true, buf(gin), n_, y.in, y.out, false, "dX=G*W^T")};
}

// dW = M^T G with M the aggregated input, then dM = G W^T through the transposed aggregation into
// the input gradient (halo-row gradients sent back to their owners).
std::vector<int> PlanBuilder::backward_aggregate_first(const Layer& y, const Grad& g, int gin,
                                                       std::vector<int>& grad_tasks) {
  const int l = y.l;
  param_task(
      l,
      [this, l, y, g] {
        return gemm(l, B, {g.ready}, buf(mid_[l]), true, buf(g.buffer), false, grad(y.w), y.in, y.out, n_, false,
                    "dW=M^T*G");
      },
      grad_tasks);
  if (gin < 0) return {};
  const int gmid = buffer(y.prefix + "aggregated.grad", n_, y.in);
  const int gm =
      gemm(l, B, {g.ready}, buf(g.buffer), false, value(y.w), true, buf(gmid), n_, y.in, y.out, false, "dM=G*W^T");
  std::function<std::vector<int>(int)> self_term;
  if (m_.sage)
    self_term = [this, l, y, gin, g](int inner) {
      return std::vector<int>{gemm(l, B, {inner, g.ready}, buf(g.buffer), false, value(y.w_self), true, buf(gin), n_,
                                   y.in, y.out, true, "+G*W_self^T")};
    };
  if (!drop_after(l)) return aggregate_backward(l, {gm}, gmid, gin, y.in, self_term);
  // The layer dropped all its rows after the exchange (forward_aggregate_first): the gradients of
  // the halo rows go back through that mask before they travel, and the received ones (gradients
  // of undropped rows) are added after this rank's own mask.
  if (strategy_ != Strategy::vanilla)
    throw std::logic_error("scheduler: inputs exchanged before dropout need the vanilla schedule");
  const int all = spmm(l, B, {gm}, gmid, gin, y.in, 0, nl_, true, "A^T*[all]");
  const int dropped = dropout_backward(l, self_term ? self_term(all) : std::vector<int>{all}, gin, gin, nl_, y.in,
                                       "dropout'[all rows]");
  std::vector<int> done = finish_exchange(post_exchange(l, B, gin, y.in, {dropped}), {dropped});
  done.push_back(dropped);
  return done;
}

int PlanBuilder::param_gradient(const Layer& y, int g_buf, int param, std::vector<int> deps, const std::string& what,
                                std::int64_t rows) {
  const Operand x = y.l == 0 ? x0_ : buf(in_[y.l]);
  if (y.sparse) {
    Task t = task(TaskKind::spmm_features_t, y.l, B, std::move(deps), what);
    t.src = buf(g_buf);
    t.src2 = x;
    t.dst = grad(param);
    t.rows = y.in;
    t.cols = y.out;
    t.inner = rows;
    t.nnz = n_ > 0 ? std::int64_t(double(m_.feature_nnz) * (m_.dropout > 0 ? 1.0 - m_.dropout : 1.0) * double(rows) /
                                  double(n_))
                   : 0;
    return add(std::move(t));
  }
  return gemm(y.l, B, std::move(deps), x, true, buf(g_buf), false, grad(param), y.in, y.out, rows, false, what);
}

int PlanBuilder::weight_gradient(const Layer& y, int g_buf, std::vector<int> deps, const std::string& what,
                                 std::int64_t rows) {
  const int blocks = weight_blocks(y);
  if (blocks < 2) return param_gradient(y, g_buf, y.w, std::move(deps), what, rows);
  // Row blocks of dW = X^T G, each but the last reduced as soon as it is made; the last block is
  // reduced with the layer's other parameters (allreduce_bucket).
  const std::int64_t per = (y.in + blocks - 1) / blocks;
  const std::int64_t w_begin = plan_.grad_offset(std::size_t(y.w));
  int last = -1;
  for (std::int64_t r0 = 0; r0 < y.in; r0 += per) {
    const std::int64_t r1 = std::min(y.in, r0 + per);
    last = param_gradient(y, g_buf, y.w, deps, what + "[rows " + std::to_string(r0) + ".." + std::to_string(r1) + "]",
                          rows);
    Task& t = plan_.tasks[std::size_t(last)];
    t.row_sel = {RowSet::range, r0, r1, -1};
    t.nnz = t.nnz * (r1 - r0) / y.in;  // the block's share of the features' non-zeros
    t.rows = r1 - r0;
    if (r1 == y.in) break;
    early_buckets_.push_back(allreduce_range(y.l, {last}, w_begin + r0 * y.out, w_begin + r1 * y.out));
    first_reduced_ = r1 * y.out;
  }
  return last;
}

int PlanBuilder::weight_blocks(const Layer& y) const {
  if (y.l != 0 || !y.sparse || !first_bucket_first()) return 1;
  return int(std::min<std::int64_t>(kMaxWeightBlocks, y.in * y.out / kWeightBlockElems));
}

std::vector<int> PlanBuilder::aggregate_backward(int l, const std::vector<int>& ready, int src, int dst,
                                                 std::int64_t cols,
                                                 const std::function<std::vector<int>(int)>& then_inner) {
  auto finish = [&](const Pending& pend, int inner) {
    const auto extra = then_inner ? then_inner(inner) : std::vector<int>{inner};
    auto done = finish_exchange(pend, extra);
    done.insert(done.end(), extra.begin(), extra.end());
    return done;
  };
  if (strategy_ == Strategy::vanilla) {
    const int all = spmm(l, B, ready, src, dst, cols, 0, nl_, true, "A^T*[all]");
    return finish(post_exchange(l, B, dst, cols, {all}), all);
  }
  // Halo-row gradients first, sent while the inner rows are aggregated.
  std::vector<int> halo_ready = ready;
  if (nl_ > n_) halo_ready = {spmm(l, B, ready, src, dst, cols, n_, nl_, true, "A^T*[halo]")};
  const Pending pend = post_exchange(l, B, dst, cols, halo_ready);
  return finish(pend, spmm(l, B, ready, src, dst, cols, 0, n_, true, "A^T*[inner]"));
}

int PlanBuilder::dropout_backward(int l, std::vector<int> deps, int src, int dst, std::int64_t rows, std::int64_t cols,
                                  const std::string& what) {
  Task db = task(TaskKind::dropout_backward, l, B, std::move(deps), what);
  db.src = buf(src);
  db.src2 = buf(in_[l]);
  db.dst = buf(dst);
  db.rows = rows;
  db.cols = cols;
  db.dropout = m_.dropout;
  return add(std::move(db));
}

// The fp32 all-reduce of layer l's parameter gradients (its bucket: the layer's parameters, which
// are consecutive in Plan::params), after the tasks that produce them.
int PlanBuilder::allreduce_bucket(int l, const std::vector<int>& grad_tasks) {
  const int per_layer = m_.sage ? 3 : 2;
  const int first = m_.param_index(l, 0);
  return allreduce_range(l, grad_tasks, plan_.grad_offset(std::size_t(first)) + (l == 0 ? first_reduced_ : 0),
                         plan_.grad_offset(std::size_t(first + per_layer)));
}

int PlanBuilder::allreduce_range(int l, std::vector<int> deps, std::int64_t begin, std::int64_t end) {
  Task ar = task(TaskKind::allreduce, l, B, std::move(deps), "all-reduce gradients");
  ar.grad_begin = begin;
  ar.grad_end = end;
  ar.rows = end - begin;
  ar.bytes = ar.rows * 4;
  return add(std::move(ar));
}

bool PlanBuilder::first_bucket_first() const {
  if (!peers_.overlap_allreduce || m_.layers() < 2) return false;
  const int per_layer = m_.sage ? 3 : 2;
  std::int64_t first = 0, rest = 0;
  for (int p = 0; p < int(plan_.params.size()); ++p)  // layer 0's parameters come first
    (p < per_layer ? first : rest) += plan_.params[std::size_t(p)].rows * plan_.params[std::size_t(p)].cols;
  return first > rest;
}

void PlanBuilder::param_task(int l, std::function<int()> make, std::vector<int>& grad_tasks) {
  if (!defer_params_) {
    grad_tasks.push_back(make());
    return;
  }
  held_params_[std::size_t(l)].push_back([make = std::move(make), &grad_tasks] { grad_tasks.push_back(make()); });
}

// The optimizer step. --allreduce after: one update of every parameter once every bucket is
// reduced. overlap: one update per bucket, after the backward pass in the order the buckets were
// posted (the order they complete), each waiting only for its own bucket; the first one in the
// list also starts the step (Adam::begin_step).
void PlanBuilder::optimizer_step(const std::vector<int>& reduces) {
  auto update = [this](std::vector<int> deps, std::int64_t begin, std::int64_t end, const std::string& what) {
    Task opt = task(TaskKind::optimizer, -1, Direction::none, std::move(deps), what);
    opt.grad_begin = begin;
    opt.grad_end = end;
    opt.rows = end - begin;
    opt.label = what;
    add(std::move(opt));
  };
  if (!peers_.overlap_allreduce) {
    update(reduces, 0, plan_.grad_offset(plan_.params.size()), "optimizer step");
    return;
  }
  std::vector<int> posted = reduces;
  std::sort(posted.begin(), posted.end());  // list order = posting order
  for (int b : posted) {
    const Task& ar = plan_.tasks[std::size_t(b)];
    update({b}, ar.grad_begin, ar.grad_end,
           "optimizer step [" + std::to_string(ar.grad_begin) + ", " + std::to_string(ar.grad_end) + ")");
  }
}

}  // namespace adaqp::scheduler
