// Simulator: golden timings computed by hand on hand-made plans (exchange, overlap, contention,
// all-reduce), consistency on the scheduler's real plans, profiles and fits.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "base/error.hpp"
#include "engine/trainer.hpp"
#include "graph/partition.hpp"
#include "scheduler/build_plan.hpp"
#include "scheduler/link_fit.hpp"
#include "simulator/cost_model.hpp"
#include "simulator/simulator.hpp"
#include "tests/npz_writer.hpp"

using namespace adaqp;
using namespace adaqp::simulator;
using Catch::Detail::Approx;
using scheduler::Plan;
using scheduler::Task;
using scheduler::TaskKind;

namespace {

// A profile in which a bias_act task with rows = r (cols = 1) lasts r * 1 ms: 1 ms per element
// whatever its working set.
Profile golden_profile(double alpha_s, double beta_s_per_byte) {
  Profile p;
  p.machine = "golden";
  p.backend = "cpu";
  p.compute["bias_act"] = {{0.0, 1e-3, 1e-3, 1e-3}, 1, 0};
  p.links["inter"] = {alpha_s, beta_s_per_byte, 1, "test"};
  p.post_s = 0;
  return p;
}

struct PlanBuilder {
  Plan plan;
  PlanBuilder(int rank, int ranks) {
    plan.rank = rank;
    plan.ranks = ranks;
  }
  int add(TaskKind kind, std::vector<int> deps, std::int64_t rows = 0, int peer = -1, std::int64_t bytes = 0,
          int tag = 0) {
    Task t;
    t.id = int(plan.tasks.size());
    t.kind = kind;
    t.deps = std::move(deps);
    t.rows = rows;
    t.cols = 1;
    t.peer = peer;
    t.bytes = bytes;
    t.tag = tag;
    if (kind == TaskKind::send || kind == TaskKind::recv) t.lane = scheduler::Lane::comm;
    plan.tasks.push_back(t);
    return t.id;
  }
  int compute(double ms, std::vector<int> deps = {}) {
    return add(TaskKind::bias_act, std::move(deps), std::int64_t(ms));
  }
};

Network net_of(const Profile& p, int ranks, const std::string& topology) {
  return make_network(p, ranks, topology, "none");
}

}  // namespace

TEST_CASE("simulator: a two-rank exchange takes alpha + bytes * beta", "[simulator]") {
  // alpha 1 ms, 1 MB/s: 1000 bytes arrive 2 ms after both sides posted.
  const auto p = golden_profile(1e-3, 1e-6);
  PlanBuilder r0(0, 2), r1(1, 2);
  r0.add(TaskKind::send, {}, 0, 1, 1000, 5);
  const int recv = r1.add(TaskKind::recv, {}, 0, 0, 1000, 5);
  r1.compute(3, {recv});  // 3 ms once the data is there
  const auto pred = simulate({r0.plan, r1.plan}, p, net_of(p, 2, "flat"), true);
  CHECK(pred.ranks[1].total_s == Approx(5e-3));
  CHECK(pred.ranks[1].comm_s == Approx(2e-3));
  CHECK(pred.ranks[1].compute_s == Approx(3e-3));
  CHECK(pred.ranks[0].total_s == Approx(2e-3));  // waits for its send at the end
  CHECK(pred.epoch_s == Approx(5e-3));
  CHECK(pred.timeline[1][1].start_s == Approx(2e-3));
  CHECK(pred.bytes_sent == 1000);  // Plan::bytes_sent: the send tasks' bytes

  SECTION("rendezvous: a late receive delays the transfer") {
    PlanBuilder late(1, 2);
    late.compute(4);
    const int rv = late.add(TaskKind::recv, {}, 0, 0, 1000, 5);
    late.compute(1, {rv});
    const auto q = simulate({r0.plan, late.plan}, p, net_of(p, 2, "flat"));
    CHECK(q.ranks[1].total_s == Approx(4e-3 + 2e-3 + 1e-3));
    CHECK(q.ranks[0].total_s == Approx(6e-3));
  }
}

TEST_CASE("simulator: overlap hides communication exactly when compute covers it", "[simulator]") {
  const auto p = golden_profile(0, 1e-6);  // 5000 bytes: 5 ms on the wire
  for (double independent_ms : {2.0, 5.0, 8.0}) {
    PlanBuilder r0(0, 2), r1(1, 2);
    r0.add(TaskKind::send, {}, 0, 1, 5000, 1);
    const int recv = r1.add(TaskKind::recv, {}, 0, 0, 5000, 1);
    r1.compute(independent_ms);  // central rows: need nothing remote
    r1.compute(1, {recv});       // marginal rows: need the message
    const auto pred = simulate({r0.plan, r1.plan}, p, net_of(p, 2, "flat"));
    const double hidden = std::min(independent_ms, 5.0);
    CHECK(pred.ranks[1].comm_s == Approx((5.0 - hidden) * 1e-3).margin(1e-12));
    CHECK(pred.ranks[1].total_s == Approx((std::max(independent_ms, 5.0) + 1) * 1e-3));
  }
}

