// Peer strategies on real MPI ranks (run under `mpirun -np 2`, ctest label mpi). Each rank checks
// what its plan actually aggregated against values it can compute alone or gather from its peer
// (dropout is off, and every rank holds the whole feature matrix):
//   - stale pipelining exchanges layer inputs H (every layer after the first aggregates first);
//     the first layer exchanges nothing: its halo rows are the features X[halo] (here it transforms
//     first, so it computes X[halo] W itself and keeps those rows' gradients), and the warm-up
//     epoch's parameter gradients equal the single process's on the whole graph (dense and sparse
//     features, dropout on); at epoch 1 (warm-up) layer 1's halo rows are the rows the
//     peer computed this epoch; from epoch 2 on they are exactly the ones it computed the epoch
//     before (and measurably not this epoch's); the store then holds this epoch's rows, smoothed
//     with the momentum when one is given; with dropout the rows travel undropped and the
//     aggregation reads them through this epoch's mask;
//   - stale gradients: after a run the backward store holds the peer's halo-row gradients of that
//     same epoch, and the inner rows were A^T dY (through this epoch's dropout mask) plus the
//     previous epoch's store (this epoch's at the warm-up);
//   - boundary sampling (transform-first layers): kept halo rows of layer 0 are X[halo] W scaled by
//     b / s, dropped ones are zero, and the kept set is the one the sender chose (same sample on
//     both sides).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <tuple>

#include "engine/executor.hpp"
#include "engine/loss.hpp"
#include "engine/trainer.hpp"
#include "graph/registry.hpp"
#include "scheduler/peers.hpp"

using namespace adaqp;
using namespace adaqp::engine;

namespace {
Communicator* g_comm = nullptr;

struct Setup {
  graph::Dataset data;
  std::vector<std::int32_t> owner;
  std::vector<graph::LocalPartition> parts;
  TrainConfig config;
};

Setup setup(const scheduler::PeerOptions& peers, double dropout = 0,
            const std::string& dataset = "sbm:nodes=600,classes=3,degree=10,seed=5,features=16") {
  Setup s;
  s.data = graph::load_dataset(dataset);
  s.owner = graph::partition_graph(s.data.adj, g_comm->size(), graph::PartitionMethod::metis_cut, 0);
  s.parts = graph::build_partitions(s.data.adj, s.owner, g_comm->size());
  s.config.model.kind = ModelKind::gcn;
  s.config.model.layers = 2;
  s.config.model.hidden = 8;  // < 16 features: without --stale layer 0 is transform-first (halo rows X W)
  s.config.model.dropout = dropout;
  s.config.adam.lr = 0.05;
  s.config.peers = peers;
  return s;
}

// One rank's share of a Setup: its plans, operator and features, the seeded model with its
// optimizer, and the loss inputs of its inner rows.
struct Rank {
  const graph::Shard shard;
  const graph::LocalPartition& part;
  PlanSet plans;
  Aggregation agg;
  Features<float> xs;
  Model<float> model;
  Adam<float> adam;
  std::vector<std::int32_t> labels;
  std::vector<std::uint8_t> mask;
  LossInputs loss;
  explicit Rank(const Setup& s)
      : shard(graph::make_shard(s.data, s.parts, graph::feature_nnz_by_part(s.data, s.owner, g_comm->size()),
                                g_comm->rank(), graph::PartitionMethod::metis_cut, 0)),
        part(shard.part),
        plans(make_plans(s.config, shard)),
        agg(make_aggregation(ModelKind::gcn, part, shard.degree)),
        xs(local_features(shard, plans)),
        model(s.config.model, s.data.num_features, s.data.num_classes, 1),
        adam(s.config.adam, model.params()),
        labels(shard.labels),
        mask(shard.train_mask) {
    loss = {&labels, &mask, double(shard.info.n_train)};
  }
  Rank(const Rank&) = delete;
  Rank& operator=(const Rank&) = delete;
};

// Stale pipelining's executors on one rank: the warm-up plan (epoch 1) and the steady-state plan,
// sharing the persistent stores.
struct StaleExecutors {
  PersistentBuffers stores;
  PlanExecutor first, steady;
  explicit StaleExecutors(const Rank& r)
      : first(r.plans.train_first[std::size_t(g_comm->rank())], r.part, r.agg, *g_comm, &stores),
        steady(r.plans.train[std::size_t(g_comm->rank())], r.part, r.agg, *g_comm, &stores) {}
  PlanExecutor& of_epoch(std::int64_t epoch) { return epoch == 1 ? first : steady; }
};

// X[halo rows] W for this rank's halo nodes (rows in halo order).
std::vector<double> halo_xw(const Setup& s, const graph::LocalPartition& part, const Matrix<float>& w) {
  const std::int64_t F = s.data.num_features, H = w.cols;
  std::vector<double> out(std::size_t(part.num_halo() * H), 0.0);
  for (std::int64_t h = 0; h < part.num_halo(); ++h) {
    const float* x = s.data.features.data() + part.halo_global[std::size_t(h)] * F;
    for (std::int64_t k = 0; k < F; ++k)
      for (std::int64_t j = 0; j < H; ++j) out[std::size_t(h * H + j)] += double(x[k]) * w.data[std::size_t(k * H + j)];
  }
  return out;
}

int buffer_id(const scheduler::Plan& p, const std::string& name) {
  for (std::size_t i = 0; i < p.buffers.size(); ++i)
    if (p.buffers[i].name == name) return int(i);
  FAIL("plan has no buffer " << name);
  return -1;
}

double max_abs_diff(const float* a, const std::vector<double>& b, std::size_t n) {
  double m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}
double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}
}  // namespace

