// Peer strategies in the scheduler: the stale plan never waits for a message before its optimizer
// step and fills its stores afterwards; the warm-up plan fills them first; boundary sampling moves
// floor(p b) rows per channel (bytes on the wire follow the rate) and both sides of a channel pick
// the same rows; combinations that do not make sense are rejected. The values these plans compute
// on real ranks are checked in tests/mpi/test_peers_mpi.cpp.
#include <catch2/catch.hpp>
#include <set>

#include "base/error.hpp"
#include "graph/dataset.hpp"
#include "graph/registry.hpp"
#include "plan_fixtures.hpp"
#include "scheduler/build_plan.hpp"
#include "scheduler/peers.hpp"
#include "scheduler/wire_format.hpp"

using namespace adaqp;
using namespace adaqp::scheduler;

namespace {
using test::cora_parts;
ModelShape gcn3() {
  ModelShape m;
  m.dims = {1433, 64, 64, 7};
  m.dropout = 0.5;
  return m;
}
// Tasks that (transitively) depend on a receive.
std::vector<bool> after_recv(const Plan& p) {
  std::vector<bool> r(p.tasks.size(), false);
  for (const auto& t : p.tasks) {
    bool v = t.kind == TaskKind::recv;
    for (int d : t.deps) v = v || r[std::size_t(d)];
    r[std::size_t(t.id)] = v;
  }
  return r;
}
}  // namespace

TEST_CASE("stale pipelining: nothing before the optimizer step waits for a message", "[peers][plan]") {
  const auto parts = cora_parts(3);
  PeerOptions stale;
  stale.stale = true;
  stale.stale_momentum = 0.9;
  for (Width bits : {Width::fp32(), Width::quant(8)}) {
    CAPTURE(bits);
    const auto plans = build_plans(parts, gcn3(), Strategy::vanilla, true, bits, nullptr, stale);
    auto first_opts = stale;
    first_opts.warmup = true;
    const auto first = build_plans(parts, gcn3(), Strategy::vanilla, true, bits, nullptr, first_opts);
    for (std::size_t r = 0; r < plans.size(); ++r) {
      const auto& p = plans[r];
      const auto waits = after_recv(p);
      int optimizer = -1, unpacks = 0, stores = 0;
      for (const auto& t : p.tasks) {
        if (t.kind == TaskKind::optimizer) optimizer = t.id;
        if (t.kind == TaskKind::unpack) {
          ++unpacks;
          CHECK(t.id > optimizer);  // after the optimizer step, into a store, smoothed
          CHECK(optimizer >= 0);
          CHECK(p.buffers[std::size_t(t.dst.id)].persistent);
          CHECK(t.smoothing == 0.9);
        }
        if (t.kind != TaskKind::unpack && t.lane == Lane::compute) CHECK_FALSE(waits[std::size_t(t.id)]);
      }
      for (const auto& b : p.buffers) stores += b.persistent;
      CHECK(unpacks > 0);
      CHECK(stores == 6);  // 3 layers x (forward, backward)
      // Same bytes and stores as the synchronous first epoch, whose reads wait for the unpacks.
      CHECK(p.bytes_sent() == first[r].bytes_sent());
      const auto& f = first[r];
      const auto fwaits = after_recv(f);
      int first_unpacks = 0;
      for (const auto& t : f.tasks) {
        if (t.kind == TaskKind::unpack) {
          ++first_unpacks;
          CHECK(t.smoothing == 0);
        }
        if (t.kind == TaskKind::copy_rows) CHECK(fwaits[std::size_t(t.id)]);
      }
      CHECK(first_unpacks == unpacks);
    }
    // Evaluation ignores the strategy: fresh exchanges, no store.
    for (const auto& p : build_plans(parts, gcn3(), Strategy::vanilla, false, Width::fp32(), nullptr, stale))
      for (const auto& b : p.buffers) CHECK_FALSE(b.persistent);
  }
}