TEST_CASE("simulator: links are shared fairly", "[simulator]") {
  const auto p = golden_profile(0, 1e-6);  // 1 MB/s
  PlanBuilder r0(0, 2), r1(1, 2);
  const int s0 = r0.add(TaskKind::send, {}, 0, 1, 1000, 1);
  const int v0 = r0.add(TaskKind::recv, {}, 0, 1, 1000, 1);
  r0.compute(0, {s0, v0});
  const int s1 = r1.add(TaskKind::send, {}, 0, 0, 1000, 1);
  const int v1 = r1.add(TaskKind::recv, {}, 0, 0, 1000, 1);
  r1.compute(0, {s1, v1});
  // Full duplex ports: both directions at full speed; one shared medium: half speed each.
  CHECK(simulate({r0.plan, r1.plan}, p, net_of(p, 2, "flat")).epoch_s == Approx(1e-3));
  CHECK(simulate({r0.plan, r1.plan}, p, net_of(p, 2, "shared")).epoch_s == Approx(2e-3));

  SECTION("two senders into one receiver share its port; a late one gets the rest") {
    // Ranks 0 and 1 send 1000 bytes to rank 2; rank 1 starts 0.5 ms later. Rank 0 alone moves
    // 500 bytes by 0.5 ms, then both move at 500 B/s... in MB/s: 0.5 MB/s each; rank 0's last
    // 500 bytes take 1 ms (done at 1.5 ms), rank 1 has then moved 500 and finishes alone at 2 ms.
    const auto q = golden_profile(0, 1e-6);
    PlanBuilder a(0, 3), c(2, 3);
    a.add(TaskKind::send, {}, 0, 2, 1000, 1);
    const int ra = c.add(TaskKind::recv, {}, 0, 0, 1000, 1);
    const int rb = c.add(TaskKind::recv, {}, 0, 1, 1000, 1);
    const int after_a = c.compute(0, {ra});
    c.compute(0, {rb, after_a});
    // bias_act costs rows * 1 ms: rows is integral, so express 0.5 ms through a 0.5 ms profile.
    auto half = q;
    half.compute["bias_act"] = {{0.0, 0.5e-3, 0.5e-3, 0.5e-3}, 1, 0};
    PlanBuilder b2(1, 3);
    b2.compute(1);  // 1 row * 0.5 ms
    b2.add(TaskKind::send, {}, 0, 2, 1000, 1);
    const auto pred = simulate({a.plan, b2.plan, c.plan}, half, net_of(half, 3, "flat"), true);
    CHECK(pred.timeline[2][2].start_s == Approx(1.5e-3));  // after rank 0's message
    CHECK(pred.ranks[2].total_s == Approx(2e-3));
    CHECK(pred.ranks[0].total_s == Approx(1.5e-3));
  }
}

TEST_CASE("simulator: the all-reduce starts when the last rank arrives", "[simulator]") {
  const auto p = golden_profile(1e-4, 1e-6);
  PlanBuilder r0(0, 2), r1(1, 2);
  r0.compute(3);
  // 500 floats = 2000 bytes per rank; posted, then the optimizer (a 0 ms task) waits for it.
  r0.compute(0, {r0.add(TaskKind::allreduce, {}, 500)});
  r1.compute(0, {r1.add(TaskKind::allreduce, {}, 500)});
  const auto pred = simulate({r0.plan, r1.plan}, p, net_of(p, 2, "flat"));
  // Ring over 2 ranks: 2 steps of alpha + (2000 / 2) bytes * beta = 2 * (0.1 + 1) ms.
  const double ring = 2 * (1e-4 + 1000 * 1e-6);
  CHECK(allreduce_seconds(net_of(p, 2, "flat"), 2000) == Approx(ring));
  CHECK(pred.ranks[0].total_s == Approx(3e-3 + ring));
  CHECK(pred.ranks[1].reduce_s == Approx(3e-3 + ring));  // waiting for rank 0 counts, as in the engine
  CHECK(pred.ranks[0].reduce_s == Approx(ring));
}

TEST_CASE("simulator: an all-reduce shares the medium with a message still in flight", "[simulator]") {
  // Stale pipelining leaves the last exchange in flight while the gradients are reduced: both
  // cross the one shared medium (1 MB/s, no latency). Alone the all-reduce of 2000 bytes per rank
  // takes 2 steps x 2 chunks of 1000 bytes = 4 ms; with a 4000-byte message posted at 0, three
  // transfers share the medium: the ring's two (2000 bytes each) end at 6 ms, the message at 8 ms.
  const auto p = golden_profile(0, 1e-6);
  const auto net = net_of(p, 2, "shared");
  CHECK(allreduce_seconds(net, 2000) == Approx(4e-3));
  PlanBuilder r0(0, 2), r1(1, 2);
  r0.add(TaskKind::send, {}, 0, 1, 4000);
  r0.compute(0, {r0.add(TaskKind::allreduce, {}, 500)});
  r1.add(TaskKind::recv, {}, 0, 0, 4000);
  r1.compute(0, {r1.add(TaskKind::allreduce, {}, 500)});
  const auto pred = simulate({r0.plan, r1.plan}, p, net);
  CHECK(pred.ranks[0].reduce_s == Approx(6e-3));
  CHECK(pred.ranks[1].reduce_s == Approx(6e-3));
  CHECK(pred.ranks[0].total_s == Approx(8e-3));  // then waits for its send
  CHECK(pred.ranks[1].total_s == Approx(6e-3));
  // Alone (no message), the all-reduce takes its analytic time.
  PlanBuilder a0(0, 2), a1(1, 2);
  a0.add(TaskKind::allreduce, {}, 500);
  a1.add(TaskKind::allreduce, {}, 500);
  CHECK(simulate({a0.plan, a1.plan}, p, net).epoch_s == Approx(4e-3));  // the end of a step waits for it too
}