TEST_CASE("stale pipelining aggregates exactly the previous epoch's halo rows", "[peers][stale]") {
  for (const auto& [momentum, dropout] : {std::pair{0.0, 0.0}, std::pair{0.5, 0.0}, std::pair{0.0, 0.5}}) {
    CAPTURE(momentum, dropout);
    scheduler::PeerOptions peers;
    peers.stale = true;
    peers.stale_momentum = momentum;
    const auto s = setup(peers, dropout);
    const int rank = g_comm->rank(), peer = 1 - rank;
    REQUIRE(g_comm->size() == 2);
    Rank r(s);
    const auto& [part, plans, agg, xs] = std::tie(r.part, r.plans, r.agg, r.xs);
    auto& model = r.model;
    auto& adam = r.adam;
    const auto& loss = r.loss;
    REQUIRE(part.num_halo() > 0);
    REQUIRE(plans.train_first.size() == s.parts.size());
    StaleExecutors ex(r);
    const auto& plan = plans.train[std::size_t(rank)];
    const int in0 = buffer_id(plan, "layer0.input"), in1 = buffer_id(plan, "layer1.input"),
              out0 = buffer_id(plan, "layer0.output");
    REQUIRE(buffer_id(plans.train_first[std::size_t(rank)], "layer1.input") == in1);
    const std::int64_t n = part.num_inner(), F = s.data.num_features, H = s.config.model.hidden;
    const std::size_t halo_elems = std::size_t(part.num_halo() * H);
    const auto& send = part.send_rows[std::size_t(peer)];
    // Layer 0's halo rows are inputs, the features themselves (not X W).
    std::vector<double> x_halo;
    for (auto g : part.halo_global)
      for (std::int64_t k = 0; k < F; ++k) x_halo.push_back(s.data.features[std::size_t(g * F + k)]);
    std::vector<double> smoothed;
    for (std::int64_t epoch = 1; epoch <= 4; ++epoch) {
      CAPTURE(epoch);
      const DropoutKey key{1, epoch};
      PlanExecutor& exec = ex.of_epoch(epoch);
      exec.run(model.params(), &adam, xs, &key, &loss);
      if (dropout == 0)
        CHECK(max_abs_diff(exec.buffer(in0).data + n * F, x_halo, x_halo.size()) <= 1e-6 * max_abs(x_halo));
      // The layer-1 input rows (undropped: the previous layer's output) this rank computed this
      // epoch for its peer, and the peer's for it (with two ranks every halo row comes from the
      // peer, in its send order).
      const auto& h0 = exec.buffer(out0);
      std::vector<double> mine;
      for (auto row : send)
        for (std::int64_t j = 0; j < H; ++j) mine.push_back(h0.data[std::size_t(row * H + j)]);
      const auto fresh = g_comm->allgather(mine)[std::size_t(peer)];
      REQUIRE(fresh.size() == halo_elems);
      const float* used = exec.buffer(in1).data + n * H;  // halo rows the layer-1 aggregation read
      const double scale = max_abs(fresh);
      // What the aggregation should read: the stored rows through this epoch's mask of layer 1
      // (the owner's mask: it depends only on the global id).
      auto through_mask = [&](const std::vector<double>& rows) {
        if (dropout == 0) return rows;
        std::vector<float> in(rows.begin(), rows.end()), out(rows.size());
        dropout_forward(in.data(), out.data(), nullptr, part.num_halo(), H, dropout, key, 1, part.halo_global.data());
        return std::vector<double>(out.begin(), out.end());
      };
      if (epoch == 1) {
        CHECK(max_abs_diff(used, through_mask(fresh), halo_elems) <= 1e-6 * scale);
        smoothed = fresh;
      } else {
        // The previous epoch's rows (smoothed), and not this epoch's: the weights moved in between.
        CHECK(max_abs_diff(used, through_mask(smoothed), halo_elems) <= 1e-6 * scale);
        CHECK(max_abs_diff(used, through_mask(fresh), halo_elems) > 1e-2 * scale);
        for (std::size_t i = 0; i < smoothed.size(); ++i)
          smoothed[i] = momentum * smoothed[i] + (1 - momentum) * fresh[i];
      }
      // The store now holds what arrives for the next epoch.
      const auto& store = ex.stores.at("stale.layer1.forward");
      CHECK(std::size_t(store.data.size()) == halo_elems);
      if (store.data.size() == halo_elems) CHECK(max_abs_diff(store.data.data(), smoothed, halo_elems) <= 1e-6 * scale);
    }
  }
}