TEST_CASE("boundary sampling: floor(p b) rows per channel on the wire, scaled by b / s", "[peers][plan]") {
  const auto parts = cora_parts(4);
  std::int64_t full = 0;
  for (const auto& p : build_plans(parts, gcn3(), Strategy::vanilla, true)) full += p.bytes_sent();
  for (double rate : {1.0, 0.5, 0.1}) {
    for (auto strategy : {Strategy::vanilla, Strategy::overlap})
      for (Width bits : {Width::fp32(), Width::quant(4), Width::bf16()}) {
        CAPTURE(rate, to_string(strategy), bits);
        PeerOptions bns;
        bns.boundary_rate = rate;
        const auto plans = build_plans(parts, gcn3(), strategy, true, bits, nullptr, bns);
        std::int64_t bytes = 0, expected = 0;
        for (const auto& p : plans) bytes += p.bytes_sent();
        // Per ordered pair: floor(p b) rows, in each of 3 layers' forward and backward exchanges.
        for (const auto& part : parts)
          for (int q = 0; q < part.parts; ++q) {
            if (q == part.rank) continue;
            // Forward: the rows q holds as halo; backward: the gradients of this rank's halo rows from q.
            const auto s = sampled_rows(std::int64_t(part.send_rows[std::size_t(q)].size()), rate);
            const auto h = sampled_rows(part.halo_begin[std::size_t(q) + 1] - part.halo_begin[std::size_t(q)], rate);
            for (std::int64_t cols : {64, 64, 7})
              expected += message_bytes(s, cols, bits) + message_bytes(h, cols, bits);
          }
        CHECK(bytes == expected);
        if (bits == Width::fp32() && rate < 1) CHECK(double(bytes) <= rate * double(full) + 1e-9);
        for (const auto& p : plans)
          for (const auto& t : p.tasks)
            if (t.kind == TaskKind::unpack && rate < 1) {
              CHECK(t.row_sel.sampled);
              CHECK(t.scale >= 1.0 / rate - 1e-12);  // b / floor(p b) >= 1 / p
            }
      }
  }
}

TEST_CASE(
    "a first layer reads halo features locally (aggregate-first, or exchanging inputs), except under boundary sampling",
    "[peers][plan]") {
  const auto parts = cora_parts(2);
  ModelShape wide = gcn3();
  wide.dims = {1433, 2048, 7};  // aggregate-first first layer
  auto first_layer_sends = [](const Plan& p) {
    std::int64_t n = 0;
    for (const auto& t : p.tasks) n += t.kind == TaskKind::send && t.layer == 0 && t.dir == Direction::forward;
    return n;
  };
  for (const auto& p : build_plans(parts, wide, Strategy::vanilla, true)) {
    CHECK(p.halo_features);
    CHECK(first_layer_sends(p) == 0);
  }
  // Exchanging layer inputs (stale pipelining), a narrowing first layer still transforms first,
  // over inner and halo rows (the sparse product of the features and W), and sends nothing.
  ModelShape inputs = gcn3();
  inputs.exchange_inputs = true;
  inputs.sparse_input = true;
  inputs.feature_nnz = 1000;
  for (const auto& p : build_plans(parts, inputs, Strategy::vanilla, true)) {
    const auto& part = parts[std::size_t(p.rank)];
    CHECK(p.halo_features);
    std::int64_t layer0_sends = 0, products = 0, grads = 0;
    for (const auto& t : p.tasks) {
      layer0_sends += t.kind == TaskKind::send && t.layer == 0;
      if (t.kind == TaskKind::spmm_features) {
        ++products;
        CHECK(t.rows == part.num_local());
      }
      if (t.kind == TaskKind::spmm_features_t) {
        ++grads;
        CHECK(t.inner == part.num_local());
      }
    }
    CHECK(layer0_sends == 0);
    CHECK(products == 1);
    CHECK(grads == 1);
  }
  PeerOptions bns;
  bns.boundary_rate = 0.5;  // BNS-GCN drops the same boundary nodes in every layer, the first too
  for (const auto& p : build_plans(parts, wide, Strategy::vanilla, true, Width::fp32(), nullptr, bns)) {
    CHECK_FALSE(p.halo_features);
    CHECK(first_layer_sends(p) == 1);
  }
}