TEST_CASE("simulator: gradient buckets overlap the compute posted after them", "[simulator]") {
  // 1 MB/s per port, no latency: a bucket of 2000 bytes per rank takes 2 ms on 2 ranks (flat ring).
  const auto p = golden_profile(0, 1e-6);
  const auto net = net_of(p, 2, "flat");
  auto plan = [](int rank, bool overlap) {
    PlanBuilder b(rank, 2);
    std::vector<int> buckets;
    b.compute(3);                                                          // layer 1's backward
    if (overlap) buckets.push_back(b.add(TaskKind::allreduce, {0}, 500));  // its bucket, at once
    const int l0 = b.compute(3);                                           // layer 0's backward
    if (!overlap) buckets.push_back(b.add(TaskKind::allreduce, {0}, 500));
    buckets.push_back(b.add(TaskKind::allreduce, {l0}, 500));
    b.compute(0, buckets);  // the optimizer
    return b.plan;
  };
  const auto after = simulate({plan(0, false), plan(1, false)}, p, net);
  const auto overlap = simulate({plan(0, true), plan(1, true)}, p, net);
  CHECK(after.epoch_s == Approx(6e-3 + 4e-3));    // two buckets after the compute: 2 x 2 ms (sharing the ports)
  CHECK(overlap.epoch_s == Approx(6e-3 + 2e-3));  // the first bucket hidden behind layer 0's 3 ms
  CHECK(after.reduce_s == Approx(4e-3));
  CHECK(overlap.reduce_s == Approx(2e-3));
}

TEST_CASE("simulator: the scheduler's plans", "[simulator]") {
  const auto data = graph::load_dataset("sbm:nodes=400,classes=4,degree=8,seed=3,features=16");
  engine::TrainConfig c;
  c.model.layers = 2;
  c.model.hidden = 32;
  const auto owner = graph::partition_graph(data.adj, 2, graph::PartitionMethod::metis_cut, 0);
  const auto parts = graph::build_partitions(data.adj, owner, 2);
  Profile p;
  p.machine = "nominal";
  p.backend = "cpu";
  for (const auto& k : cost_classes()) {
    LinearFit f;
    f.coef_s.assign(k.features.size(), 1e-9);
    f.coef_s[0] = 1e-6;
    p.compute[k.name] = f;
  }
  p.links["inter"] = {5e-5, 1e-7, 1, "test"};  // 10 MB/s: communication-bound
  p.post_s = 1e-6;
  const auto net = make_network(p, 2, "flat", "none");
  auto predict = [&](scheduler::Mode mode, scheduler::Width width) {
    c.mode = mode;
    c.width = width;
    const auto plans = engine::make_plans(data, c, owner, parts);
    const auto pred = simulate(plans.train, p, net);
    CHECK(pred.bytes_sent == plans.train[0].bytes_sent() + plans.train[1].bytes_sent());
    for (const auto& r : pred.ranks) {
      CHECK(r.total_s >= r.compute_s + r.quant_s - 1e-12);
      CHECK(r.total_s == Approx(r.compute_s + r.comm_s + r.quant_s + r.reduce_s).epsilon(1e-9));
    }
    return pred;
  };
  const auto vanilla = predict(scheduler::Mode::vanilla, scheduler::Width::fp32());
  const auto overlap = predict(scheduler::Mode::overlap, scheduler::Width::fp32());
  const auto quant = predict(scheduler::Mode::quant, scheduler::Width::quant(4));
  CHECK(overlap.epoch_s < vanilla.epoch_s);
  CHECK(quant.epoch_s < vanilla.epoch_s);
  CHECK(quant.quant_s > 0);
  CHECK(vanilla.quant_s == 0);

  SECTION("one rank: the sum of its compute costs") {
    const auto one = graph::build_partitions(data.adj, std::vector<std::int32_t>(std::size_t(data.num_nodes), 0), 1);
    c.mode = scheduler::Mode::vanilla;
    c.width = scheduler::Width::fp32();
    const auto plans = engine::make_plans(data, c, std::vector<std::int32_t>(std::size_t(data.num_nodes), 0), one);
    double sum = 0;
    for (const auto& t : plans.train[0].tasks) sum += compute_seconds(t, p);
    const auto pred = simulate(plans.train, p, make_network(p, 1, "flat", "none"));
    CHECK(pred.epoch_s == Approx(sum));
    CHECK(pred.comm_s == 0);
  }
}

TEST_CASE("stale plans measure drift exactly when --stale-bound auto decides the refreshes", "[simulator][peers]") {
  const auto data = graph::load_dataset("sbm:nodes=300,classes=3,degree=6,seed=5,features=8");
  engine::TrainConfig c;
  c.model.layers = 2;
  c.model.hidden = 16;
  c.peers.stale = true;
  const auto owner = graph::partition_graph(data.adj, 2, graph::PartitionMethod::metis_cut, 0);
  const auto parts = graph::build_partitions(data.adj, owner, 2);
  auto unpacks_measuring = [&](const std::vector<scheduler::Plan>& plans) {
    int unpacks = 0, measuring = 0;
    for (const auto& plan : plans)
      for (const auto& t : plan.tasks)
        if (t.kind == scheduler::TaskKind::unpack) {
          ++unpacks;
          measuring += t.measure_drift ? 1 : 0;
        }
    REQUIRE(unpacks > 0);
    return std::pair{unpacks, measuring};
  };
  c.stale_auto = false;
  auto plans = engine::make_plans(data, c, owner, parts);
  CHECK(unpacks_measuring(plans.train).second == 0);
  c.stale_auto = true;  // set without touching peers.measure_drift: derived where the plans are built
  plans = engine::make_plans(data, c, owner, parts);
  const auto [unpacks, measuring] = unpacks_measuring(plans.train);
  CHECK(measuring == unpacks);                              // every stale store compares received with stored rows
  CHECK(unpacks_measuring(plans.train_first).second == 0);  // a fresh (warm-up) epoch has no staleness
  CHECK(engine::plan_peers(c).measure_drift);
  c.peers.stale = false;  // no stale stores, nothing to measure
  CHECK_FALSE(engine::plan_peers(c).measure_drift);
}