TEST_CASE("stale pipelining: the warm-up epoch's gradients equal the whole graph's", "[peers][stale]") {
  // Layer 0 transforms first (hidden 8 < features) and computes its halo rows' X W locally; the
  // warm-up epoch is synchronous, so every gradient (after the all-reduce) must be the single
  // process's. Cora has sparse features (spmm_features over inner + halo rows, X^T G likewise).
  for (const std::string dataset : {"sbm:nodes=600,classes=3,degree=10,seed=5,features=16", "cora"}) {
    CAPTURE(dataset);
    scheduler::PeerOptions peers;
    peers.stale = true;
    const auto s = setup(peers, 0.5, dataset);
    const int rank = g_comm->rank();
    Rank r(s);
    const auto& plan = r.plans.train_first[std::size_t(rank)];
    CHECK(plan.halo_features);
    CHECK(r.plans.sparse_features == (dataset == "cora"));
    for (const auto& t : plan.tasks) CHECK_FALSE((t.layer == 0 && t.kind == scheduler::TaskKind::send));
    const DropoutKey key{2, 1};
    StaleExecutors ex(r);
    ex.first.run(r.model.params(), &r.adam, r.xs, &key, &r.loss);  // the step leaves the gradients
    // The single process on the whole graph.
    const auto whole =
        graph::build_partitions(s.data.adj, std::vector<std::int32_t>(std::size_t(s.data.num_nodes), 0), 1);
    const auto agg = make_aggregation(ModelKind::gcn, whole[0], graph::column_degrees(whole[0], s.data.adj));
    const auto x = make_features<float>(s.data.features.data(), s.data.num_features, whole[0].inner_global,
                                        r.plans.sparse_features ? 1.0 : 0.0);
    Model<float> ref(s.config.model, s.data.num_features, s.data.num_classes, 1);
    Matrix<float> d_logits;
    const auto& logits = ref.forward(agg, x, &key, whole[0].inner_global);
    softmax_cross_entropy(logits, s.data.labels, s.data.train_mask, double(s.data.count(s.data.train_mask)), &d_logits);
    ref.backward(agg, d_logits);
    const auto rp = ref.params(), ep = r.model.params();
    REQUIRE(rp.size() == ep.size());
    for (std::size_t p = 0; p < rp.size(); ++p) {
      CAPTURE(rp[p]->name);
      std::vector<double> want(rp[p]->grad.data.begin(), rp[p]->grad.data.end());
      REQUIRE(ep[p]->grad.data.size() == want.size());
      // 1e-4: the bias gradients are sums that nearly cancel (float sums in another order).
      CHECK(max_abs_diff(ep[p]->grad.data.data(), want, want.size()) <= 1e-4 * std::max(max_abs(want), 1e-30));
    }
  }
}

