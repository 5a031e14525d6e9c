#include "simulator/cost_model.hpp"

#include <algorithm>
#include <cmath>

#include "base/error.hpp"
#include "scheduler/wire_format.hpp"

namespace adaqp::simulator {

using scheduler::Operand;
using scheduler::Task;
using scheduler::TaskKind;

const std::vector<CostClass>& cost_classes() {
  static const std::vector<CostClass> classes = [] {
    const std::vector<std::string> elems = {"calls", "elements_cached", "elements_l3", "elements_memory"};
    const std::vector<std::string> sparse = {"calls",         "rows_x_cols",      "nnz", "nnz_x_cols_cached",
                                             "nnz_x_cols_l3", "nnz_x_cols_memory"};
    const std::vector<std::string> gemm = {"calls", "mnk", "mn_mk_nk"};
    std::vector<CostClass> c = {
        {"gemm_nn", gemm},
        {"gemm_tn", gemm},
        {"gemm_nt", gemm},
        {"spmm", sparse},
        {"spmm_features", sparse},
        {"spmm_features_t", sparse},
        {"dropout", elems},
        {"dropout_sparse", {"calls", "nnz"}},
        {"copy", elems},
        {"bias_act", elems},
        {"act_backward", elems},
        {"bias_grad", elems},
        {"dropout_backward", elems},
        {"loss", {"calls", "elements"}},
        {"optimizer", {"calls", "elements"}},
    };
    for (const char* kind : {"pack", "unpack"})
      for (scheduler::Width w : kCalibratedWidths) c.push_back({kind + std::to_string(w.element_bits()), elems});
    return c;
  }();
  return classes;
}

std::array<double, 3> working_set_weights(double bytes) {
  const double x = std::log2(std::max(bytes, 1.0));
  const double lo = 18, mid = 22, hi = 26;  // 256 KiB, 4 MiB, 64 MiB
  if (x <= lo) return {1, 0, 0};
  if (x <= mid) return {(mid - x) / (mid - lo), (x - lo) / (mid - lo), 0};
  if (x <= hi) return {0, (hi - x) / (hi - mid), (x - mid) / (hi - mid)};
  return {0, 0, 1};
}

const CostClass* find_cost_class(const std::string& name) {
  for (const auto& c : cost_classes())
    if (c.name == name) return &c;
  return nullptr;
}

const CostClass& cost_class(const std::string& name) {
  const CostClass* c = find_cost_class(name);
  if (!c) throw Error("unknown cost class '" + name + "'");
  return *c;
}

namespace {
std::vector<double> split(double calls, double x, double ws_bytes, std::vector<double> head = {}) {
  const auto w = working_set_weights(ws_bytes);
  std::vector<double> f = {calls};
  f.insert(f.end(), head.begin(), head.end());
  for (double wi : w) f.push_back(x * wi);
  return f;
}
}  // namespace

std::pair<std::string, std::vector<double>> task_features(const Task& t) {
  const double rows = double(t.rows), cols = double(t.cols), inner = double(t.inner), nnz = double(t.nnz);
  const double elements = rows * cols;
  switch (t.kind) {
    case TaskKind::gemm:
      return {t.trans_a && !t.trans_b ? "gemm_tn" : (!t.trans_a && t.trans_b ? "gemm_nt" : "gemm_nn"),
              {1, rows * cols * inner, rows * cols + rows * inner + cols * inner}};
    case TaskKind::spmm:
      return {"spmm", split(1, nnz * cols, inner * cols * 4, {elements, nnz})};
    case TaskKind::spmm_features:
      return {"spmm_features", split(1, nnz * cols, inner * cols * 4, {elements, nnz})};
    case TaskKind::spmm_features_t:
      // a gather over X^T's rows: each non-zero reads a row of G (inner rows x cols)
      return {"spmm_features_t", split(1, nnz * cols, inner * cols * 4, {elements, nnz})};
    case TaskKind::dropout:
      if (t.dst.kind == Operand::features) {
        if (t.dropout > 0) return {"dropout_sparse", {1, nnz}};
        return {"copy", split(1, 0, 0)};  // the features are used as they are
      }
      return {t.dropout > 0 ? "dropout" : "copy", split(1, elements, elements * 8)};
    case TaskKind::bias_act:
      return {"bias_act", split(1, elements, elements * 4)};
    case TaskKind::act_backward:
      return {"act_backward", split(1, elements, elements * 8)};
    case TaskKind::bias_grad:
      return {"bias_grad", split(1, elements, elements * 4)};
    case TaskKind::dropout_backward:
      return {"dropout_backward", split(1, elements, elements * 9)};
    case TaskKind::pack:
    case TaskKind::unpack:
      return {std::string(t.kind == TaskKind::pack ? "pack" : "unpack") + std::to_string(t.width.element_bits()),
              split(1, elements, elements * 4)};
    case TaskKind::copy_rows:  // stale stores in, dropped halo rows cleared: a row copy
      return {"copy", split(1, elements, elements * 8)};
    case TaskKind::loss:
      return {"loss", {1, elements}};
    case TaskKind::optimizer:
      return {"optimizer", {1, rows}};
    case TaskKind::send:
    case TaskKind::recv:
    case TaskKind::allreduce:
      return {"", {}};
  }
  return {"", {}};
}

namespace {
double evaluate(const std::string& name, const std::vector<double>& f, const Profile& profile) {
  const auto it = profile.compute.find(name);
  if (it == profile.compute.end())
    throw Error("profile '" + profile.machine + "' has no cost class '" + name + "' (run adaqp calibrate)");
  double s = 0;
  for (std::size_t i = 0; i < f.size() && i < it->second.coef_s.size(); ++i) s += it->second.coef_s[i] * f[i];
  return s;
}
}  // namespace

double compute_seconds(const Task& t, const Profile& profile) {
  if (scheduler::unpacks_via_scratch(t)) {  // the decode, then one pass combining it with the target
    Task decode = t, combine = t;
    decode.scale = 1;
    decode.smoothing = 0;
    decode.measure_drift = false;
    decode.row_sel = {};
    combine.kind = TaskKind::copy_rows;
    combine.layout = {};
    const auto [name, f] = task_features(combine);
    return compute_seconds(decode, profile) + evaluate(name, f, profile);
  }
  if ((t.kind == TaskKind::pack || t.kind == TaskKind::unpack) && !t.layout.empty()) {
    double s = 0;
    for (std::size_t g = 0; g < t.layout.group_rows.size(); ++g) {
      Task one = t;
      one.layout = {};
      one.rows = t.layout.group_rows[g];
      one.width = t.layout.group_widths[g];
      if (one.rows == 0) continue;
      const auto [name, f] = task_features(one);
      s += evaluate(name, f, profile);
    }
    return s;
  }
  const auto [name, f] = task_features(t);
  if (name.empty()) return 0;
  return evaluate(name, f, profile);
}

}  // namespace adaqp::simulator