TEST_CASE("profiles: round trip, fits and clear errors", "[simulator]") {
  const auto dir = testing::temp_dir("profile");
  Profile p;
  p.machine = "test machine";
  p.backend = "cpu";
  p.date = "2026-11-24";
  p.source = "unit test";
  p.threads = 2;
  p.corun = 2;
  p.post_s = 1.5e-6;
  p.compute["spmm"] = {{1e-6, 2e-10, 3e-9, 3e-10, 4e-10, 5e-10}, 0.99, 27};
  p.links["inter"] = {2e-6, 1e-10, 0.999, "probe"};
  p.links["nodes2x2-1gbit-allreduce"] = {0, 2.5e-8, 0.99, "probe", 4};
  save_profile(p, dir + "/p.yaml");
  const auto q = load_profile(dir + "/p.yaml");
  CHECK(q.machine == p.machine);
  CHECK(q.threads == 2);
  CHECK(q.corun == 2);
  CHECK(q.post_s == Approx(1.5e-6));
  REQUIRE(q.compute.count("spmm"));
  CHECK(q.compute.at("spmm").coef_s[1] == Approx(2e-10));
  CHECK(q.links.at("inter").beta_s_per_byte == Approx(1e-10));
  CHECK(q.links.at("inter").ranks == 2);
  CHECK(q.links.at("nodes2x2-1gbit-allreduce").ranks == 4);

  auto write = [&](const std::string& text) {
    std::ofstream(dir + "/bad.yaml") << text;
    return dir + "/bad.yaml";
  };
  const std::string good = to_yaml(p);
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    const auto at = t.find(from);
    REQUIRE(at != std::string::npos);
    return t.replace(at, from.size(), to);
  };
  CHECK_THROWS_WITH(load_profile(write(replaced("version: 1", "version: 9"))), Catch::Contains("version 9"));
  CHECK_THROWS_WITH(load_profile(write(replaced("threads: 2", "threads: 2\nspeed: 3"))),
                    Catch::Contains("unknown key 'speed'"));
  CHECK_THROWS_WITH(load_profile(write(replaced("  spmm:", "  spmv:"))), Catch::Contains("compute.spmv"));
  CHECK_THROWS_WITH(load_profile(write(replaced("threads: 2", "threads: many"))), Catch::Contains("threads"));
  CHECK_THROWS_WITH(load_profile(dir + "/missing.yaml"), Catch::Contains("missing.yaml"));
  CHECK_THROWS_WITH(load_profile(write(replaced("corun: 2", "corun: 0"))), Catch::Contains("corun 0: must be >= 1"));
  CHECK(load_profile(write(replaced("corun: 2\n", ""))).corun == 1);  // profiles before --corun
  CHECK_THROWS_WITH(load_profile(write(replaced("ranks: 4", "ranks: 1"))), Catch::Contains("ranks' must be >= 2"));

  SECTION("fits recover exact linear costs; negative terms are dropped") {
    std::vector<Sample> s;
    for (double x : {1e3, 1e4, 1e5, 1e6})
      for (double y : {10.0, 100.0, 1000.0}) s.push_back({{1, x, y}, 2e-6 + 3e-9 * x + 5e-8 * y});
    const auto f = fit_linear(s);
    CHECK(f.coef_s[0] == Approx(2e-6));
    CHECK(f.coef_s[1] == Approx(3e-9));
    CHECK(f.coef_s[2] == Approx(5e-8));
    CHECK(f.r2 == Approx(1.0));
    std::vector<Sample> neg;
    for (double x : {1e3, 1e4, 1e5}) neg.push_back({{1, x}, 1e-9 * x});  // no intercept at all
    neg.back().seconds *= 0.9;  // makes the unconstrained intercept positive or negative: either way >= 0
    for (double c : fit_linear(neg).coef_s) CHECK(c >= 0);
    const auto l = fit_link({{1000, 1e-5 + 1000e-9}, {1e6, 1e-5 + 1e-3}});
    CHECK(l.alpha_s == Approx(1e-5));
    CHECK(l.beta_s_per_byte == Approx(1e-9));
  }
  SECTION("networks: topology and link values are checked") {
    CHECK_THROWS_WITH(make_network(p, 4, "nodes=3x2", "none"), Catch::Contains("nodes=3x2"));
    CHECK_THROWS_WITH(make_network(p, 4, "ring", "none"), Catch::Contains("allowed flat, shared"));
    CHECK_THROWS_WITH(make_network(p, 2, "", "fast"), Catch::Contains("--link 'fast'"));
    CHECK_THROWS_WITH(make_network(p, 2, "flat", "1gbit"), Catch::Contains("shared"));
    CHECK_THROWS_WITH(make_network(p, 2, "", "1gbit"), Catch::Contains("'lo'"));
    auto with_lo = p;
    with_lo.links["lo"] = {3e-5, 1e-10, 1, "probe"};
    const auto emulated = make_network(with_lo, 2, "", "1gbit");
    CHECK(emulated.topology.kind == Topology::shared);
    CHECK(emulated.inter.beta_s_per_byte == Approx(8e-9));
    CHECK(emulated.inter.alpha_s == Approx(3e-5));
    CHECK(emulated.bucket_bytes == 256 * 1024);  // link_emulation.sh's tbf burst
    CHECK(emulated.peak_bytes_per_s == Approx(1e10));
    with_lo.links["lo-1gbit-allreduce"] = {4e-5, 9e-9, 1, "probe"};
    CHECK(make_network(with_lo, 2, "shared", "1gbit").allreduce_measured);
    CHECK(parse_rate_bps("250mbit") == Approx(2.5e8));
  }
  SECTION("networks: the emulated cluster (cluster_emulation.sh 2 2 1gbit)") {
    auto c = p;
    c.links.erase("nodes2x2-1gbit-allreduce");
    c.links["lo"] = {3e-5, 1e-10, 1, "probe"};
    c.links["inter"] = {1e-6, 1e-11, 1, "probe"};
    const auto net = make_network(c, 4, "nodes=2x2", "1gbit");
    CHECK(net.topology.kind == Topology::nodes);
    CHECK(net.topology.ranks_per_node == 2);
    CHECK(net.inter.beta_s_per_byte == Approx(8e-9));  // each host's NIC at the rate
    CHECK(net.inter.alpha_s == Approx(3e-5));
    CHECK(net.intra.beta_s_per_byte == Approx(1e-11));  // same host: shared memory
    CHECK(net.bucket_bytes == 0);
    CHECK(net.one_machine);
    CHECK(net.ranks_sharing_cores() == 4);  // the "hosts" share this machine's cores
    CHECK(make_network(c, 4, "nodes=2x2", "none").ranks_sharing_cores() == 2);
    CHECK_FALSE(net.allreduce_measured);                                   // the ring model without a calibrated class
    CHECK(allreduce_cost(net, 4e6).transfer_s == Approx(6 * 1e6 * 8e-9));  // 2 (P - 1) steps of bytes / P
    // Calibrated on the same layout (4 ranks): taken as measured; scaled like the ring elsewhere.
    c.links["nodes2x2-1gbit-allreduce"] = {1e-4, 2.5e-8, 1, "probe", 4};
    const auto measured = make_network(c, 4, "nodes=2x2", "1gbit");
    CHECK(measured.allreduce_measured);
    CHECK(allreduce_cost(measured, 4e6).transfer_s == Approx(0.1));
    CHECK(allreduce_cost(measured, 4e6).latency_s == Approx(1e-4));
    // Measured on 2 ranks, used on 4: on the shared medium the ring's 6 steps carry 4 chunks each
    // (measured on this machine: 15.7 ns per byte at 2 ranks, 47.6 at 4, i.e. x 3).
    c.links["lo-1gbit-allreduce"] = {4e-5, 9e-9, 1, "probe"};
    CHECK(allreduce_cost(make_network(c, 4, "shared", "1gbit"), 4e6).transfer_s == Approx(9e-9 * 4e6 * 3));
    c.links["inter-allreduce"] = {4e-5, 9e-9, 1, "probe"};  // each rank its own port: x 1.5
    CHECK(allreduce_cost(make_network(c, 4, "flat", "none"), 4e6).transfer_s == Approx(9e-9 * 4e6 * 1.5));
    CHECK_THROWS_WITH(make_network(c, 4, "flat", "1gbit"), Catch::Contains("nodes=NxG"));
    CHECK_THROWS_WITH(make_network(c, 4, "nodes=3x2", "1gbit"), Catch::Contains("nodes=3x2"));
  }
}

