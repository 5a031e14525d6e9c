#include "engine/metrics.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "base/error.hpp"

namespace adaqp::engine {

double accuracy(std::int64_t correct, std::int64_t total) {
  return total > 0 ? double(correct) / double(total) : 0.0;
}

Summary summarize(const std::vector<EpochMetrics>& epochs, int ranks, const std::string& mode,
                  const std::string& bits) {
  Summary s;
  s.epochs = std::int64_t(epochs.size());
  s.ranks = ranks;
  s.mode = mode;
  s.bits = bits;
  if (epochs.empty()) return s;
  std::vector<double> times;
  s.best_val_acc = -1;
  for (const auto& e : epochs) {
    if (e.evaluated && e.val_acc > s.best_val_acc) {
      s.best_val_acc = e.val_acc;
      s.test_acc_at_best_val = e.test_acc;
      s.best_epoch = e.epoch;
    }
    times.push_back(e.epoch_s);
    s.total_train_s += e.epoch_s;
  }
  std::vector<double> tests;
  for (const auto& e : epochs)
    if (e.evaluated) tests.push_back(e.test_acc);
  if (!tests.empty()) {
    s.final_test_acc = tests.back();
    const std::size_t tail = std::min<std::size_t>(tests.size(), kTailEvaluations);
    for (std::size_t i = tests.size() - tail; i < tests.size(); ++i) s.tail_test_acc += tests[i] / double(tail);
  }
  std::sort(times.begin(), times.end());
  const std::size_t k = times.size();
  s.median_epoch_s = k % 2 ? times[k / 2] : 0.5 * (times[k / 2 - 1] + times[k / 2]);
  s.final_loss = epochs.back().loss;
  return s;
}

nlohmann::json task_record(const scheduler::Task& t, int rank) {
  return {{"type", "task"},
          {"rank", rank},
          {"id", t.id},
          {"kind", scheduler::to_string(t.kind)},
          {"label", t.label},
          {"layer", t.layer},
          {"dir", scheduler::to_string(t.dir)},
          {"rows", t.rows},
          {"cols", t.cols},
          {"inner", t.inner},
          {"nnz", t.nnz},
          {"bits", t.width.code()}};
}

nlohmann::json to_json(const EpochMetrics& m) {
  nlohmann::json by_layer = nlohmann::json::array();
  for (const auto& b : m.bytes_by_layer)
    by_layer.push_back({{"layer", b.layer}, {"dir", b.dir}, {"payload", b.payload}, {"meta", b.meta}});
  nlohmann::json j = {{"bytes_by_layer", by_layer}, {"type", "epoch"},
                      {"epoch", m.epoch},           {"loss", m.loss},
                      {"train_acc", m.train_acc},   {"val_acc", m.val_acc},
                      {"test_acc", m.test_acc},     {"epoch_s", m.epoch_s},
                      {"compute_s", m.compute_s},   {"comm_s", m.comm_s},
                      {"quant_s", m.quant_s},       {"reduce_s", m.reduce_s},
                      {"eval_s", m.eval_s},         {"bytes_sent", m.bytes_sent},
                      {"bytes_meta", m.bytes_meta}};
  if (!m.quant_by_layer.empty()) {
    nlohmann::json q = nlohmann::json::array();
    for (const auto& r : m.quant_by_layer)
      q.push_back({{"layer", r.layer},
                   {"dir", r.dir},
                   {"error_sq", r.error_sq},
                   {"model_sq", r.model_sq},
                   {"bound_sq", r.bound_sq},
                   {"elements", r.elements}});
    j["quant_by_layer"] = q;
  }
  if (!m.evaluated)
    for (const char* key : {"train_acc", "val_acc", "test_acc", "eval_s"}) j[key] = nullptr;
  if (m.stale) {
    j["fresh"] = m.fresh;
    j["stale_drift"] = std::isfinite(m.stale_drift) ? nlohmann::json(m.stale_drift) : nlohmann::json(nullptr);
  }
  if (m.assignment.present) {
    const auto& a = m.assignment;
    nlohmann::json hist = nlohmann::json::object();
    for (const auto& [width, rows] : a.rows_at_bits) hist[scheduler::width_name(width)] = rows;
    nlohmann::json channels = nlohmann::json::array();
    for (const auto& [key, rows_at] : a.rows_by_channel) {
      nlohmann::json h = nlohmann::json::object();
      for (const auto& [width, rows] : rows_at) h[scheduler::width_name(width)] = rows;
      channels.push_back({{"layer", key.layer},
                          {"dir", scheduler::to_string(key.dir)},
                          {"sender", key.sender},
                          {"receiver", key.receiver},
                          {"rows_at_bits", h}});
    }
    j["assignment"] = {{"solve_s", a.solve_s},
                       {"methods", a.methods},
                       {"objective", a.objective},
                       {"predicted_variance", a.predicted_variance},
                       {"rows_at_bits", hist},
                       {"rows_at_bits_by_channel", channels},
                       {"quant_error_sq", a.quant_error_sq},
                       {"quant_bound_sq", a.quant_bound_sq},
                       {"quant_elements", a.quant_elements},
                       {"time_scale_s", a.time_scale_s}};
  }
  return j;
}

nlohmann::json to_json(const Summary& s) {
  return {{"type", "summary"},
          {"epochs", s.epochs},
          {"ranks", s.ranks},
          {"mode", s.mode},
          {"bits", s.bits},
          {"strategy", s.strategy.empty() ? s.mode : s.strategy},
          {"best_val_acc", s.best_val_acc},
          {"test_acc_at_best_val", s.test_acc_at_best_val},
          {"best_epoch", s.best_epoch},
          {"final_test_acc", s.final_test_acc},
          {"tail_test_acc", s.tail_test_acc},
          {"median_epoch_s", s.median_epoch_s},
          {"final_loss", s.final_loss},
          {"total_train_s", s.total_train_s},
          {"load_s", s.load_s},
          {"partition_s", s.partition_s},
          {"peak_rss_bytes", s.peak_rss_bytes},
          {"peak_rss_bytes_by_rank", s.peak_rss_bytes_by_rank},
          {"arena_bytes", s.arena_bytes}};
}

RecordWriter::RecordWriter(std::string path) : path_(std::move(path)) {
  if (path_.empty()) return;
  tmp_ = path_ + ".tmp";
  out_.open(tmp_, std::ios::trunc);
  if (!out_) throw Error("--metrics '" + path_ + "': cannot write " + tmp_);
}

RecordWriter::~RecordWriter() {
  if (!path_.empty() && !committed_) {
    out_.close();
    std::remove(tmp_.c_str());
  }
}

void RecordWriter::write(const nlohmann::json& record) {
  if (path_.empty()) return;
  out_ << record.dump() << '\n';
}

void RecordWriter::commit() {
  if (path_.empty() || committed_) return;
  out_.flush();
  if (!out_) throw Error("--metrics '" + path_ + "': write failed");
  out_.close();
  std::filesystem::rename(tmp_, path_);
  committed_ = true;
}

}  // namespace adaqp::engine
