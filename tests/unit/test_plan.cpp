// Scheduler: a hand-made partition's plan checked task by task; structural properties of the
// overlap strategy; bytes per epoch against the partition's communication volume; invalid
// plans (missing receive, cycle, size mismatch) rejected with a clear message.
#include <algorithm>
#include <catch2/catch.hpp>
#include <set>

#include "base/error.hpp"
#include "graph/dataset.hpp"
#include "scheduler/build_plan.hpp"
#include "scheduler/wire_format.hpp"

using namespace adaqp;
using namespace adaqp::scheduler;

namespace {

// 0-1, 1-2, 2-3, 3-4, 4-5, 1-4 split {0,1,2} | {3,4,5}: rank 0 has central {0}, marginal {1, 2},
// halo {3, 4}; it sends rows of {1, 2} to rank 1.
std::vector<graph::LocalPartition> six_nodes() {
  const std::vector<std::int64_t> src = {0, 1, 2, 3, 4, 1}, dst = {1, 2, 3, 4, 5, 4};
  return graph::build_partitions(graph::symmetrize(6, src, dst), {0, 0, 0, 1, 1, 1}, 2);
}

// GCN 4 -> 2 -> 3: layer 0 transform-first (2 <= 4), layer 1 aggregate-first (3 > 2).
ModelShape small_gcn() {
  ModelShape m;
  m.dims = {4, 2, 3};
  m.dropout = 0.5;
  return m;
}

struct Expected {
  TaskKind kind;
  const char* label;
  std::vector<int> deps;
  std::int64_t rows, cols, nnz, bytes;
  int peer;
};

}  // namespace