TEST_CASE("host-speed probe: compute rescaled by the geometric mean of the probes' ratios", "[simulator]") {
  const auto dir = testing::temp_dir("probe");
  Profile p;
  p.backend = "cpu";
  p.threads = 1;
  p.corun = 2;
  p.compute["spmm"] = {{1e-6, 2e-10, 3e-9, 3e-10, 4e-10, 5e-10}, 0.99, 27};
  p.compute["copy"] = {{0, 1e-9, 2e-9, 3e-9}, 0.99, 6};
  p.compute["loss"] = {{1e-6, 1e-9}, 0.99, 4};
  p.probe = {"full", 1, 2, {{"calib/spmm/a", 1e-3}, {"calib/spmm/b", 4e-3}, {"calib/copy/c", 2e-4}}};
  save_profile(p, dir + "/p.yaml");
  const auto loaded = load_profile(dir + "/p.yaml");
  CHECK(loaded.probe.grid == "full");
  CHECK(loaded.probe.corun == 2);
  REQUIRE(loaded.probe.seconds.size() == 3);
  CHECK(loaded.probe.seconds.at("calib/spmm/b") == Approx(4e-3));

  // Now: spmm/a 2x slower, spmm/b 8x slower, copy/c 0.5x: geometric mean (2 * 8 * 0.5)^(1/3) = 2,
  // for every class (loss has no probe benchmark); a benchmark the profile did not probe counts not.
  HostProbe now = p.probe;
  now.seconds = {{"calib/spmm/a", 2e-3}, {"calib/spmm/b", 32e-3}, {"calib/copy/c", 1e-4}, {"calib/x/extra", 1}};
  save_probe(now, dir + "/now.yaml");
  auto q = loaded;
  CHECK(rescale_to_probe(q, load_probe(dir + "/now.yaml")) == Approx(2.0));
  for (const auto& [cls, fit] : p.compute)
    for (std::size_t i = 0; i < fit.coef_s.size(); ++i)
      CHECK(q.compute.at(cls).coef_s[i] == Approx(2.0 * fit.coef_s[i]));

  auto fresh = [&] { return loaded; };
  auto other = now;
  other.corun = 1;
  auto r = fresh();
  CHECK_THROWS_WITH(rescale_to_probe(r, other), Catch::Contains("corun 1") && Catch::Contains("corun 2"));
  other = now;
  other.seconds.erase("calib/copy/c");
  CHECK_THROWS_WITH(rescale_to_probe(r, other), Catch::Contains("calib/copy/c"));
  Profile none = fresh();
  none.probe = {};
  CHECK_THROWS_WITH(rescale_to_probe(none, now), Catch::Contains("no probe"));
  std::ofstream(dir + "/bad.yaml") << "version: 1\ngrid: full\nthreads: 1\ncorun: 2\nseconds: {calib/spmm/a: -1}\n";
  CHECK_THROWS_WITH(load_probe(dir + "/bad.yaml"), Catch::Contains("bad.yaml") && Catch::Contains("calib/spmm/a"));
  std::ofstream(dir + "/bad.yaml") << "version: 1\ngrid: huge\nthreads: 1\ncorun: 2\nseconds: {a: 1}\n";
  CHECK_THROWS_WITH(load_probe(dir + "/bad.yaml"), Catch::Contains("grid"));
}

