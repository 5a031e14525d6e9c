// Trainer and records: the JSON Lines schema of docs/design.md and docs/metrics.md, summary definitions, atomic output.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "base/error.hpp"
#include "engine/trainer.hpp"
#include "tests/npz_writer.hpp"

using namespace adaqp;
using namespace adaqp::engine;

TEST_CASE("summary: best validation, test at best validation, median epoch time", "[metrics]") {
  std::vector<EpochMetrics> e(4);
  const double val[] = {0.5, 0.7, 0.7, 0.6}, test[] = {0.4, 0.65, 0.9, 0.5}, t[] = {4, 1, 3, 2};
  for (int i = 0; i < 4; ++i) {
    e[i].epoch = i + 1;
    e[i].val_acc = val[i];
    e[i].test_acc = test[i];
    e[i].epoch_s = t[i];
    e[i].loss = 10 - i;
  }
  const Summary s = summarize(e, 2, "vanilla", "32");
  CHECK(s.best_val_acc == 0.7);
  CHECK(s.test_acc_at_best_val == 0.65);  // first epoch reaching the best validation accuracy
  CHECK(s.best_epoch == 2);
  CHECK(s.median_epoch_s == 2.5);
  CHECK(s.final_loss == 7);
  CHECK(s.total_train_s == 10);
  CHECK(s.final_test_acc == 0.5);
  CHECK(s.tail_test_acc == Approx((0.4 + 0.65 + 0.9 + 0.5) / 4));  // fewer than kTailEvaluations
  e[2].evaluated = false;  // skipped by --eval-every: its accuracies do not count
  const Summary skipped = summarize(e, 2, "vanilla", "32");
  CHECK(skipped.best_epoch == 2);
  CHECK(skipped.tail_test_acc == Approx((0.4 + 0.65 + 0.5) / 3));  // unevaluated epochs do not count
  e[1].evaluated = false;
  CHECK(summarize(e, 2, "vanilla", "32").best_epoch == 4);
  CHECK(to_json(e[1])["val_acc"].is_null());
  CHECK(to_json(e[3])["val_acc"] == 0.6);
  CHECK(accuracy(3, 4) == 0.75);
  CHECK(accuracy(0, 0) == 0.0);
}

