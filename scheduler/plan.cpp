#include "scheduler/plan.hpp"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>
#include <stdexcept>
#include <string>

#include "base/error.hpp"

namespace adaqp::scheduler {

const char* to_string(TaskKind k) {
  switch (k) {
    case TaskKind::dropout:
      return "dropout";
    case TaskKind::gemm:
      return "gemm";
    case TaskKind::spmm:
      return "spmm";
    case TaskKind::spmm_features:
      return "spmm_features";
    case TaskKind::spmm_features_t:
      return "spmm_features_t";
    case TaskKind::bias_act:
      return "bias_act";
    case TaskKind::act_backward:
      return "act_backward";
    case TaskKind::bias_grad:
      return "bias_grad";
    case TaskKind::dropout_backward:
      return "dropout_backward";
    case TaskKind::pack:
      return "pack";
    case TaskKind::unpack:
      return "unpack";
    case TaskKind::copy_rows:
      return "copy_rows";
    case TaskKind::send:
      return "send";
    case TaskKind::recv:
      return "recv";
    case TaskKind::loss:
      return "loss";
    case TaskKind::allreduce:
      return "allreduce";
    case TaskKind::optimizer:
      return "optimizer";
  }
  return "?";
}
TimeBucket time_bucket(const Task& t) {
  if (t.kind == TaskKind::allreduce) return TimeBucket::reduce;
  if ((t.kind == TaskKind::pack || t.kind == TaskKind::unpack) && t.width != Width::fp32()) return TimeBucket::quant;
  return t.lane == Lane::compute ? TimeBucket::compute : TimeBucket::comm;
}
const char* to_string(TimeBucket b) {
  switch (b) {
    case TimeBucket::compute:
      return "compute";
    case TimeBucket::comm:
      return "comm";
    case TimeBucket::quant:
      return "quant";
    case TimeBucket::reduce:
      return "reduce";
  }
  return "?";
}
const char* to_string(Lane l) {
  return l == Lane::compute ? "compute" : "comm";
}
const char* to_string(Direction d) {
  return d == Direction::forward ? "forward" : d == Direction::backward ? "backward" : "none";
}
const char* to_string(Strategy s) {
  return s == Strategy::vanilla ? "vanilla" : "overlap";
}

Strategy parse_strategy(const std::string& name) {
  if (name == "vanilla") return Strategy::vanilla;
  if (name == "overlap") return Strategy::overlap;
  throw Error("--mode '" + name + "': unknown strategy (allowed: vanilla, overlap)");
}

Mode parse_mode(const std::string& name) {
  if (name == "vanilla") return Mode::vanilla;
  if (name == "quant") return Mode::quant;
  if (name == "overlap") return Mode::overlap;
  if (name == "adaqp") return Mode::adaqp;
  throw Error("--mode '" + name + "': unknown mode (allowed: vanilla, quant, overlap, adaqp)");
}

const char* to_string(Mode m) {
  switch (m) {
    case Mode::vanilla:
      return "vanilla";
    case Mode::quant:
      return "quant";
    case Mode::overlap:
      return "overlap";
    default:
      return "adaqp";
  }
}

std::int64_t Plan::bytes_meta() const {
  std::int64_t b = 0;
  for (const auto& t : tasks)
    if (t.kind == TaskKind::send) b += t.meta_bytes;
  return b;
}

std::int64_t Plan::grad_offset(std::size_t p) const {
  if (p > params.size())
    throw std::logic_error("grad_offset: parameter " + std::to_string(p) + " of " + std::to_string(params.size()));
  std::int64_t at = 0;
  for (std::size_t q = 0; q < p; ++q) at += params[q].rows * params[q].cols;
  return at;
}

std::int64_t Plan::bytes_sent() const {
  std::int64_t b = 0;
  for (const auto& t : tasks)
    if (t.kind == TaskKind::send) b += t.bytes;
  return b;
}

namespace {

std::string describe(const Plan& p, const Task& t) {
  std::string s =
      "plan of rank " + std::to_string(p.rank) + ": task " + std::to_string(t.id) + " (" + to_string(t.kind);
  if (t.peer >= 0) s += (t.kind == TaskKind::recv ? " from " : " to ") + std::to_string(t.peer);
  if (t.layer >= 0) s += ", layer " + std::to_string(t.layer) + " " + to_string(t.dir);
  return s + ")";
}

void check_operand(const Plan& p, const Task& t, const Operand& o) {
  const auto n_buf = int(p.buffers.size()), n_par = int(p.params.size());
  const bool ok = o.kind == Operand::none || o.kind == Operand::features ||
                  (o.kind == Operand::buffer && o.id >= 0 && o.id < n_buf) ||
                  ((o.kind == Operand::param_value || o.kind == Operand::param_grad) && o.id >= 0 && o.id < n_par);
  if (!ok) throw Error(describe(p, t) + ": operand refers to a missing buffer or parameter " + std::to_string(o.id));
}

}  // namespace

void validate(const Plan& p) {
  const int n = int(p.tasks.size());
  std::vector<int> indegree(n, 0);
  std::vector<std::vector<int>> users(n);
  for (int i = 0; i < n; ++i) {
    const Task& t = p.tasks[i];
    if (t.id != i)
      throw Error("plan of rank " + std::to_string(p.rank) + ": task at position " + std::to_string(i) + " has id " +
                  std::to_string(t.id));
    for (int d : t.deps) {
      if (d < 0 || d >= n) throw Error(describe(p, t) + ": depends on missing task " + std::to_string(d));
      if (d == i) throw Error(describe(p, t) + ": depends on itself (cycle)");
      ++indegree[i];
      users[d].push_back(i);
    }
    check_operand(p, t, t.src);
    check_operand(p, t, t.src2);
    check_operand(p, t, t.dst);
    const bool comm =
        t.kind == TaskKind::pack || t.kind == TaskKind::unpack || t.kind == TaskKind::send || t.kind == TaskKind::recv;
    if (comm && (t.message < 0 || t.message >= int(p.messages.size())))
      throw Error(describe(p, t) + ": refers to missing message slot " + std::to_string(t.message));
    if ((t.kind == TaskKind::send || t.kind == TaskKind::recv) && (t.peer < 0 || t.peer >= p.ranks || t.peer == p.rank))
      throw Error(describe(p, t) + ": invalid peer " + std::to_string(t.peer));
    if (t.kind == TaskKind::spmm_features_t && t.row_sel.kind == RowSet::range &&
        (t.dst.kind != Operand::param_grad || t.row_sel.begin < 0 || t.row_sel.begin >= t.row_sel.end ||
         t.row_sel.end > p.params[std::size_t(t.dst.id)].rows || t.row_sel.end - t.row_sel.begin != t.rows))
      throw Error(describe(p, t) + ": gradient rows [" + std::to_string(t.row_sel.begin) + ", " +
                  std::to_string(t.row_sel.end) + ") outside its parameter");
    if (t.kind == TaskKind::copy_rows) {
      if (t.dst.kind != Operand::buffer || (t.src.kind != Operand::none && t.src.kind != Operand::buffer))
        throw Error(describe(p, t) + ": copies rows between buffers only");
      if (t.src.kind == Operand::buffer && (t.src_begin < 0 || t.src_begin + t.rows > p.buffers[t.src.id].rows))
        throw Error(describe(p, t) + ": source rows outside buffer " + p.buffers[t.src.id].name);
      if (t.row_sel.kind == RowSet::range && (t.row_sel.begin < 0 || t.row_sel.end > p.buffers[t.dst.id].rows ||
                                              t.row_sel.end - t.row_sel.begin != t.rows))
        throw Error(describe(p, t) + ": target rows outside buffer " + p.buffers[t.dst.id].name);
    }
  }
  // Kahn's algorithm: every task must be reachable in topological order.
  std::queue<int> ready;
  for (int i = 0; i < n; ++i)
    if (indegree[i] == 0) ready.push(i);
  int seen = 0;
  while (!ready.empty()) {
    const int i = ready.front();
    ready.pop();
    ++seen;
    for (int u : users[i])
      if (--indegree[u] == 0) ready.push(u);
  }
  if (seen != n) {
    for (int i = 0; i < n; ++i)
      if (indegree[i] > 0) throw Error(describe(p, p.tasks[i]) + ": is on a dependency cycle");
  }
  // The executor issues tasks in list order, so every dependency must come earlier in the list.
  for (const Task& t : p.tasks)
    for (int d : t.deps)
      if (d > t.id) throw Error(describe(p, t) + ": depends on later task " + std::to_string(d) + " (list order)");
  // All-reduce buckets: every gradient element in exactly one, and the optimizer after all of them.
  const std::int64_t total = p.grad_offset(p.params.size());
  std::vector<std::pair<std::int64_t, std::int64_t>> ranges;  // [begin, end) per bucket
  std::vector<int> buckets;
  for (const Task& t : p.tasks) {
    if (t.kind != TaskKind::allreduce) continue;
    if (t.grad_begin < 0 || t.grad_end > total || t.grad_begin >= t.grad_end)
      throw Error(describe(p, t) + ": bucket [" + std::to_string(t.grad_begin) + ", " + std::to_string(t.grad_end) +
                  ") outside the plan's " + std::to_string(total) + " gradient elements");
    if (t.rows != t.grad_end - t.grad_begin)
      throw Error(describe(p, t) + ": reduces " + std::to_string(t.rows) + " elements of a " +
                  std::to_string(t.grad_end - t.grad_begin) + "-element bucket");
    ranges.emplace_back(t.grad_begin, t.grad_end);
    buckets.push_back(t.id);
  }
  if (!buckets.empty()) {
    // The parameter holding element e (for the message).
    auto param_at = [&](std::int64_t e) {
      std::size_t q = 0;
      while (q + 1 < p.params.size() && p.grad_offset(q + 1) <= e) ++q;
      return p.params[q].name;
    };
    std::sort(ranges.begin(), ranges.end());
    std::int64_t covered = 0;  // elements [0, covered) are in exactly one bucket so far
    for (const auto& [b, e] : ranges) {
      if (b < covered)
        throw Error("plan of rank " + std::to_string(p.rank) + ": parameter " + param_at(b) +
                    " is in 2 all-reduce buckets (must be 1)");
      if (b > covered) break;
      covered = e;
    }
    if (covered < total)
      throw Error("plan of rank " + std::to_string(p.rank) + ": parameter " + param_at(covered) +
                  " is in 0 all-reduce buckets (must be 1)");
    // Optimizer updates: every element in exactly one, each after every bucket it overlaps.
    std::vector<std::pair<std::int64_t, std::int64_t>> updates;
    for (const Task& t : p.tasks) {
      if (t.kind != TaskKind::optimizer) continue;
      if (t.grad_begin < 0 || t.grad_end > total || t.grad_begin >= t.grad_end || t.rows != t.grad_end - t.grad_begin)
        throw Error(describe(p, t) + ": updates elements [" + std::to_string(t.grad_begin) + ", " +
                    std::to_string(t.grad_end) + ") (" + std::to_string(t.rows) + ") of the plan's " +
                    std::to_string(total));
      updates.emplace_back(t.grad_begin, t.grad_end);
      for (int b : buckets) {
        const Task& bt = p.tasks[std::size_t(b)];
        if (bt.grad_begin < t.grad_end && t.grad_begin < bt.grad_end &&
            std::find(t.deps.begin(), t.deps.end(), b) == t.deps.end())
          throw Error(describe(p, t) + ": does not wait for all-reduce task " + std::to_string(b));
      }
    }
    std::sort(updates.begin(), updates.end());
    std::int64_t updated = 0;  // elements [0, updated) updated exactly once so far
    auto not_once = [&](std::int64_t e) {
      return Error("plan of rank " + std::to_string(p.rank) + ": parameter " + param_at(e) +
                   " is not updated exactly once by the optimizer tasks");
    };
    for (const auto& [b, e] : updates) {
      if (b != updated) throw not_once(std::min(b, updated));
      updated = e;
    }
    if (!updates.empty() && updated != total) throw not_once(updated);
  }
}

void validate(const std::vector<Plan>& plans) {
  for (const auto& p : plans) validate(p);
  const int ranks = int(plans.size());
  for (int r = 0; r < ranks; ++r) {
    if (plans[r].rank != r || plans[r].ranks != ranks)
      throw Error("plan of rank " + std::to_string(plans[r].rank) + " is at position " + std::to_string(r) + " of " +
                  std::to_string(ranks));
  }
  for (int r = 0; r < ranks; ++r)
    for (int q = 0; q < ranks; ++q) {
      if (r == q) continue;
      // Per tag, the i-th send from r to q must meet the i-th receive of q from r.
      std::map<int, std::vector<const Task*>> sends, recvs;
      for (const auto& t : plans[r].tasks)
        if (t.kind == TaskKind::send && t.peer == q) sends[t.tag].push_back(&t);
      for (const auto& t : plans[q].tasks)
        if (t.kind == TaskKind::recv && t.peer == r) recvs[t.tag].push_back(&t);
      for (const auto& [tag, s] : sends)
        for (std::size_t i = 0; i < s.size(); ++i) {
          const auto it = recvs.find(tag);
          if (it == recvs.end() || i >= it->second.size())
            throw Error(describe(plans[r], *s[i]) + ": no matching recv in the plan of rank " + std::to_string(q));
          const Task& rv = *it->second[i];
          if (s[i]->bytes != rv.bytes)
            throw Error(describe(plans[r], *s[i]) + " sends " + std::to_string(s[i]->bytes) + " bytes but " +
                        describe(plans[q], rv) + " expects " + std::to_string(rv.bytes) + " bytes");
        }
      for (const auto& [tag, rv] : recvs) {
        const auto it = sends.find(tag);
        const std::size_t have = it == sends.end() ? 0 : it->second.size();
        if (rv.size() > have)
          throw Error(describe(plans[q], *rv[have]) + ": no matching send in the plan of rank " + std::to_string(r));
      }
    }
}

std::string to_json(const Plan& p) {
  using nlohmann::json;
  auto operand = [](const Operand& o) -> json {
    static const char* names[] = {"none", "buffer", "features", "param_value", "param_grad"};
    if (o.kind == Operand::none) return nullptr;
    return {{"kind", names[o.kind]}, {"id", o.id}};
  };
  json tasks = json::array();
  for (const auto& t : p.tasks) {
    static const char* sel[] = {"all", "range", "send_list", "halo"};
    json j = {{"id", t.id},
              {"kind", to_string(t.kind)},
              {"lane", to_string(t.lane)},
              {"layer", t.layer},
              {"dir", to_string(t.dir)},
              {"deps", t.deps},
              {"rows", t.rows},
              {"cols", t.cols},
              {"inner", t.inner},
              {"nnz", t.nnz},
              {"bytes", t.bytes},
              {"peer", t.peer},
              {"bits", t.width.code()},
              {"label", t.label}};
    if (t.src.kind != Operand::none) j["a"] = operand(t.src);
    if (t.src2.kind != Operand::none) j["b"] = operand(t.src2);
    if (t.dst.kind != Operand::none) j["c"] = operand(t.dst);
    if (t.kind == TaskKind::spmm || t.kind == TaskKind::pack || t.kind == TaskKind::unpack ||
        t.kind == TaskKind::copy_rows)
      j["row_sel"] = {{"kind", sel[t.row_sel.kind]},
                      {"begin", t.row_sel.begin},
                      {"end", t.row_sel.end},
                      {"peer", t.row_sel.peer},
                      {"sampled", t.row_sel.sampled}};
    if (t.kind == TaskKind::copy_rows) j["src_begin"] = t.src_begin;
    if (t.kind == TaskKind::unpack && (t.scale != 1 || t.smoothing != 0)) {
      j["scale"] = t.scale;
      j["smoothing"] = t.smoothing;
    }
    if (t.message >= 0) j["message"] = t.message;
    if (t.kind == TaskKind::allreduce) j["grads"] = {t.grad_begin, t.grad_end};
    if (t.kind == TaskKind::send || t.kind == TaskKind::recv) j["tag"] = t.tag;
    tasks.push_back(std::move(j));
  }
  json buffers = json::array(), messages = json::array(), params = json::array();
  for (const auto& b : p.buffers)
    buffers.push_back({{"name", b.name}, {"rows", b.rows}, {"cols", b.cols}, {"persistent", b.persistent}});
  for (const auto& m : p.messages) messages.push_back({{"peer", m.peer}, {"bytes", m.bytes}, {"outgoing", m.outgoing}});
  for (const auto& q : p.params) params.push_back({{"name", q.name}, {"rows", q.rows}, {"cols", q.cols}});
  const json j = {{"rank", p.rank},
                  {"ranks", p.ranks},
                  {"strategy", to_string(p.strategy)},
                  {"training", p.training},
                  {"bits", p.width.code()},
                  {"bytes_sent", p.bytes_sent()},
                  {"bytes_meta", p.bytes_meta()},
                  {"halo_features", p.halo_features},
                  {"buffers", buffers},
                  {"messages", messages},
                  {"params", params},
                  {"tasks", tasks}};
  return j.dump(2);
}

std::string to_dot(const Plan& p) {
  std::ostringstream o;
  o << "digraph plan_rank" << p.rank << " {\n  rankdir=TB;\n  node [shape=box, fontsize=10];\n";
  for (Lane lane : {Lane::compute, Lane::comm}) {
    o << "  subgraph cluster_" << to_string(lane) << " {\n    label=\"" << to_string(lane) << " lane\";\n";
    for (const auto& t : p.tasks)
      if (t.lane == lane)
        o << "    t" << t.id << " [label=\"" << t.id << ": " << t.label << "\""
          << (lane == Lane::comm ? ", style=filled, fillcolor=lightblue" : "") << "];\n";
    o << "  }\n";
  }
  for (const auto& t : p.tasks)
    for (int d : t.deps) o << "  t" << d << " -> t" << t.id << ";\n";
  o << "}\n";
  return o.str();
}

}  // namespace adaqp::scheduler