TEST_CASE("simulator: ranks on one host share its cores", "[simulator]") {
  auto p = golden_profile(0, 1e-6);
  PlanBuilder r0(0, 2), r1(1, 2);
  r0.compute(2);
  r1.compute(1);
  p.cores_per_host = 2;  // enough for both: no slowdown
  auto pred = simulate({r0.plan, r1.plan}, p, make_network(p, 2, "flat", "none"));
  CHECK(pred.ranks[0].total_s == Approx(2e-3));
  CHECK(pred.ranks[1].total_s == Approx(1e-3));
  p.cores_per_host = 1;  // both at half speed until rank 1 is done at 2 ms, then rank 0 alone
  pred = simulate({r0.plan, r1.plan}, p, make_network(p, 2, "flat", "none"));
  CHECK(pred.ranks[1].total_s == Approx(2e-3));
  CHECK(pred.ranks[0].total_s == Approx(3e-3));
  CHECK(pred.ranks[0].compute_s == Approx(3e-3));  // wall time of the task, as the engine measures it
  // Oversubscribed: a rank waiting on a message keeps polling and takes its share of the core.
  PlanBuilder w0(0, 2), w1(1, 2);
  const int c0 = w0.compute(2);
  w0.add(TaskKind::send, {c0}, 0, 1, 1000, 3);
  const int rv = w1.add(TaskKind::recv, {}, 0, 0, 1000, 3);
  w1.compute(0, {rv});
  pred = simulate({w0.plan, w1.plan}, p, make_network(p, 2, "flat", "none"));
  CHECK(pred.ranks[0].compute_s == Approx(4e-3));
  CHECK(pred.ranks[1].total_s == Approx(5e-3));  // + 1000 bytes at 1 MB/s
  // Separate hosts (nodes=2x1) do not share.
  pred = simulate({r0.plan, r1.plan}, p, make_network(p, 2, "nodes=2x1", "none"));
  CHECK(pred.ranks[0].total_s == Approx(2e-3));
}

TEST_CASE("partition shapes: exact for real partitions, consistent for the statistical model", "[simulator]") {
  const auto data = graph::load_dataset("sbm:nodes=300,classes=3,degree=6,seed=5,features=8");
  const auto owner = graph::partition_graph(data.adj, 3, graph::PartitionMethod::metis_cut, 0);
  const auto parts = graph::build_partitions(data.adj, owner, 3);
  for (const auto& part : parts) {
    const auto s = graph::shape_of(part);
    CHECK(s.num_inner() == part.num_inner());
    CHECK(s.num_local() == part.num_local());
    CHECK(s.nnz_central + s.nnz_marginal == part.adj.nnz());
    std::int64_t to_halo = 0;
    for (auto c : part.adj.indices) to_halo += c >= part.num_inner();
    CHECK(s.nnz_to_halo == to_halo);
    CHECK(s.nnz_to_halo <= s.nnz_marginal);  // only marginal rows have remote in-neighbours
  }
  const auto m = graph::parse_shape_model("nodes=1000003,edges=20000000,halo=0.5,marginal=0.4,remote=0.1,peers=5");
  const auto shapes = graph::model_shapes(m, 16);
  std::int64_t nodes = 0;
  for (const auto& s : shapes) {
    nodes += s.num_inner();
    int peers = 0;
    for (auto h : s.halo_rows) peers += h > 0;
    CHECK(peers == 5);
  }
  CHECK(nodes == 1000003);
  scheduler::ModelShape ms;
  ms.dims = {100, 256, 47};
  std::vector<scheduler::Plan> plans;
  for (const auto& s : shapes)
    plans.push_back(scheduler::build_plan(s, ms, scheduler::Strategy::overlap, true, scheduler::Width::quant(4)));
  CHECK_NOTHROW(scheduler::validate(plans));  // every send meets its receive
  CHECK_THROWS_WITH(graph::parse_shape_model("nodes=10,edges=5,colour=3"), Catch::Contains("unknown key 'colour'"));
  CHECK_THROWS_WITH(graph::parse_shape_model("nodes=10"), Catch::Contains("needs nodes"));
  CHECK_THROWS_WITH(graph::parse_shape_model("nodes=10,edges=5,remote=0.5,marginal=0.2"), Catch::Contains("remote"));
}