TEST_CASE("vanilla plan of a hand-made partition, task by task", "[plan]") {
  const auto plans = build_plans(six_nodes(), small_gcn(), Strategy::vanilla, true);
  // spmm bytes = nnz * (4 B index + 4 B value + cols * 4 B) + rows * cols * 4 B.
  // Aggregation of rank 0: 6 in-edges + 3 self-loops = 9 non-zeros; its transpose has 5 rows.
  const std::vector<Expected> want = {
      {TaskKind::dropout, "L0 fwd dropout", {}, 3, 4, 0, 0, -1},
      {TaskKind::gemm, "L0 fwd X*W", {0}, 3, 2, 0, 0, -1},
      {TaskKind::recv, "L0 fwd recv<-1", {}, 2, 2, 0, 16, 1},
      {TaskKind::pack, "L0 fwd pack->1", {1}, 2, 2, 0, 16, 1},
      {TaskKind::send, "L0 fwd send->1", {3}, 2, 2, 0, 16, 1},
      {TaskKind::unpack, "L0 fwd unpack<-1", {2}, 2, 2, 0, 16, 1},
      {TaskKind::spmm, "L0 fwd A*[all]", {1, 5}, 3, 2, 9, 168, -1},
      {TaskKind::bias_act, "L0 fwd +bias, relu", {6}, 3, 2, 0, 0, -1},
      {TaskKind::dropout, "L1 fwd dropout", {7}, 3, 2, 0, 0, -1},
      {TaskKind::recv, "L1 fwd recv<-1", {}, 2, 2, 0, 16, 1},
      {TaskKind::pack, "L1 fwd pack->1", {8}, 2, 2, 0, 16, 1},
      {TaskKind::send, "L1 fwd send->1", {10}, 2, 2, 0, 16, 1},
      {TaskKind::unpack, "L1 fwd unpack<-1", {9}, 2, 2, 0, 16, 1},
      {TaskKind::spmm, "L1 fwd A*[all]", {8, 12}, 3, 2, 9, 168, -1},
      {TaskKind::gemm, "L1 fwd A*X*W", {13}, 3, 3, 0, 0, -1},
      {TaskKind::bias_act, "L1 fwd +bias", {14}, 3, 3, 0, 0, -1},
      {TaskKind::loss, "L1 bwd softmax cross-entropy", {15}, 3, 3, 0, 0, -1},
      {TaskKind::bias_grad, "L1 bwd bias grad", {16}, 3, 3, 0, 0, -1},
      {TaskKind::gemm, "L1 bwd dW=M^T*G", {16}, 2, 3, 0, 0, -1},
      {TaskKind::gemm, "L1 bwd dM=G*W^T", {16}, 3, 2, 0, 0, -1},
      {TaskKind::spmm, "L1 bwd A^T*[all]", {19}, 5, 2, 9, 184, -1},
      {TaskKind::recv, "L1 bwd recv<-1", {}, 2, 2, 0, 16, 1},
      {TaskKind::pack, "L1 bwd pack->1", {20}, 2, 2, 0, 16, 1},
      {TaskKind::send, "L1 bwd send->1", {22}, 2, 2, 0, 16, 1},
      {TaskKind::unpack, "L1 bwd unpack<-1", {20, 21}, 2, 2, 0, 16, 1},
      {TaskKind::dropout_backward, "L1 bwd dropout'", {24, 20}, 3, 2, 0, 0, -1},
      {TaskKind::act_backward, "L0 bwd relu'", {25}, 3, 2, 0, 0, -1},
      {TaskKind::bias_grad, "L0 bwd bias grad", {26}, 3, 2, 0, 0, -1},
      {TaskKind::spmm, "L0 bwd A^T*[all]", {26}, 5, 2, 9, 184, -1},
      {TaskKind::recv, "L0 bwd recv<-1", {}, 2, 2, 0, 16, 1},
      {TaskKind::pack, "L0 bwd pack->1", {28}, 2, 2, 0, 16, 1},
      {TaskKind::send, "L0 bwd send->1", {30}, 2, 2, 0, 16, 1},
      {TaskKind::unpack, "L0 bwd unpack<-1", {28, 29}, 2, 2, 0, 16, 1},
      {TaskKind::gemm, "L0 bwd dW=X^T*G", {32, 28}, 4, 2, 0, 0, -1},
      // --allreduce after: one bucket per layer (its weight and bias), last layer first.
      {TaskKind::allreduce, "L1 bwd all-reduce gradients", {17, 18}, 9, 0, 0, 36, -1},
      {TaskKind::allreduce, "L0 bwd all-reduce gradients", {27, 33}, 10, 0, 0, 40, -1},
      {TaskKind::optimizer, "optimizer step", {34, 35}, 19, 0, 0, 0, -1},
  };
  const auto& tasks = plans[0].tasks;
  REQUIRE(tasks.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i, tasks[i].label);
    CHECK(tasks[i].kind == want[i].kind);
    CHECK(tasks[i].label == want[i].label);
    CHECK(tasks[i].deps == want[i].deps);
    CHECK(tasks[i].rows == want[i].rows);
    CHECK(tasks[i].cols == want[i].cols);
    CHECK(tasks[i].nnz == want[i].nnz);
    CHECK(tasks[i].bytes == want[i].bytes);
    CHECK(tasks[i].peer == want[i].peer);
  }
  // Forward pack gathers the send list; backward pack the halo rows; backward unpack adds.
  CHECK(tasks[3].row_sel.kind == RowSet::send_list);
  CHECK(tasks[22].row_sel.kind == RowSet::halo);
  CHECK(tasks[24].accumulate);
  CHECK_FALSE(tasks[5].accumulate);
  CHECK(plans[0].bytes_sent() == 4 * 16);
}