TEST_CASE("boundary sampling exchanges the sampled rows, scaled, and zeroes the rest", "[peers][bns]") {
  scheduler::PeerOptions peers;
  peers.boundary_rate = 0.3;
  const auto s = setup(peers);
  const int rank = g_comm->rank();
  Rank r(s);
  const auto& [part, plans, agg, xs] = std::tie(r.part, r.plans, r.agg, r.xs);
  auto& model = r.model;
  auto& adam = r.adam;
  const auto& loss = r.loss;
  PlanExecutor exec(plans.train[std::size_t(rank)], part, agg, *g_comm);
  const int mid = buffer_id(plans.train[std::size_t(rank)], "layer0.transformed");
  const std::int64_t n = part.num_inner(), H = s.config.model.hidden;
  CHECK_THROWS(exec.run(model.params(), &adam, xs, nullptr, &loss));  // no sample given
  for (std::int64_t epoch = 1; epoch <= 3; ++epoch) {
    CAPTURE(epoch);
    const auto xw = halo_xw(s, part, model.params()[0]->value);
    const auto sample = scheduler::sample_boundary(part, peers.boundary_rate, 0, epoch);
    exec.set_boundary_sample(sample);
    const DropoutKey key{0, epoch};
    exec.run(model.params(), &adam, xs, &key, &loss);
    const float* used = exec.buffer(mid).data + n * H;
    const double scale = max_abs(xw);
    std::int64_t kept_total = 0, wrong = 0, wrong_count = 0;
    for (int q = 0; q < part.parts; ++q) {
      if (q == rank) continue;
      const std::int64_t b = part.halo_begin[std::size_t(q) + 1] - part.halo_begin[std::size_t(q)];
      const auto& kept = sample.halo_pos[std::size_t(q)];
      wrong_count += std::int64_t(kept.size()) != scheduler::sampled_rows(b, peers.boundary_rate);
      kept_total += std::int64_t(kept.size());
      std::vector<char> is_kept(std::size_t(b), 0);
      for (auto p : kept) is_kept[std::size_t(p)] = 1;
      for (std::int64_t i = 0; i < b; ++i) {
        const std::int64_t h = part.halo_begin[std::size_t(q)] + i;
        const double f = is_kept[std::size_t(i)] ? double(b) / double(kept.size()) : 0.0;
        for (std::int64_t j = 0; j < H; ++j)
          wrong +=
              std::fabs(double(used[h * H + j]) - f * xw[std::size_t(h * H + j)]) > 1e-4 * scale * std::max(f, 1.0);
      }
    }
    // Every rank keeps running after a failed check (its peer waits for its messages).
    CHECK(wrong_count == 0);
    CHECK(wrong == 0);
    CHECK(kept_total > 0);
    CHECK(kept_total < part.num_halo());
  }
}