TEST_CASE("simulator: the emulated link's token bucket", "[simulator]") {
  // 1 MB/s medium with a 1000-byte bucket spent at 1 GB/s: 3000 bytes take 1 us for the first
  // 1000 and 2 ms for the rest; after 0.5 ms idle, 500 bytes of credit make a 1000-byte message
  // take 0.5 ms.
  auto p = golden_profile(0, 1e-6);
  p.compute["bias_act"] = {{0.0, 0.5e-3, 0.5e-3, 0.5e-3}, 1, 0};
  Network net = make_network(p, 2, "shared", "none");
  net.bucket_bytes = 1000;
  net.peak_bytes_per_s = 1e9;
  PlanBuilder r0(0, 2), r1(1, 2);
  const int s1 = r0.add(TaskKind::send, {}, 0, 1, 3000, 1);
  const int c = r0.compute(1, {s1});  // 0.5 ms after the first message is through
  r0.add(TaskKind::send, {c}, 0, 1, 1000, 2);
  const int v1 = r1.add(TaskKind::recv, {}, 0, 0, 3000, 1);
  const int v2 = r1.add(TaskKind::recv, {}, 0, 0, 1000, 2);
  r1.compute(0, {v1, v2});
  const auto pred = simulate({r0.plan, r1.plan}, p, net, true);
  CHECK(pred.timeline[1][2].start_s == Approx(2e-3 + 1e-6 + 0.5e-3 + 0.5e-3).epsilon(1e-3));
  CHECK(pred.timeline[0][1].start_s == Approx(2e-3 + 1e-6).epsilon(1e-3));
}

TEST_CASE("simulator: the token bucket makes progress late in a long epoch", "[simulator]") {
  // The emulated 250 Mbit/s link (256 KiB burst at the loopback's 10 GB/s): messages posted late in
  // an epoch (where a double's step is ~1e-14 s, more at larger times) finish after their bytes'
  // time at the rate. The bucket's drain time of a sub-byte credit left by rounding was below the
  // clock's step: next_completion() returned now forever (a 60M-edge simulation at P = 4 spun).
  auto p = golden_profile(0, 1e-6);
  p.links["lo"] = {3e-5, 1e-10, 1, "probe"};
  const auto net = make_network(p, 2, "", "250mbit");
  const double rate = 2.5e8 / 8, bytes = 8e6, burst = 256 * 1024;
  for (const double t0 : {0.5, 3.0, 17.0, 167.0, 1234.5, 98765.4}) {
    FlowNetwork flows(net);
    flows.advance(t0);  // idle: the bucket stays full
    double now = t0;
    int done = 0, events = 0;
    for (int k = 0; k < 3; ++k) {  // three messages, 10 ms of idle credit before each
      now += 0.01;
      flows.advance(now);
      const int id = flows.start(0, 1, bytes, now);
      while (events < 100000) {
        ++events;
        const double t = flows.next_completion();
        REQUIRE(t < 1e300);
        const auto ended = flows.advance(t);
        now = t;
        if (std::find(ended.begin(), ended.end(), id) != ended.end()) {
          ++done;  // only a message that completed counts
          break;
        }
      }
    }
    INFO("t0 = " << t0 << ", events " << events);
    CHECK(events < 1000);
    CHECK(done == 3);
    // At most a full burst ahead of the rate per message (and never behind it).
    CHECK(now - t0 >= 3 * (0.01 + (bytes - burst) / rate) - 1e-6);
    CHECK(now - t0 <= 3 * (0.01 + 3e-5 + bytes / rate) + 1e-6);
  }
}

TEST_CASE("simulator: per-channel links from the engine's probes", "[simulator]") {
  // Class: no latency, 1 MB/s; the pair 0 -> 2 measured at 0.5 MB/s with 1 ms latency.
  auto p = golden_profile(0, 1e-6);
  p.links["inter@0-2"] = {1e-3, 2e-6, 1, "probe"};
  const auto net = make_network(p, 3, "flat", "none");
  REQUIRE(net.pairs.size() == 1);
  PlanBuilder a(0, 3), b(1, 3), c(2, 3);
  a.add(TaskKind::send, {}, 0, 2, 1000, 1);
  b.add(TaskKind::send, {}, 0, 2, 1000, 2);
  const int r0 = c.add(TaskKind::recv, {}, 0, 0, 1000, 1);
  const int r1 = c.add(TaskKind::recv, {}, 0, 1, 1000, 2);
  c.compute(0, {r0});
  c.compute(0, {r1});
  const auto pred = simulate({a.plan, b.plan, c.plan}, p, net, true);
  // 1 -> 2 alone on rank 2's port until 1 ms (1000 bytes at 1 MB/s: done at 1 ms); 0 -> 2 starts
  // after its 1 ms latency at its pair's 0.5 MB/s: done at 3 ms.
  CHECK(pred.ranks[1].total_s == Approx(1e-3));
  CHECK(pred.ranks[0].total_s == Approx(3e-3));
}