TEST_CASE("training writes run, epoch and summary records and learns", "[train]") {
  const auto dir = testing::temp_dir("train");
  const auto data = graph::load_dataset("sbm:nodes=600,classes=3,degree=8,seed=2,features=16,noise=2");
  TrainConfig c;
  c.dataset = data.name;
  c.model.layers = 2;
  c.model.hidden = 16;
  c.epochs = 30;
  c.threads = 2;
  c.metrics_path = dir + "/m.jsonl";
  int callbacks = 0;
  const auto r = train(data, c, [&](const EpochMetrics&) { ++callbacks; });
  CHECK(callbacks == 30);
  CHECK(r.epochs.back().loss < r.epochs.front().loss);
  CHECK(r.summary.best_val_acc > 0.6);  // 3 classes: chance is 1/3
  std::ifstream in(c.metrics_path);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  REQUIRE(lines.size() == 32);
  CHECK(lines.front()["type"] == "run");
  for (const char* k : {"settings", "ranks", "git_commit", "build", "host", "dataset"})
    CHECK(lines.front().contains(k));
  CHECK(lines.front()["dataset"]["nodes"] == 600);
  for (std::size_t i = 1; i <= 30; ++i) {
    CHECK(lines[i]["type"] == "epoch");
    for (const char* k : {"epoch", "loss", "train_acc", "val_acc", "test_acc", "epoch_s", "compute_s", "comm_s",
                          "quant_s", "reduce_s", "bytes_sent", "bytes_meta"})
      CHECK(lines[i].contains(k));
    CHECK(lines[i]["epoch"] == i);
    CHECK(lines[i]["epoch_s"].get<double>() > 0);
  }
  CHECK(lines.back()["type"] == "summary");
  for (const char* k :
       {"epochs", "ranks", "mode", "bits", "best_val_acc", "test_acc_at_best_val", "median_epoch_s", "final_loss"})
    CHECK(lines.back().contains(k));
  CHECK(lines.back()["final_loss"].get<double>() == r.epochs.back().loss);
  CHECK_FALSE(std::filesystem::exists(c.metrics_path + ".tmp"));

  SECTION("--eval-every: evaluation after every K-th and the last epoch; losses unchanged") {
    TrainConfig k = c;
    k.eval_every = 7;
    k.metrics_path.clear();
    const auto rk = train(data, k);
    for (std::size_t i = 0; i < 30; ++i) {
      CHECK(rk.epochs[i].loss == r.epochs[i].loss);
      const bool expect = (i + 1) % 7 == 0 || i + 1 == 30;
      CHECK(rk.epochs[i].evaluated == expect);
      if (expect) CHECK(rk.epochs[i].val_acc == r.epochs[i].val_acc);
    }
  }
  SECTION("--lr-schedule cosine: the first two epochs as constant's, then other losses; recorded") {
    TrainConfig k = c;
    k.adam.schedule = LrSchedule::cosine;
    k.metrics_path = dir + "/cosine.jsonl";
    const auto rk = train(data, k);
    // An epoch's loss is taken before its step: epoch 2 follows step 1 (rate lr in both runs), epoch
    // 3 follows step 2 (cosine: lr * 0.997 of 30 steps).
    CHECK(rk.epochs[0].loss == r.epochs[0].loss);
    CHECK(rk.epochs[1].loss == r.epochs[1].loss);
    CHECK(rk.epochs[2].loss != r.epochs[2].loss);
    std::ifstream kin(k.metrics_path);
    std::string first;
    std::getline(kin, first);
    CHECK(nlohmann::json::parse(first)["settings"]["lr_schedule"] == "cosine");
    CHECK(lines.front()["settings"]["lr_schedule"] == "constant");
  }
  SECTION("a run that fails leaves no metrics file") {
    TrainConfig bad = c;
    bad.metrics_path = dir + "/bad.jsonl";
    bad.model.dropout = 1.5;
    CHECK_THROWS_AS(train(data, bad), Error);
    CHECK_FALSE(std::filesystem::exists(bad.metrics_path));
    CHECK_FALSE(std::filesystem::exists(bad.metrics_path + ".tmp"));
  }
  SECTION("same seed, same run; thread count does not change the losses") {
    TrainConfig c1 = c;
    c1.metrics_path.clear();
    c1.threads = 1;
    const auto r1 = train(data, c1);
    for (int i = 0; i < 30; ++i) CHECK(r1.epochs[i].loss == Approx(r.epochs[i].loss).epsilon(1e-5));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("model_shape: the one builder of train, plan and simulate", "[train]") {
  engine::TrainConfig c;
  c.model.layers = 3;
  c.model.hidden = 16;
  c.model.dropout = 0.25;
  auto s = engine::model_shape(c, 100, 7);
  CHECK(s.dims == std::vector<std::int64_t>{100, 16, 16, 7});
  CHECK(s.dropout == 0.25);
  CHECK_FALSE(s.sage);
  CHECK_FALSE(s.exchange_inputs);
  c.peers.stale = true;  // PipeGCN exchanges layer inputs (simulate --shape once lost this)
  CHECK(engine::model_shape(c, 100, 7).exchange_inputs);
  c.peers.stale = false;
  c.model.kind = engine::ModelKind::sage;
  CHECK(engine::model_shape(c, 100, 7).sage);
  c.width = scheduler::Width::quant(4);  // vanilla mode exchanges fp32
  CHECK_THROWS_WITH(engine::model_shape(c, 100, 7), Catch::Contains("--bits 4"));
  c.mode = scheduler::Mode::quant;
  CHECK_NOTHROW(engine::model_shape(c, 100, 7));
  c.width = scheduler::Width::quant(3);
  CHECK_THROWS_WITH(engine::model_shape(c, 100, 7), Catch::Contains("allowed"));
}