TEST_CASE("overlap: central rows never wait for the exchange", "[plan]") {
  for (const auto& plan : build_plans(six_nodes(), small_gcn(), Strategy::overlap, true)) {
    // waits[t]: t depends, transitively, on a receive of its own layer and direction.
    std::vector<std::set<int>> recv_closure(plan.tasks.size());
    for (const auto& t : plan.tasks) {
      if (t.kind == TaskKind::recv) recv_closure[t.id].insert(t.id);
      for (int d : t.deps) recv_closure[t.id].insert(recv_closure[d].begin(), recv_closure[d].end());
    }
    auto waits = [&](int id) {
      const auto& t = plan.tasks[id];
      for (int r : recv_closure[id])
        if (plan.tasks[r].layer == t.layer && plan.tasks[r].dir == t.dir) return true;
      return false;
    };
    int central = 0, marginal = 0, halo_first = 0;
    for (const auto& t : plan.tasks) {
      if (t.label.ends_with("A*[central]")) {
        ++central;
        CHECK_FALSE(waits(t.id));
      }
      if (t.label.ends_with("A*[marginal]")) {
        ++marginal;
        CHECK(waits(t.id));
      }
      // Backward: halo gradients are computed and sent before the inner rows are aggregated.
      if (t.label.ends_with("A^T*[inner]")) {
        ++halo_first;
        CHECK(plan.tasks[t.id - 1].kind == TaskKind::send);
      }
    }
    CHECK(central == 2);
    CHECK(marginal == 2);
    CHECK(halo_first == 2);
  }
}

TEST_CASE("bytes per epoch = communication volume x exchanged columns x 4, forward and backward", "[plan]") {
  graph::LoadOptions opt;
  opt.features = false;
  const auto d = graph::load_dataset("cora", opt);
  for (int P : {2, 3, 4}) {
    const auto owner = graph::partition_graph(d.adj, P, graph::PartitionMethod::metis_cut, 0);
    const auto parts = graph::build_partitions(d.adj, owner, P);
    const auto volume = graph::partition_stats(parts).comm_volume_rows;
    for (auto strategy : {Strategy::vanilla, Strategy::overlap}) {
      // GCN 1433 -> 256 -> 256 -> 7: exchanged columns 256, 256, 7 (all transform-first);
      // SAGE 1433 -> 2048 -> 7: the aggregate-first first layer reads its halo rows from the
      // rank's features (no exchange), then 7; GCN exchanging layer inputs (stale pipelining's
      // order): first layer local, then 256 and 256 both ways.
      ModelShape gcn;
      gcn.dims = {1433, 256, 256, 7};
      ModelShape sage;
      sage.sage = true;
      sage.dims = {1433, 2048, 7};
      ModelShape inputs = gcn;
      inputs.exchange_inputs = true;
      struct Case {
        ModelShape shape;
        std::int64_t fwd_columns, bwd_columns;
        bool halo_features;
      };
      const Case cases[] = {
          {gcn, 256 + 256 + 7, 256 + 256 + 7, false}, {sage, 7, 7, true}, {inputs, 256 + 256, 256 + 256, true}};
      for (const auto& [shape, fwd_columns, bwd_columns, halo_features] : cases) {
        const auto plans = build_plans(parts, shape, strategy, true);
        std::int64_t fwd = 0, bwd = 0;
        for (const auto& p : plans) {
          CHECK(p.halo_features == halo_features);
          for (const auto& t : p.tasks)
            if (t.kind == TaskKind::send) (t.dir == Direction::forward ? fwd : bwd) += t.bytes;
        }
        CAPTURE(P, to_string(strategy), shape.sage, shape.exchange_inputs);
        CHECK(fwd == volume * fwd_columns * 4);
        // The first layer needs no input gradient, so no backward exchange of width 1433.
        CHECK(bwd == volume * bwd_columns * 4);
        const auto eval = build_plans(parts, shape, strategy, false);
        std::int64_t eval_bytes = 0;
        for (const auto& p : eval) eval_bytes += p.bytes_sent();
        CHECK(eval_bytes == fwd);
      }
    }
  }
}

