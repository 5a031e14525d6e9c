// Model maths: every layer's backward against central finite differences in double precision,
// sparse and dense first-layer inputs agree, dropout is keyed by global ids, Adam's update.
#include <omp.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <numbers>

#include "base/random.hpp"
#include "engine/loss.hpp"
#include "engine/model.hpp"
#include "engine/optimizer.hpp"
#include "engine/trainer.hpp"
#include "graph/dataset.hpp"

using namespace adaqp;
using namespace adaqp::engine;

namespace {

struct Fixture {
  graph::Dataset data;
  std::vector<graph::LocalPartition> parts;
  Aggregation agg;
  std::vector<std::int32_t> labels;
  std::vector<std::uint8_t> mask;
};

// Small random graph: 40 nodes, 6 features (some zero), 3 classes, every node in the loss.
Fixture make_fixture(ModelKind kind) {
  Fixture f;
  f.data = graph::load_dataset("sbm:nodes=40,classes=3,degree=6,seed=5,features=6,train=5,val=2");
  for (std::size_t i = 0; i < f.data.features.size(); i += 3) f.data.features[i] = 0.0f;  // sparsity
  f.parts = graph::build_partitions(f.data.adj, std::vector<std::int32_t>(40, 0), 1);
  f.agg = make_aggregation(kind, f.parts[0], graph::column_degrees(f.parts[0], f.data.adj));
  for (auto g : f.parts[0].inner_global) f.labels.push_back(f.data.labels[g]);
  f.mask.assign(40, 1);
  return f;
}

double loss_of(Model<double>& m, const Fixture& f, const Features<double>& x, const DropoutKey* key) {
  const auto& logits = m.forward(f.agg, x, key, f.parts[0].inner_global);
  return softmax_cross_entropy(logits, f.labels, f.mask, 40.0, static_cast<Matrix<double>*>(nullptr));
}

void check_gradients(ModelKind kind, int layers, int hidden, bool sparse) {
  auto f = make_fixture(kind);
  ModelConfig mc;
  mc.kind = kind;
  mc.layers = layers;
  mc.hidden = hidden;
  mc.dropout = 0.3;
  Model<double> model(mc, f.data.num_features, f.data.num_classes, 9);
  if (sparse && !model.accepts_sparse_input()) return;
  const auto x =
      make_features<double>(f.data.features.data(), f.data.num_features, f.parts[0].inner_global, sparse ? 1.0 : 0.0);
  REQUIRE(x.is_sparse() == sparse);
  // Zero biases put dead hidden units exactly on ReLU's kink (pre-activation = bias = 0), where
  // no derivative exists; small random biases move every unit off it.
  CounterRng rng(77);
  for (auto* p : model.params())
    if (p->name.ends_with("bias"))
      for (auto& b : p->value.data) b = 0.2 * (rng.uniform() - 0.5);
  const DropoutKey key{4, 2};
  Matrix<double> d_logits;
  const auto& logits = model.forward(f.agg, x, &key, f.parts[0].inner_global);
  softmax_cross_entropy(logits, f.labels, f.mask, 40.0, &d_logits);
  model.backward(f.agg, d_logits);
  const double eps = 1e-6;
  for (auto* p : model.params()) {
    double num = 0, den = 0;
    for (std::size_t i = 0; i < p->value.data.size(); ++i) {
      const double w = p->value.data[i];
      p->value.data[i] = w + eps;
      const double up = loss_of(model, f, x, &key);
      p->value.data[i] = w - eps;
      const double down = loss_of(model, f, x, &key);
      p->value.data[i] = w;
      const double fd = (up - down) / (2 * eps);
      num += (fd - p->grad.data[i]) * (fd - p->grad.data[i]);
      den += fd * fd;
    }
    const double rel = std::sqrt(num / den);
    INFO(to_string(kind) << " layers " << layers << " hidden " << hidden << (sparse ? " sparse " : " dense ") << p->name
                         << ": relative error " << rel);
    CHECK(rel < 1e-6);
  }
}

}  // namespace

TEST_CASE("GCN backward matches central finite differences (double)", "[model][gradients]") {
  // hidden 4 < 6 features: transform-first first layer; hidden 8 > 6: aggregate-first.
  for (int hidden : {4, 8})
    for (bool sparse : {false, true}) check_gradients(ModelKind::gcn, 3, hidden, sparse);
}

TEST_CASE("GraphSAGE backward matches central finite differences (double)", "[model][gradients]") {
  for (int hidden : {4, 8})
    for (bool sparse : {false, true}) check_gradients(ModelKind::sage, 3, hidden, sparse);
}