TEST_CASE("stale pipelining adds exactly the previous epoch's halo gradients", "[peers][stale]") {
  for (double dropout : {0.0, 0.5}) {
    CAPTURE(dropout);
    scheduler::PeerOptions peers;
    peers.stale = true;
    const auto s = setup(peers, dropout);
    const int rank = g_comm->rank(), peer = 1 - rank;
    REQUIRE(g_comm->size() == 2);
    Rank r(s);
    const auto& [part, plans, agg, xs] = std::tie(r.part, r.plans, r.agg, r.xs);
    auto& model = r.model;
    auto& adam = r.adam;
    const auto& loss = r.loss;
    StaleExecutors ex(r);
    const auto& plan = plans.train[std::size_t(rank)];
    // Layer 1 aggregates first: gmid = A^T gout holds the gradients of its input rows, whose halo
    // part goes to the peer.
    const int gmid = buffer_id(plan, "layer1.input.grad"), gout = buffer_id(plan, "layer1.aggregated.grad");
    const std::int64_t n = part.num_inner(), nl = part.num_local(), H = s.config.model.hidden;
    const auto& send = part.send_rows[std::size_t(peer)];
    std::vector<double> store_before;  // what the store held when this epoch started
    for (std::int64_t epoch = 1; epoch <= 4; ++epoch) {
      CAPTURE(epoch);
      PlanExecutor& exec = ex.of_epoch(epoch);
      const DropoutKey key{1, epoch};
      exec.run(model.params(), &adam, xs, &key, &loss);
      const auto& g = exec.buffer(gmid);
      const auto& d = exec.buffer(gout);
      // This epoch's halo-row gradients, as sent, and the peer's.
      std::vector<double> mine(g.data + n * H, g.data + nl * H);
      const auto all = g_comm->allgather(mine);
      const auto& theirs = all[std::size_t(peer)];
      const auto& store = ex.stores.at("stale.layer1.backward");
      REQUIRE(store.data.size() == theirs.size());
      const double scale = std::max(max_abs(theirs), 1e-30);
      // After the run the store holds what the peer computed in this very epoch.
      CHECK(max_abs_diff(store.data.data(), theirs, theirs.size()) <= 1e-6 * scale);
      // The inner rows are A^T dY of this epoch through this epoch's dropout mask of layer 1, plus
      // a stored gradient: this epoch's at the warm-up, the previous epoch's afterwards.
      std::vector<double> expect(std::size_t(n * H), 0.0);
      std::vector<float> ones(std::size_t(n * H), 1.0f), masked(ones.size());
      if (dropout > 0)
        dropout_forward(ones.data(), masked.data(), nullptr, n, H, dropout, key, 1, part.inner_global.data());
      else
        masked = ones;
      for (std::int64_t r = 0; r < n; ++r)
        for (std::int64_t k = agg.bwd.offsets[std::size_t(r)]; k < agg.bwd.offsets[std::size_t(r) + 1]; ++k)
          for (std::int64_t j = 0; j < H; ++j)
            expect[std::size_t(r * H + j)] += double(masked[std::size_t(r * H + j)]) *
                                              double(agg.bwd.values[std::size_t(k)]) *
                                              d.data[std::size_t(agg.bwd.indices[std::size_t(k)] * H + j)];
      const std::vector<double>& added = epoch == 1 ? theirs : store_before;
      for (std::size_t i = 0; i < send.size(); ++i)
        for (std::int64_t j = 0; j < H; ++j)
          expect[std::size_t(send[i]) * std::size_t(H) + std::size_t(j)] += added[i * std::size_t(H) + std::size_t(j)];
      const double gscale = std::max(max_abs(expect), 1e-30);
      CHECK(max_abs_diff(g.data, expect, expect.size()) <= 1e-5 * gscale);
      if (epoch > 1) CHECK(max_abs_diff(store.data.data(), store_before, theirs.size()) > 1e-3 * scale);  // it moved
      store_before = theirs;
    }
  }
}

int main(int argc, char** argv) {
  auto comm = make_mpi_communicator(&argc, &argv);
  g_comm = comm.get();
  Catch::Session session;
  // Every rank runs every test (the plans exchange messages); the run fails if any rank failed.
  const int rc = session.run(argc, argv);
  double failed[1] = {double(rc != 0)};
  comm->allreduce_sum(failed, 1);
  return failed[0] > 0 ? 1 : 0;
}