TEST_CASE("quantized plans: every message has the wire-format size, evaluation stays fp32", "[plan]") {
  for (Width bits : {Width::quant(2), Width::quant(4), Width::quant(8), Width::fp16(), Width::bf16()}) {
    const auto plans = build_plans(six_nodes(), small_gcn(), Strategy::overlap, true, bits);
    for (const auto& p : plans) {
      CHECK(p.width == bits);
      for (const auto& t : p.tasks)
        if (t.kind == TaskKind::send || t.kind == TaskKind::recv || t.kind == TaskKind::pack ||
            t.kind == TaskKind::unpack) {
          CAPTURE(bits, t.label);
          CHECK(t.width == bits);
          CHECK(t.bytes == message_bytes(t.rows, t.cols, bits));
          CHECK(t.meta_bytes == meta_bytes(t.rows, bits));
        }
      // Rank 0 sends 2 rows of 2 columns in each of 4 exchanges.
      CHECK(p.bytes_sent() == 4 * message_bytes(2, 2, bits));
      CHECK(p.bytes_meta() == 4 * meta_bytes(2, bits));
    }
    for (const auto& p : build_plans(six_nodes(), small_gcn(), Strategy::overlap, false, bits))
      CHECK(p.width == Width::fp32());
  }
  CHECK_THROWS_WITH(build_plan(six_nodes()[0], small_gcn(), Strategy::vanilla, true, Width::quant(3)),
                    Catch::Contains("--bits 3"));
}

TEST_CASE("invalid plans are rejected with a clear message", "[plan]") {
  auto plans = build_plans(six_nodes(), small_gcn(), Strategy::vanilla, true);
  SECTION("a missing receive") {
    auto broken = plans;
    auto& tasks = broken[1].tasks;
    for (auto& t : tasks)
      if (t.kind == TaskKind::recv) {
        t.kind = TaskKind::bias_grad;  // rank 1 no longer receives this message
        t.lane = Lane::compute;
        break;
      }
    CHECK_THROWS_WITH(validate(broken), Catch::Contains("plan of rank 0") && Catch::Contains("send to 1") &&
                                            Catch::Contains("no matching recv in the plan of rank 1"));
  }
  SECTION("a size mismatch") {
    auto broken = plans;
    for (auto& t : broken[0].tasks)
      if (t.kind == TaskKind::send) {
        t.bytes += 4;
        break;
      }
    CHECK_THROWS_WITH(validate(broken), Catch::Contains("sends 20 bytes") && Catch::Contains("expects 16 bytes"));
  }
  SECTION("a cycle") {
    auto broken = plans[0];
    broken.tasks[1].deps.push_back(6);  // gemm <- spmm <- gemm
    CHECK_THROWS_WITH(validate(broken), Catch::Contains("plan of rank 0") && Catch::Contains("cycle"));
  }
  SECTION("a dependency on a missing task") {
    auto broken = plans[0];
    broken.tasks[3].deps.push_back(999);
    CHECK_THROWS_WITH(validate(broken), Catch::Contains("task 3") && Catch::Contains("missing task 999"));
  }
  SECTION("a parameter in no all-reduce bucket, and an optimizer that does not wait") {
    auto broken = plans[0];
    for (auto& t : broken.tasks)
      if (t.kind == TaskKind::allreduce && t.layer == 0) {  // layer 0's bias (its last 2 elements) left out
        t.grad_end -= 2;
        t.rows -= 2;
      }
    CHECK_THROWS_WITH(validate(broken), Catch::Contains("parameter layer0.bias is in 0 all-reduce buckets"));
    broken = plans[0];
    for (auto& t : broken.tasks)
      if (t.kind == TaskKind::allreduce && t.layer == 0) t.rows -= 1;  // sizes disagree with the range
    CHECK_THROWS_WITH(validate(broken), Catch::Contains("reduces 9 elements of a 10-element bucket"));
    broken = plans[0];
    for (auto& t : broken.tasks)
      if (t.kind == TaskKind::allreduce && t.layer == 1) {  // also layer 0's bias
        t.grad_begin -= 2;
        t.rows += 2;
      }
    CHECK_THROWS_WITH(validate(broken), Catch::Contains("parameter layer0.bias is in 2 all-reduce buckets"));
    broken = plans[0];
    broken.tasks.back().deps.pop_back();
    CHECK_THROWS_WITH(validate(broken), Catch::Contains("does not wait for all-reduce task 35"));
  }
}