TEST_CASE("sparse and dense features give the same logits", "[model]") {
  for (auto kind : {ModelKind::gcn, ModelKind::sage}) {
    auto f = make_fixture(kind);
    ModelConfig mc;
    mc.kind = kind;
    mc.layers = 2;
    mc.hidden = 4;
    Model<float> a(mc, 6, 3, 1), b(mc, 6, 3, 1);
    const auto xs = make_features<float>(f.data.features.data(), 6, f.parts[0].inner_global, 1.0);
    const auto xd = make_features<float>(f.data.features.data(), 6, f.parts[0].inner_global, 0.0);
    const DropoutKey key{1, 1};
    const auto& la = a.forward(f.agg, xs, &key, f.parts[0].inner_global);
    const auto& lb = b.forward(f.agg, xd, &key, f.parts[0].inner_global);
    for (std::size_t i = 0; i < la.data.size(); ++i) REQUIRE(la.data[i] == Approx(lb.data[i]).margin(1e-6));
  }
}

TEST_CASE("dropout mask depends only on (seed, epoch, layer, global id, column)", "[model]") {
  const std::int64_t rows = 3, cols = 37;
  std::vector<float> x(rows * cols, 1.0f), y1(x.size()), y2(x.size());
  std::vector<std::uint8_t> k1(x.size()), k2(x.size());
  const std::vector<std::int64_t> ids = {10, 20, 30}, reversed = {30, 20, 10};
  const DropoutKey key{7, 3};
  dropout_forward(x.data(), y1.data(), k1.data(), rows, cols, 0.5, key, 1, ids.data());
  dropout_forward(x.data(), y2.data(), k2.data(), rows, cols, 0.5, key, 1, reversed.data());
  for (std::int64_t j = 0; j < cols; ++j) {
    REQUIRE(k1[0 * cols + j] == k2[2 * cols + j]);  // node 10's row, wherever it sits
    REQUIRE(y1[j] == (k1[j] ? 2.0f : 0.0f));
  }
  double kept = 0;
  std::vector<float> big(100000, 1.0f), out(big.size());
  std::vector<std::int64_t> one = {0};
  dropout_forward(big.data(), out.data(), static_cast<std::uint8_t*>(nullptr), 1, 100000, 0.3, key, 0, one.data());
  for (float v : out) kept += v != 0.0f;
  CHECK(kept / 100000.0 == Approx(0.7).margin(0.01));
}

TEST_CASE("Adam step matches a hand computation", "[optimizer]") {
  Param<double> p;
  p.name = "w";
  p.value.resize(1, 2);
  p.grad.resize(1, 2);
  p.value.data = {1.0, -2.0};
  p.grad.data = {0.5, 0.0};
  AdamConfig c;
  c.lr = 0.1;
  c.weight_decay = 0.01;
  Adam<double> adam(c, {&p});
  adam.step();
  // First step: m_hat = g, v_hat = g^2 -> update = lr * g / (|g| + eps) = lr * sign(g).
  CHECK(p.value.data[0] == Approx(1.0 - 0.1 * (0.5 + 0.01) / (0.51 + 1e-8)));
  CHECK(p.value.data[1] == Approx(-2.0 + 0.1 * 0.02 / (0.02 + 1e-8)));
}

TEST_CASE("Adam in parts (begin_step, then updates of element ranges) is step() bit for bit", "[optimizer]") {
  auto make = [](int seed) {
    std::vector<Param<float>> ps(2);
    CounterRng rng{std::uint64_t(seed)};
    for (std::size_t i = 0; i < ps.size(); ++i) {
      ps[i].value.resize(std::int64_t(40 + 17 * i), 3);
      ps[i].grad.resize(std::int64_t(40 + 17 * i), 3);
      for (auto& x : ps[i].value.data) x = float(rng.uniform() - 0.5);
    }
    return ps;
  };
  auto whole = make(1), parts = make(1);
  AdamConfig c;
  c.schedule = LrSchedule::cosine;
  c.steps = 3;
  Adam<float> a(c, {&whole[0], &whole[1]}), b(c, {&parts[0], &parts[1]});
  CHECK_THROWS_AS(b.update(0, 0, 1), std::logic_error);  // before any begin_step
  CounterRng rng{9};
  for (int step = 0; step < 3; ++step) {
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t k = 0; k < whole[i].grad.data.size(); ++k)
        whole[i].grad.data[k] = parts[i].grad.data[k] = float(rng.uniform() - 0.5);
    a.step();
    b.begin_step();
    b.update(1, 50, 171);  // any order, any cut
    b.update(0, 0, 7);
    b.update(1, 0, 50);
    b.update(0, 7, 120);
    for (std::size_t i = 0; i < 2; ++i) CHECK((whole[i].value.data == parts[i].value.data));
  }
  CHECK((a.state().m == b.state().m));
  CHECK((a.state().v == b.state().v));
  CHECK_THROWS_AS(b.update(0, 5, 121), std::logic_error);
  CHECK_THROWS_AS(b.update(2, 0, 1), std::logic_error);
}