TEST_CASE("link fit: one alpha-beta fit for the engine's probe and the calibration", "[simulator][link_fit]") {
  // Exact line: alpha 20 us, 1 ns per byte.
  const std::vector<std::pair<double, double>> line = {{1e3, 20e-6 + 1e-6}, {1e5, 20e-6 + 1e-4}, {1e6, 20e-6 + 1e-3}};
  const auto f = scheduler::fit_alpha_beta(line);
  CHECK(f.alpha_s == Approx(20e-6).epsilon(1e-9));
  CHECK(f.beta_s_per_byte == Approx(1e-9).epsilon(1e-9));
  CHECK(f.r2 == Approx(1.0));
  // Round trips of the same messages with a 1-byte reply take 2 alpha + beta m: alpha halved.
  std::vector<std::pair<double, double>> rt;
  for (const auto& [m, s] : line) rt.push_back({m, s + 20e-6});
  const auto g = scheduler::fit_round_trip(rt);
  CHECK(g.alpha_s == Approx(20e-6).epsilon(1e-9));
  CHECK(g.beta_s_per_byte == Approx(1e-9).epsilon(1e-9));
  // A negative intercept (latency under the timer's resolution): through the origin, alpha 0.
  const auto h = scheduler::fit_alpha_beta({{1e3, 0.5e-6}, {1e6, 1e-3}, {2e6, 2.1e-3}});
  CHECK(h.alpha_s == 0);
  CHECK(h.beta_s_per_byte > 0);
  // The simulator's fit_link is this fit.
  const auto l = simulator::fit_link(line);
  CHECK(l.alpha_s == f.alpha_s);
  CHECK(l.beta_s_per_byte == f.beta_s_per_byte);
  CHECK_THROWS_WITH(scheduler::fit_alpha_beta({{1e3, 1e-6}}), Catch::Contains("at least 2"));
}

TEST_CASE("simulator: an unpack through scratch costs one more pass over its rows", "[simulator]") {
  // Per element: unpack8 1 us, copy 2 us (working sets all on the cached level's coefficient).
  Profile p = golden_profile(0, 1e-6);
  p.compute["unpack8"] = {{0.0, 1e-6, 1e-6, 1e-6}, 1, 0};
  p.compute["copy"] = {{0.0, 2e-6, 2e-6, 2e-6}, 1, 0};
  Task u;
  u.kind = TaskKind::unpack;
  u.width = scheduler::Width::quant(8);
  u.rows = 10;
  u.cols = 10;
  u.row_sel = {scheduler::RowSet::halo, 0, 0, 1};
  CHECK_FALSE(scheduler::unpacks_via_scratch(u));
  CHECK(compute_seconds(u, p) == Approx(100e-6));
  u.row_sel = {scheduler::RowSet::range, 0, 10, -1};  // into a stale store: decoded in place
  CHECK_FALSE(scheduler::unpacks_via_scratch(u));
  u.measure_drift = true;  // --stale-bound auto: compared with the stored rows first
  CHECK(scheduler::unpacks_via_scratch(u));
  CHECK(compute_seconds(u, p) == Approx(100e-6 + 200e-6));
  u.measure_drift = false;
  u.row_sel = {scheduler::RowSet::halo, 0, 0, 1};
  u.scale = 2;  // boundary sampling
  CHECK(compute_seconds(u, p) == Approx(300e-6));
}

TEST_CASE("cost model: a sparse product's per-nonzero cost is its own feature", "[simulator]") {
  // A kernel with a per-call, a per-output, a per-nonzero and a per-nonzero-and-column cost, timed
  // at the calibration grid's narrow and wide shapes (working sets all cached: W of 16 x cols),
  // then asked about a wide product: the fit must not charge the per-nonzero cost to nnz x cols.
  const auto truth = [](double rows, double cols, double nnz) {
    return 2e-5 + 4e-10 * rows * cols + 7e-9 * nnz + 4e-10 * nnz * cols;
  };
  const auto task = [](double rows, double cols, double nnz) {
    Task t;
    t.kind = TaskKind::spmm_features;
    t.rows = std::int64_t(rows);
    t.cols = std::int64_t(cols);
    t.inner = 16;
    t.nnz = std::int64_t(nnz);
    return t;
  };
  std::vector<Sample> samples;
  for (double rows : {4096.0, 16384.0})
    for (double per_row : {16.0, 128.0})
      for (double cols : {16.0, 256.0}) {
        const auto [cls, f] = task_features(task(rows, cols, rows * per_row));
        CHECK(cls == "spmm_features");
        REQUIRE(f.size() == cost_class(cls).features.size());
        CHECK(f[2] == rows * per_row);  // the nnz feature
        samples.push_back({f, truth(rows, cols, rows * per_row)});
      }
  Profile p;
  p.compute["spmm_features"] = fit_linear(samples);
  const double rows = 6821, cols = 256, nnz = 1013063;  // Amazon Computers' X W on one of 2 ranks
  CHECK(compute_seconds(task(rows, cols, nnz), p) == Approx(truth(rows, cols, nnz)).epsilon(0.01));
}