TEST_CASE("overlapped all-reduce: each layer's bucket right after its gradients, the same buckets", "[plan]") {
  PeerOptions overlap;
  overlap.overlap_allreduce = true;
  // GCN 2 -> 4 -> 3: the first layer's bucket (12 elements) smaller than the others (15), so
  // buckets go in backward order (first_bucket_first is false).
  ModelShape m;
  m.dims = {2, 4, 3};
  m.dropout = 0.5;
  const auto after = build_plans(six_nodes(), m, Strategy::vanilla, true);
  const auto early = build_plans(six_nodes(), m, Strategy::vanilla, true, Width::fp32(), nullptr, overlap);
  validate(early);
  for (int r = 0; r < 2; ++r) {
    std::vector<const Task*> a, e;
    for (const auto& t : after[std::size_t(r)].tasks)
      if (t.kind == TaskKind::allreduce) a.push_back(&t);
    for (const auto& t : early[std::size_t(r)].tasks)
      if (t.kind == TaskKind::allreduce) e.push_back(&t);
    REQUIRE(a.size() == 2);
    REQUIRE(e.size() == 2);
    for (std::size_t b = 0; b < 2; ++b) {  // same buckets, same order, same gradient tasks waited for
      CHECK(a[b]->grad_begin == e[b]->grad_begin);
      CHECK(a[b]->grad_end == e[b]->grad_end);
      CHECK(a[b]->rows == e[b]->rows);
      // The same tasks (by kind, layer and label: ids shift where a bucket is posted earlier).
      auto waited = [](const Plan& plan, const Task& t) {
        std::vector<std::string> w;
        for (int d : t.deps) {
          const Task& u = plan.tasks[std::size_t(d)];
          w.push_back(std::string(to_string(u.kind)) + " " + std::to_string(u.layer) + " " + u.label);
        }
        std::sort(w.begin(), w.end());
        return w;
      };
      CHECK(waited(after[std::size_t(r)], *a[b]) == waited(early[std::size_t(r)], *e[b]));
    }
    // Layer 1's bucket is posted before layer 0's backward work; after the whole pass otherwise.
    const auto& et = early[std::size_t(r)].tasks;
    int later_compute = 0;
    for (std::size_t i = std::size_t(e[0]->id) + 1; i < et.size(); ++i)
      if (et[i].lane == Lane::compute && et[i].layer == 0) ++later_compute;
    CHECK(later_compute > 0);
    CHECK(a[0]->id == int(after[std::size_t(r)].tasks.size()) - 3);
  }
}