TEST_CASE("learning-rate schedules: constant and cosine", "[optimizer]") {
  AdamConfig c;
  c.lr = 0.02;
  CHECK(c.lr_at(1) == 0.02);
  CHECK(c.lr_at(1000) == 0.02);  // constant needs no step count
  c.schedule = LrSchedule::cosine;
  CHECK_THROWS_AS(c.lr_at(1), std::logic_error);  // steps unset
  {
    Param<double> q;
    q.value.resize(1, 1);
    q.grad.resize(1, 1);
    CHECK_THROWS_AS(Adam<double>(c, {&q}), std::logic_error);  // refused when built, not at step 1
  }
  c.steps = 200;
  CHECK(c.lr_at(1) == 0.02);
  CHECK(c.lr_at(101) == Approx(0.01));  // half-way: half the rate
  CHECK(c.lr_at(51) == Approx(0.01 * (1 + std::sqrt(0.5))));
  CHECK(c.lr_at(200) == Approx(0.02 * (1 + std::cos(std::numbers::pi * 199 / 200)) / 2));
  CHECK(c.lr_at(200) > 0);
  for (int t = 2; t <= 200; ++t) CHECK(c.lr_at(t) < c.lr_at(t - 1));  // strictly decreasing
  CHECK_THROWS_AS(c.lr_at(0), std::logic_error);
  CHECK_THROWS_AS(c.lr_at(201), std::logic_error);
  CHECK(parse_lr_schedule("cosine") == LrSchedule::cosine);
  CHECK(to_string(parse_lr_schedule("constant")) == "constant");
  CHECK_THROWS_WITH(parse_lr_schedule("linear"), "--lr-schedule 'linear': allowed constant, cosine");

  // The optimizer takes step t's rate: two cosine steps move w by lr_at(1) and lr_at(2) (g constant:
  // each normalised step is one rate times sign(g)).
  Param<double> p;
  p.value.resize(1, 1);
  p.grad.resize(1, 1);
  p.value.data = {0.0};
  p.grad.data = {1.0};
  c.weight_decay = 0;
  c.steps = 2;
  Adam<double> adam(c, {&p});
  adam.step();
  CHECK(p.value.data[0] == Approx(-0.02));
  adam.step();
  CHECK(p.value.data[0] == Approx(-0.02 - 0.01));  // lr_at(2) of 2 steps = lr / 2
}

TEST_CASE("softmax cross-entropy value and accuracy count", "[loss]") {
  Matrix<double> z(2, 3);
  z.data = {0, 0, std::log(2.0), 5, 0, 0};
  const std::vector<std::int32_t> labels = {2, 1};
  const std::vector<std::uint8_t> mask = {1, 0};
  Matrix<double> g;
  const double loss = softmax_cross_entropy(z, labels, mask, 1.0, &g);
  CHECK(loss == Approx(-std::log(0.5)));
  CHECK(g(0, 2) == Approx(-0.5));
  CHECK(g(1, 0) == 0.0);
  CHECK(count_correct(z, labels, mask) == 1);
  CHECK(count_correct(z, labels, std::vector<std::uint8_t>{1, 1}) == 1);
}

TEST_CASE("sparse dropout keeps exactly the entries dense dropout keeps, on every thread count", "[model]") {
  // Rows split over threads meet at chunk boundaries: a compaction that writes past its row's end
  // corrupts the next thread's first row (caught here at 2 and 3 threads).
  const std::int64_t rows = 3000, cols = 40;
  std::vector<float> dense(std::size_t(rows * cols), 0.0f);
  graph::Csr x;
  x.num_rows = rows;
  x.num_cols = cols;
  x.offsets = {0};
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < cols; ++j)
      if ((r * 7 + j * 3) % 5 != 0) {  // 80% dense rows, ragged
        const float v = float(r % 13) + 0.25f * float(j);
        dense[std::size_t(r * cols + j)] = v;
        x.indices.push_back(graph::NodeId(j));
        x.values.push_back(v);
      }
    x.offsets.push_back(std::int64_t(x.indices.size()));
  }
  std::vector<std::int64_t> ids(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) ids[std::size_t(r)] = 5 * r + 1;
  std::vector<float> y(dense.size());
  const DropoutKey key{4, 2};
  dropout_forward(dense.data(), y.data(), nullptr, rows, cols, 0.5, key, 1, ids.data());
  const int before = omp_get_max_threads();
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    graph::Csr d;
    std::vector<std::uint8_t> kept;
    dropout_sparse(x, 0.5, key, 1, ids.data(), d, kept);
    std::int64_t mismatches = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
      std::vector<float> row(static_cast<std::size_t>(cols), 0.0f);
      for (std::int64_t k = d.offsets[std::size_t(r)]; k < d.offsets[std::size_t(r) + 1]; ++k)
        row[std::size_t(d.indices[std::size_t(k)])] = d.values[std::size_t(k)];
      for (std::int64_t j = 0; j < cols; ++j) mismatches += row[std::size_t(j)] != y[std::size_t(r * cols + j)];
    }
    CAPTURE(threads);
    CHECK(mismatches == 0);
  }
  omp_set_num_threads(before);
}
