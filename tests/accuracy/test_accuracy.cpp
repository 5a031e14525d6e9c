// Accuracy targets on real datasets (ctest label `accuracy`), fixed seeds 0..k-1. Every model:
// 2 layers, hidden 64, dropout 0.5, Adam lr 0.01, weight decay 5e-4, 200 epochs; reported number
// is the test accuracy at the epoch of best validation accuracy (Summary::test_acc_at_best_val).
#include <catch2/catch.hpp>
#include <iostream>

#include "engine/trainer.hpp"

using namespace adaqp;
using namespace adaqp::engine;

namespace {
double mean_test_at_best_val(const std::string& dataset, ModelKind kind, int hidden, int seeds) {
  const auto data = graph::load_dataset(dataset);
  double sum = 0;
  for (int seed = 0; seed < seeds; ++seed) {
    TrainConfig c;
    c.dataset = dataset;
    c.model.kind = kind;
    c.model.layers = 2;
    c.model.hidden = hidden;
    c.model.dropout = 0.5;
    c.adam.lr = 0.01;
    c.adam.weight_decay = 5e-4;
    c.epochs = 200;
    c.seed = std::uint64_t(seed);
    const auto r = train(data, c);
    std::cout << dataset << " " << to_string(kind) << " seed " << seed << ": test " << r.summary.test_acc_at_best_val
              << " at best val " << r.summary.best_val_acc << "\n";
    sum += r.summary.test_acc_at_best_val;
  }
  std::cout << dataset << " " << to_string(kind) << " mean over " << seeds << " seeds: " << sum / seeds << "\n";
  return sum / seeds;
}
}  // namespace

TEST_CASE("GCN on Cora: mean test accuracy over 5 seeds >= 80.5%", "[accuracy]") {
  CHECK(mean_test_at_best_val("cora", ModelKind::gcn, 64, 5) >= 0.805);
}

TEST_CASE("GCN on CiteSeer: mean test accuracy over 5 seeds >= 69.5%", "[accuracy]") {
  CHECK(mean_test_at_best_val("citeseer", ModelKind::gcn, 64, 5) >= 0.695);
}

TEST_CASE("GraphSAGE on Amazon Computers: mean test accuracy over 3 seeds >= 80%", "[accuracy]") {
  CHECK(mean_test_at_best_val("amazon-computers", ModelKind::sage, 64, 3) >= 0.80);
}
