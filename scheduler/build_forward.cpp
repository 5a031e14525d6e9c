// One layer's forward pass in the plan builder (plan_builder.hpp): input dropout, the transform
// (X W) and the aggregation (A ·) in the order ModelShape::transform_first picks, bias and ReLU.
#include "scheduler/plan_builder.hpp"

namespace adaqp::scheduler {

int PlanBuilder::forward_layer(int l, int prev) {
  const Layer y = layer(l);
  // The first layer takes its halo rows from the rank's own copy of the features
  // (Plan::halo_features) when it aggregates first, and when it transforms first under
  // exchange_inputs (it computes X[halo] W itself: an exchanged X[halo] W is no cheaper to get
  // fresh, and a stale one would carry last epoch's W). Not under boundary sampling, whose
  // estimator drops halo rows.
  const bool local_x = local_first_layer(l);
  if (local_x) plan_.halo_features = true;
  const int in_buf = buffer(y.prefix + "input", y.tf && !local_x ? n_ : nl_, y.in);
  in_.push_back(in_buf);
  const Input x = layer_input(y, prev, in_buf, local_x);
  if (l == 0) x0_ = x.x;
  const int out_buf = buffer(y.prefix + "output", n_, y.out);
  out_.push_back(out_buf);
  std::vector<int> done =
      y.tf ? forward_transform_first(y, x, out_buf, local_x) : forward_aggregate_first(y, x, in_buf, out_buf, local_x);
  if (m_.sage) done = {times_weight(y, x.x, y.w_self, buf(out_buf), true, done, "+X*W_self", 0, n_)};
  Task ba = task(TaskKind::bias_act, l, F, done, y.last ? "+bias" : "+bias, relu");
  ba.src = value(y.bias);
  ba.dst = buf(out_buf);
  ba.rows = n_;
  ba.cols = y.out;
  ba.relu = !y.last;
  return add(std::move(ba));
}

// Layer input: dropout (training) of the previous output or the features into the input buffer
// (or into the dropped sparse features), a copy without dropout, or the sparse features themselves.
PlanBuilder::Input PlanBuilder::layer_input(const Layer& y, int prev, int in_buf, bool local_x) {
  Input x{y.l == 0 ? Operand{Operand::features, 0} : buf(out_[y.l - 1]),
          prev >= 0 ? std::vector<int>{prev} : std::vector<int>{}};
  const bool drop = plan_.training && m_.dropout > 0;
  const bool after = drop_after(y.l);  // dropout comes after the exchange (forward_aggregate_first)
  if (!drop && y.sparse) return x;
  Task t = task(TaskKind::dropout, y.l, F, x.ready, drop && !after ? "dropout" : "copy");
  t.src = x.x;
  t.dst = y.sparse ? Operand{Operand::features, 1} : buf(in_buf);
  t.rows = local_x ? nl_ : n_;
  t.cols = y.in;
  t.nnz = y.sparse ? m_.feature_nnz : 0;
  t.dropout = drop && !after ? m_.dropout : 0.0;
  x.ready = {add(std::move(t))};
  x.x = y.sparse ? Operand{Operand::features, 1} : buf(in_buf);
  return x;
}

int PlanBuilder::times_weight(const Layer& y, const Operand& x, int param, Operand dst, bool acc, std::vector<int> deps,
                              const std::string& what, std::int64_t b, std::int64_t e) {
  if (y.sparse) {
    const double keep = plan_.training && m_.dropout > 0 ? 1.0 - m_.dropout : 1.0;
    Task t = task(TaskKind::spmm_features, y.l, F, std::move(deps), what);
    t.src = x;
    t.src2 = value(param);
    t.dst = dst;
    t.rows = e - b;
    t.cols = y.out;
    t.inner = y.in;
    t.nnz = n_ > 0 ? std::int64_t(double(m_.feature_nnz) * keep * double(e - b) / double(n_)) : 0;
    t.accumulate = acc;
    t.row_sel = {RowSet::range, b, e, -1};
    return add(std::move(t));
  }
  const int id = gemm(y.l, F, std::move(deps), x, false, value(param), false, dst, e - b, y.out, y.in, acc, what);
  plan_.tasks[id].row_sel = {RowSet::range, b, e, -1};
  return id;
}

// X W into the transformed buffer (every local row), then the aggregation of its rows into the
// output. Overlap: the marginal rows peers need are transformed and sent first, the central rows
// transformed and aggregated while the messages travel.
std::vector<int> PlanBuilder::forward_transform_first(const Layer& y, const Input& x, int out_buf, bool local_x) {
  const int mid = buffer(y.prefix + "transformed", nl_, y.out);
  mid_.push_back(mid);
  if (local_x) {  // every local row transformed here: no exchange
    const int xw = times_weight(y, x.x, y.w, buf(mid), false, x.ready, "X*W[inner+halo]", 0, nl_);
    return {spmm(y.l, F, {xw}, mid, out_buf, y.out, 0, n_, false, "A*[all]")};
  }
  if (strategy_ == Strategy::overlap) {
    const std::int64_t nc = part_.num_central;
    const int xw_m = times_weight(y, x.x, y.w, buf(mid), false, x.ready, "X*W[marginal]", nc, n_);
    const Pending pend = post_exchange(y.l, F, mid, y.out, {xw_m});
    const int xw_c = times_weight(y, x.x, y.w, buf(mid), false, x.ready, "X*W[central]", 0, nc);
    const int central = spmm(y.l, F, {xw_c, xw_m}, mid, out_buf, y.out, 0, nc, false, "A*[central]");
    std::vector<int> after = {xw_c, xw_m};
    for (int u : finish_exchange(pend, {})) after.push_back(u);
    return {central, spmm(y.l, F, after, mid, out_buf, y.out, nc, n_, false, "A*[marginal]")};
  }
  const int xw = times_weight(y, x.x, y.w, buf(mid), false, x.ready, "X*W", 0, n_);
  return aggregate(y.l, {xw}, mid, out_buf, y.out);
}

// The aggregation of the input rows (their halo rows exchanged, read locally, or exchanged before
// a dropout of every local row), then the GEMM with W into the output.
std::vector<int> PlanBuilder::forward_aggregate_first(const Layer& y, const Input& x, int in_buf, int out_buf,
                                                      bool local_x) {
  const int mid = buffer(y.prefix + "aggregated", n_, y.in);
  mid_.push_back(mid);
  std::vector<int> spmms;
  if (local_x) {
    spmms = {spmm(y.l, F, x.ready, in_buf, mid, y.in, 0, n_, false, "A*[all]")};
  } else if (drop_after(y.l)) {
    const Pending pend = post_exchange(y.l, F, in_buf, y.in, x.ready);
    std::vector<int> deps = finish_exchange(pend, {});
    deps.insert(deps.end(), x.ready.begin(), x.ready.end());
    deps.insert(deps.end(), pend.packs.begin(), pend.packs.end());  // they read the undropped rows
    Task t = task(TaskKind::dropout, y.l, F, deps, "dropout[all rows]");
    t.src = buf(in_buf);
    t.dst = buf(in_buf);
    t.rows = nl_;
    t.cols = y.in;
    t.dropout = m_.dropout;
    spmms = {spmm(y.l, F, {add(std::move(t))}, in_buf, mid, y.in, 0, n_, false, "A*[all]")};
  } else {
    spmms = aggregate(y.l, x.ready, in_buf, mid, y.in);
  }
  return {gemm(y.l, F, spmms, buf(mid), false, value(y.w), false, buf(out_buf), n_, y.out, y.in, false, "A*X*W")};
}

std::vector<int> PlanBuilder::aggregate(int l, const std::vector<int>& ready, int src, int dst, std::int64_t cols) {
  const auto unpacks = finish_exchange(post_exchange(l, F, src, cols, ready), {});
  std::vector<int> after = ready;
  after.insert(after.end(), unpacks.begin(), unpacks.end());
  if (strategy_ == Strategy::vanilla) return {spmm(l, F, after, src, dst, cols, 0, n_, false, "A*[all]")};
  const int central = spmm(l, F, ready, src, dst, cols, 0, part_.num_central, false, "A*[central]");
  const int marginal = spmm(l, F, after, src, dst, cols, part_.num_central, n_, false, "A*[marginal]");
  return {central, marginal};
}

}  // namespace adaqp::scheduler
