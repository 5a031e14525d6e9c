#include "scheduler/plan_builder.hpp"

#include <stdexcept>

#include "base/error.hpp"
#include "scheduler/wire_format.hpp"

namespace adaqp::scheduler {

PlanBuilder::PlanBuilder(const graph::PartitionShape& part, const ModelShape& m, Strategy s, bool training, Width width,
                         const BitAssignment* assignment, const PeerOptions& peers)
    : part_(part),
      m_(m),
      strategy_(s),
      width_(training ? width : Width::fp32()),
      assignment_(training ? assignment : nullptr),
      peers_(training ? peers : PeerOptions{}),
      n_(part.num_inner()),
      nl_(part.num_local()) {
  if (!width.valid()) throw Error("--bits " + width_name(width) + ": allowed " + kWidthsAllowed);
  check_peers(peers_, s == Strategy::overlap ? Mode::overlap : Mode::vanilla, false);
  if (peers_.sampled() && assignment_) throw Error("adaptive widths with boundary sampling: not supported");
  plan_.rank = part.rank;
  plan_.ranks = part.parts;
  plan_.strategy = s;
  plan_.training = training;
  plan_.width = width_;
  // Non-zeros of the aggregation operator and its transpose by column class.
  nnz_to_halo_ = part.nnz_to_halo;
  nnz_to_inner_ = part.nnz_central + part.nnz_marginal - part.nnz_to_halo;
  self_loops_ = m.sage ? 0 : 1;
}

Plan PlanBuilder::build() {
  if (m_.layers() < 1) throw Error("scheduler: the model has no layer");
  if (m_.sparse_input && !m_.transform_first(0))
    throw Error("scheduler: sparse input features need a transform-first first layer");
  declare_params();
  int prev = -1;  // task producing the previous layer's output
  for (int l = 0; l < m_.layers(); ++l) prev = forward_layer(l, prev);
  plan_.logits_buffer = out_[m_.layers() - 1];
  if (plan_.training) backward(prev);
  emit_deferred_unpacks();
  return std::move(plan_);
}

PlanBuilder::Layer PlanBuilder::layer(int l) const {
  Layer y;
  y.l = l;
  y.in = m_.dims[l];
  y.out = m_.dims[l + 1];
  y.tf = m_.transform_first(l);
  y.sparse = l == 0 && m_.sparse_input;
  y.last = l + 1 == m_.layers();
  y.w = m_.param_index(l, 0);
  y.w_self = m_.param_index(l, 1);
  y.bias = m_.param_index(l, m_.sage ? 2 : 1);
  y.prefix = "layer" + std::to_string(l) + ".";
  return y;
}

// ---- declarations --------------------------------------------------------------------------
int PlanBuilder::buffer(const std::string& name, std::int64_t rows, std::int64_t cols, bool persistent) {
  plan_.buffers.push_back({name, rows, cols, persistent});
  return int(plan_.buffers.size()) - 1;
}

int PlanBuilder::message(int peer, std::int64_t bytes, bool outgoing) {
  plan_.messages.push_back({peer, bytes, outgoing});
  return int(plan_.messages.size()) - 1;
}

int PlanBuilder::add(Task t) {
  t.id = int(plan_.tasks.size());
  plan_.tasks.push_back(std::move(t));
  return plan_.tasks.back().id;
}

void PlanBuilder::declare_params() {
  for (int l = 0; l < m_.layers(); ++l) {
    const std::string pre = "layer" + std::to_string(l) + ".";
    plan_.params.push_back({pre + (m_.sage ? "w_neigh" : "weight"), m_.dims[l], m_.dims[l + 1]});
    if (m_.sage) plan_.params.push_back({pre + "w_self", m_.dims[l], m_.dims[l + 1]});
    plan_.params.push_back({pre + "bias", 1, m_.dims[l + 1]});
  }
}

// ---- sizes ---------------------------------------------------------------------------------
std::int64_t PlanBuilder::fwd_nnz(std::int64_t b, std::int64_t e) const {
  const std::int64_t nc = part_.num_central;
  std::int64_t nnz = 0;
  if (b == 0 && e == n_)
    nnz = part_.nnz_central + part_.nnz_marginal;
  else if (b == 0 && e == nc)
    nnz = part_.nnz_central;
  else if (b == nc && e == n_)
    nnz = part_.nnz_marginal;
  else
    throw std::logic_error("scheduler: SpMM over rows that are not a row class");
  return nnz + self_loops_ * (e - b);
}

std::int64_t PlanBuilder::halo_offset(int q) const {
  std::int64_t o = 0;
  for (int p = 0; p < q; ++p) o += halo_rows(p);
  return o;
}

std::int64_t PlanBuilder::send_offset(int q) const {
  std::int64_t o = 0;
  for (int p = 0; p < q; ++p) o += p == part_.rank ? 0 : send_rows(p);
  return o;
}

bool PlanBuilder::drop_after(int l) const {
  return plan_.training && m_.dropout > 0 && m_.exchange_inputs && l > 0 && !m_.transform_first(l);
}

bool PlanBuilder::local_first_layer(int l) const {
  return l == 0 && !peers_.sampled() && nl_ > n_ && (!m_.transform_first(0) || m_.exchange_inputs);
}

// ---- task primitives -----------------------------------------------------------------------
namespace {
std::string tag_name(int l, Direction d) {
  if (l < 0) return "";
  std::string s = "L";
  s += std::to_string(l);
  s += d == Direction::forward ? " fwd " : " bwd ";
  return s;
}
}  // namespace

Task PlanBuilder::task(TaskKind kind, int l, Direction d, std::vector<int> deps, const std::string& what) const {
  Task t;
  t.kind = kind;
  t.lane =
      (kind == TaskKind::send || kind == TaskKind::recv || kind == TaskKind::allreduce) ? Lane::comm : Lane::compute;
  t.layer = l;
  t.dir = d;
  t.deps = std::move(deps);
  t.label = tag_name(l, d) + what;
  return t;
}

int PlanBuilder::spmm(int l, Direction d, std::vector<int> deps, int src, int dst, std::int64_t cols, std::int64_t b,
                      std::int64_t e, bool transpose, const std::string& what) {
  Task t = task(TaskKind::spmm, l, d, std::move(deps), what);
  t.src = buf(src);
  t.dst = buf(dst);
  t.rows = e - b;
  t.cols = cols;
  t.row_sel = {RowSet::range, b, e, -1};
  t.transpose_matrix = transpose;
  t.inner = transpose ? n_ : nl_;  // rows of the dense operand (columns of the sparse matrix)
  if (!transpose) {
    t.nnz = fwd_nnz(b, e);
  } else {  // rows of the transpose: inner rows [0, n) and halo rows [n, nl)
    t.nnz = (b < n_ ? nnz_to_inner_ + self_loops_ * n_ : 0) + (e > n_ ? nnz_to_halo_ : 0);
  }
  t.bytes = (t.nnz * (8 + cols * 4)) + t.rows * cols * 4;
  return add(std::move(t));
}

int PlanBuilder::gemm(int l, Direction d, std::vector<int> deps, Operand a, bool ta, Operand b, bool tb, Operand c,
                      std::int64_t m, std::int64_t n, std::int64_t k, bool accumulate, const std::string& what) {
  Task t = task(TaskKind::gemm, l, d, std::move(deps), what);
  t.src = a;
  t.src2 = b;
  t.dst = c;
  t.trans_a = ta;
  t.trans_b = tb;
  t.rows = m;
  t.cols = n;
  t.inner = k;
  t.accumulate = accumulate;
  return add(std::move(t));
}

}  // namespace adaqp::scheduler
