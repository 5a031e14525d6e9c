// The plan executor (one rank) against the reference model: same logits, loss and gradients for
// GCN and GraphSAGE, transform-first and aggregate-first layers, dense and sparse features, both
// strategies.
#include <algorithm>
#include <catch2/catch.hpp>

#include "base/error.hpp"
#include "engine/executor.hpp"
#include "engine/loss.hpp"
#include "engine/trainer.hpp"
#include "scheduler/build_plan.hpp"

using namespace adaqp;
using namespace adaqp::engine;

TEST_CASE("one-rank plan execution equals the reference model", "[executor]") {
  auto data = graph::load_dataset("sbm:nodes=300,classes=3,degree=8,seed=4,features=12");
  for (std::size_t i = 0; i < data.features.size(); i += 2) data.features[i] = 0.0f;  // half sparse
  const auto parts = graph::build_partitions(data.adj, std::vector<std::int32_t>(300, 0), 1);
  const auto& part = parts[0];
  std::vector<std::int32_t> labels;
  for (auto g : part.inner_global) labels.push_back(data.labels[g]);
  const std::int64_t n_train = data.count(data.train_mask);
  std::vector<std::uint8_t> mask;
  for (auto g : part.inner_global) mask.push_back(data.train_mask[g]);
  auto comm = make_self_communicator();

  for (auto kind : {ModelKind::gcn, ModelKind::sage})
    for (int hidden : {8, 16})  // 8 < 12 features: transform-first; 16 > 12: aggregate-first
      for (bool sparse : {false, true})
        for (auto strategy : {scheduler::Strategy::vanilla, scheduler::Strategy::overlap}) {
          ModelConfig mc;
          mc.kind = kind;
          mc.layers = 3;
          mc.hidden = hidden;
          mc.dropout = 0.4;
          Model<float> ref(mc, 12, 3, 5), run(mc, 12, 3, 5);
          if (sparse && !ref.accepts_sparse_input()) continue;
          CAPTURE(to_string(kind), hidden, sparse, scheduler::to_string(strategy));
          const auto agg = make_aggregation(kind, part, graph::column_degrees(part, data.adj));
          const auto x = make_features<float>(data.features.data(), 12, part.inner_global, sparse ? 1.0 : 0.0);
          const DropoutKey key{3, 7};
          // Reference.
          Matrix<float> d_logits;
          const auto& ref_logits = ref.forward(agg, x, &key, part.inner_global);
          const double ref_loss = softmax_cross_entropy(ref_logits, labels, mask, double(n_train), &d_logits);
          ref.backward(agg, d_logits);
          // Plan.
          scheduler::ModelShape shape;
          shape.sage = kind == ModelKind::sage;
          shape.dims = run.dims();
          shape.dropout = mc.dropout;
          shape.sparse_input = sparse;
          const auto plan = scheduler::build_plan(part, shape, strategy, true);
          scheduler::validate(plan);
          PlanExecutor exec(plan, part, agg, *comm);
          AdamConfig ac;
          Adam<float> adam(ac, run.params());
          const LossInputs loss{&labels, &mask, double(n_train)};
          const auto times = exec.run(run.params(), &adam, x, &key, &loss);
          CHECK(times.loss == Approx(ref_loss).epsilon(1e-6));
          CHECK(times.bytes_sent == 0);
          const auto& logits = exec.buffer(plan.logits_buffer);
          for (std::size_t i = 0; i < std::size_t(logits.rows * logits.cols); ++i)
            REQUIRE(logits.data[i] == Approx(ref_logits.data[i]).margin(1e-5));
          const auto rp = ref.params(), ep = run.params();
          for (std::size_t p = 0; p < rp.size(); ++p) {
            CAPTURE(rp[p]->name);
            for (std::size_t i = 0; i < rp[p]->grad.data.size(); ++i)
              REQUIRE(ep[p]->grad.data[i] == Approx(rp[p]->grad.data[i]).margin(1e-5));
          }
        }
}

TEST_CASE("backends: cpu is always built, an unknown name is one error naming the built ones", "[executor][backend]") {
  const auto names = backend_names();
  REQUIRE(std::find(names.begin(), names.end(), "cpu") != names.end());
  BackendInputs in;
  try {
    make_backend("no-such-backend", in);
    FAIL("make_backend accepted an unknown name");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK(what.find("--backend no-such-backend") != std::string::npos);
    CHECK(what.find("built: cpu") != std::string::npos);
  }
}
