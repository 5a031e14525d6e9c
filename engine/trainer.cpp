#include "engine/trainer.hpp"

#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

#include "adaqp/build_info.hpp"
#include "adaqp/git_commit.hpp"
#include "engine/cpu/blas.hpp"
#include "engine/loss.hpp"
#include "graph/error.hpp"

namespace adaqp::engine {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string hostname() {
  char buf[256] = {0};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

std::vector<std::int64_t> global_degrees(const graph::Csr& adj) {
  std::vector<std::int64_t> d(adj.num_rows);
  for (std::int64_t v = 0; v < adj.num_rows; ++v) d[v] = adj.degree(v);
  return d;
}

nlohmann::json run_record(const TrainConfig& c, const graph::Dataset& d, int ranks) {
  return {{"type", "run"},
          {"started_utc", utc_now()},
          {"settings",
           {{"dataset", c.dataset},
            {"model", to_string(c.model.kind)},
            {"layers", c.model.layers},
            {"hidden", c.model.hidden},
            {"dropout", c.model.dropout},
            {"epochs", c.epochs},
            {"lr", c.adam.lr},
            {"weight_decay", c.adam.weight_decay},
            {"seed", c.seed},
            {"threads", c.threads},
            {"mode", "vanilla"},
            {"bits", "32"}}},
          {"ranks", ranks},
          {"git_commit", build::kGitCommit},
          {"build",
           {{"version", build::kVersion},
            {"type", build::kBuildType},
            {"compiler", build::kCompiler},
            {"cuda", build::kCuda},
            {"nccl", build::kNccl},
            {"mpi", build::kMpi},
            {"sanitize", build::kSanitize}}},
          {"host", hostname()},
          {"dataset",
           {{"name", d.name},
            {"source", d.source},
            {"nodes", d.num_nodes},
            {"directed_edges", d.num_directed_edges()},
            {"features", d.num_features},
            {"classes", d.num_classes},
            {"split", d.split_rule},
            {"train", d.count(d.train_mask)},
            {"val", d.count(d.val_mask)},
            {"test", d.count(d.test_mask)}}}};
}

TrainResult train(const graph::Dataset& data, const TrainConfig& config, const EpochCallback& on_epoch) {
  if (config.epochs < 1) throw Error("--epochs " + std::to_string(config.epochs) + ": must be >= 1");
  if (config.threads < 0) throw Error("--threads " + std::to_string(config.threads) + ": must be >= 0");
  if (data.features.empty()) throw Error(data.name + ": dataset was loaded without features");
  const int threads = config.threads > 0 ? config.threads : omp_get_num_procs();
  omp_set_num_threads(threads);
  cpu::set_blas_threads(threads);

  RecordWriter records(config.metrics_path);
  records.write(run_record(config, data, 1));

  // One part holding every node (central, no halo): the P = 1 view of the partition code.
  const auto parts = graph::build_partitions(data.adj, std::vector<std::int32_t>(data.num_nodes, 0), 1);
  const auto& part = parts[0];
  const Aggregation agg = make_aggregation(config.model.kind, part, global_degrees(data.adj));

  // Rows in the part's local order.
  const std::int64_t n = part.num_inner(), f = data.num_features;
  Model<float> model(config.model, f, data.num_classes, config.seed);
  const auto x = make_features<float>(data.features.data(), f, part.inner_global,
                                      model.accepts_sparse_input() ? kSparseFeatureDensity : 0.0);
  std::vector<std::int32_t> labels(n);
  std::vector<std::uint8_t> train_mask(n), val_mask(n), test_mask(n);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto g = part.inner_global[i];
    labels[i] = data.labels[g];
    train_mask[i] = data.train_mask[g];
    val_mask[i] = data.val_mask[g];
    test_mask[i] = data.test_mask[g];
  }
  const std::int64_t n_train = data.count(data.train_mask), n_val = data.count(data.val_mask),
                     n_test = data.count(data.test_mask);
  if (n_train == 0) throw Error(data.name + ": the training split is empty");

  Adam<float> adam(config.adam, model.params());
  Matrix<float> d_logits;
  TrainResult result;
  for (std::int64_t epoch = 1; epoch <= config.epochs; ++epoch) {
    EpochMetrics m;
    m.epoch = epoch;
    const auto t0 = std::chrono::steady_clock::now();
    const DropoutKey key{config.seed, epoch};
    const auto& logits = model.forward(agg, x, &key, part.inner_global);
    m.loss = softmax_cross_entropy(logits, labels, train_mask, double(n_train), &d_logits);
    model.backward(agg, d_logits);
    adam.step();
    m.epoch_s = seconds_since(t0);
    m.compute_s = m.epoch_s;

    const auto t1 = std::chrono::steady_clock::now();
    const auto& eval = model.forward(agg, x, nullptr, part.inner_global);
    m.train_acc = accuracy(count_correct(eval, labels, train_mask), n_train);
    m.val_acc = accuracy(count_correct(eval, labels, val_mask), n_val);
    m.test_acc = accuracy(count_correct(eval, labels, test_mask), n_test);
    m.eval_s = seconds_since(t1);
    records.write(to_json(m));
    result.epochs.push_back(m);
    if (on_epoch) on_epoch(m);
  }
  result.summary = summarize(result.epochs, 1, "vanilla", "32");
  records.write(to_json(result.summary));
  records.commit();
  return result;
}

}  // namespace adaqp::engine