TEST_CASE("overlapped all-reduce with a dominant first layer: its weight in row blocks, reduced first", "[plan]") {
  PeerOptions overlap;
  overlap.overlap_allreduce = true;
  // GCN 1024 -> 384 -> 3 over sparse features: layer 0's weight is 393,216 elements, 3 blocks of
  // at least 2^17.
  ModelShape m;
  m.dims = {1024, 384, 3};
  m.dropout = 0.5;
  m.sparse_input = true;
  m.feature_nnz = 3000;
  const auto after = build_plans(six_nodes(), m, Strategy::vanilla, true);
  const auto early = build_plans(six_nodes(), m, Strategy::vanilla, true, Width::fp32(), nullptr, overlap);
  validate(early);
  const std::int64_t w0 = 1024 * 384, total = w0 + 384 + 384 * 3 + 3;
  for (int r = 0; r < 2; ++r) {
    CAPTURE(r);
    const auto& et = early[std::size_t(r)].tasks;
    std::vector<const Task*> buckets, blocks;
    int first_upper_grad = -1;  // list position of layer 1's first parameter-gradient task
    for (const auto& t : et) {
      if (t.kind == TaskKind::allreduce) buckets.push_back(&t);
      if (t.kind == TaskKind::spmm_features_t) blocks.push_back(&t);
      if (t.layer == 1 && t.dir == Direction::backward && first_upper_grad < 0 &&
          (t.kind == TaskKind::bias_grad || (t.kind == TaskKind::gemm && t.dst.kind == Operand::param_grad)))
        first_upper_grad = t.id;
    }
    // Three row blocks of dW0 in order, together every row, their non-zeros sharing the features'.
    REQUIRE(blocks.size() == 3);
    std::int64_t row = 0, nnz = 0;
    for (const Task* b : blocks) {
      CHECK(b->row_sel.kind == RowSet::range);
      CHECK(b->row_sel.begin == row);
      CHECK(b->rows == b->row_sel.end - b->row_sel.begin);
      row = b->row_sel.end;
      nnz += b->nnz;
    }
    CHECK(row == 1024);
    std::int64_t whole_nnz = -1;  // the one dW0 task's without the overlap
    for (const auto& t : after[std::size_t(r)].tasks)
      if (t.kind == TaskKind::spmm_features_t) whole_nnz = t.nnz;
    CHECK(whole_nnz > 0);
    CHECK(std::abs(nnz - whole_nnz) <= 3);  // each block's share rounds down
    // Buckets: block 0, block 1, block 2 + bias of layer 0, then layer 1; in that list order, each
    // block's right after it, and every element in one (validate).
    REQUIRE(buckets.size() == 4);
    CHECK(buckets[0]->grad_begin == 0);
    CHECK(buckets[0]->grad_end == 342 * 384);
    CHECK(buckets[0]->id == blocks[0]->id + 1);
    CHECK(buckets[1]->grad_end == 684 * 384);
    CHECK(buckets[1]->id == blocks[1]->id + 1);
    CHECK(buckets[2]->grad_begin == 684 * 384);
    CHECK(buckets[2]->grad_end == w0 + 384);
    CHECK(buckets[3]->grad_end == total);
    CHECK(buckets[3]->layer == 1);
    // Layer 1's parameter gradients are made after layer 0's last bucket is posted.
    REQUIRE(first_upper_grad >= 0);
    CHECK(first_upper_grad > buckets[2]->id);
    // One optimizer update per bucket, after every other task but in posting order, each waiting
    // for its bucket only.
    std::vector<const Task*> updates;
    for (const auto& t : et)
      if (t.kind == TaskKind::optimizer) updates.push_back(&t);
    REQUIRE(updates.size() == buckets.size());
    for (std::size_t k = 0; k < updates.size(); ++k) {
      CHECK(updates[k]->deps == std::vector<int>{buckets[k]->id});
      CHECK(updates[k]->grad_begin == buckets[k]->grad_begin);
      CHECK(updates[k]->grad_end == buckets[k]->grad_end);
      CHECK(updates[k]->id > buckets.back()->id);
    }
    // Without the overlap: one bucket per layer, dW0 in one task, one update after every bucket.
    int after_buckets = 0, after_blocks = 0, after_updates = 0;
    for (const auto& t : after[std::size_t(r)].tasks) {
      after_buckets += t.kind == TaskKind::allreduce;
      after_blocks += t.kind == TaskKind::spmm_features_t;
      after_updates += t.kind == TaskKind::optimizer;
    }
    CHECK(after_buckets == 2);
    CHECK(after_blocks == 1);
    CHECK(after_updates == 1);
    // validate: an update that leaves elements out, or that does not wait for its bucket.
    auto broken = early[std::size_t(r)];
    broken.tasks[std::size_t(updates[1]->id)].grad_end -= 1;
    broken.tasks[std::size_t(updates[1]->id)].rows -= 1;
    CHECK_THROWS_WITH(validate(broken), Catch::Contains("parameter layer0.weight is not updated exactly once"));
    broken = early[std::size_t(r)];
    broken.tasks[std::size_t(updates[2]->id)].deps = {buckets[1]->id};
    CHECK_THROWS_WITH(validate(broken),
                      Catch::Contains("does not wait for all-reduce task " + std::to_string(buckets[2]->id)));
  }
}

TEST_CASE("plans are deterministic and dump to JSON and DOT", "[plan]") {
  const auto a = build_plans(six_nodes(), small_gcn(), Strategy::overlap, true);
  const auto b = build_plans(six_nodes(), small_gcn(), Strategy::overlap, true);
  CHECK(to_json(a[1]) == to_json(b[1]));
  CHECK(to_json(a[1]).find("\"kind\": \"recv\"") != std::string::npos);
  const auto dot = to_dot(a[1]);
  CHECK(dot.starts_with("digraph plan_rank1"));
  CHECK(dot.find("t0 -> t1;") != std::string::npos);
}