TEST_CASE("boundary samples agree between owner and holder, change per epoch, keep floor(p b)", "[peers]") {
  const auto parts = cora_parts(3);
  for (double rate : {0.5, 0.25}) {
    std::set<std::vector<std::int32_t>> seen;
    for (std::int64_t epoch = 1; epoch <= 3; ++epoch) {
      std::vector<BoundarySample> s;
      for (const auto& p : parts) s.push_back(sample_boundary(p, rate, 7, epoch));
      for (const auto& p : parts)
        for (int q = 0; q < p.parts; ++q) {
          if (q == p.rank) continue;
          CAPTURE(rate, epoch, p.rank, q);
          // Owner p sends rows send_rows[q][send_pos]; holder q receives halo positions halo_pos[p]:
          // the same global nodes in the same order.
          const auto& send = s[std::size_t(p.rank)].send_pos[std::size_t(q)];
          const auto& recv = s[std::size_t(q)].halo_pos[std::size_t(p.rank)];
          const auto& holder = parts[std::size_t(q)];
          REQUIRE(send.size() == recv.size());
          CHECK(std::int64_t(send.size()) == sampled_rows(std::int64_t(p.send_rows[std::size_t(q)].size()), rate));
          for (std::size_t k = 0; k < send.size(); ++k)
            CHECK(p.inner_global[std::size_t(p.send_rows[std::size_t(q)][std::size_t(send[k])])] ==
                  holder.halo_global[std::size_t(holder.halo_begin[std::size_t(p.rank)] + recv[k])]);
          if (p.rank == 0 && q == 1) seen.insert(send);
        }
      // Deterministic: the same key gives the same sample.
      CHECK(sample_boundary(parts[0], rate, 7, epoch).send_pos == sample_boundary(parts[0], rate, 7, epoch).send_pos);
    }
    CHECK(seen.size() == 3);  // a fresh sample every epoch
  }
}

TEST_CASE("peer strategy combinations are checked", "[peers]") {
  PeerOptions stale;
  stale.stale = true;
  CHECK_NOTHROW(check_peers(stale, Mode::vanilla, false));
  CHECK_NOTHROW(check_peers(stale, Mode::quant, false));
  CHECK_THROWS_WITH(check_peers(stale, Mode::adaqp, false), Catch::Contains("--stale with --mode adaqp"));
  CHECK_THROWS_WITH(check_peers(stale, Mode::overlap, false), Catch::Contains("already overlaps"));
  CHECK_NOTHROW(check_peers(stale, Mode::quant, true));  // stale with adaptive widths: every row still travels
  PeerOptions sampled;
  sampled.boundary_rate = 0.5;
  CHECK_THROWS_WITH(check_peers(sampled, Mode::quant, true), Catch::Contains("--bits adaptive"));
  auto both = stale;
  both.boundary_rate = 0.5;
  CHECK_THROWS_WITH(check_peers(both, Mode::vanilla, false), Catch::Contains("--boundary-rate"));
  PeerOptions bad;
  bad.boundary_rate = 0;
  CHECK_THROWS_WITH(check_peers(bad, Mode::vanilla, false), Catch::Contains("(0, 1]"));
  bad.boundary_rate = 1;
  bad.stale_momentum = 0.5;
  CHECK_THROWS_WITH(check_peers(bad, Mode::vanilla, false), Catch::Contains("needs --stale"));
  bad.stale = true;
  bad.stale_momentum = 1;
  CHECK_THROWS_WITH(check_peers(bad, Mode::vanilla, false), Catch::Contains("[0, 1)"));
  PeerOptions bns;
  bns.boundary_rate = 0.1;
  for (auto m : {Mode::vanilla, Mode::quant, Mode::overlap, Mode::adaqp}) CHECK_NOTHROW(check_peers(bns, m, false));
  CHECK(strategy_name(Mode::vanilla, bns) == "bns-0.1");
  CHECK(strategy_name(Mode::adaqp, bns) == "adaqp+bns-0.1");
  stale.stale_momentum = 0.9;
  CHECK(strategy_name(Mode::vanilla, stale) == "pipegcn-m0.9");
  CHECK(strategy_name(Mode::adaqp, {}) == "adaqp");
  CHECK(sampled_rows(10, 0.25) == 2);
  CHECK(sampled_rows(10, 1.0) == 10);
}
