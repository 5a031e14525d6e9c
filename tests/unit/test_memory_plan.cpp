// The memory plan (scheduler/memory_plan.hpp): regions live from their first to their last task,
// message slots until the task that waits for their send / receive, the logits to the end; no two
// regions live at once share a byte, in every strategy's plans; the arena is smaller than separate
// allocations. That training from the shared arena gives exactly the losses of separate
// allocations on real ranks is tests/mpi/test_mpi.sh ("--buffers shared").
#include <catch2/catch.hpp>
#include <stdexcept>

#include "graph/dataset.hpp"
#include "graph/registry.hpp"
#include "plan_fixtures.hpp"
#include "scheduler/build_plan.hpp"
#include "scheduler/memory_plan.hpp"
#include "scheduler/peers.hpp"

using namespace adaqp;
using namespace adaqp::scheduler;

namespace {
using test::cora_parts;
ModelShape model(bool sage) {
  ModelShape m;
  m.dims = {1433, 64, 64, 7};
  m.dropout = 0.5;
  m.sage = sage;
  return m;
}
}  // namespace

TEST_CASE("memory plan: live regions never share bytes, in every strategy's plans", "[memory][plan]") {
  const auto parts = cora_parts(3);
  PeerOptions stale, warmup, sampled, overlap_ar;
  stale.stale = true;
  warmup.stale = warmup.warmup = true;
  sampled.boundary_rate = 0.5;
  overlap_ar.overlap_allreduce = true;
  struct Case {
    const char* name;
    Strategy strategy;
    bool training;
    Width width;
    PeerOptions peers;
    bool sage;
  };
  const Case cases[] = {
      {"vanilla", Strategy::vanilla, true, Width::fp32(), {}, false},
      {"evaluation", Strategy::vanilla, false, Width::fp32(), {}, false},
      {"adaqp 4-bit", Strategy::overlap, true, Width::quant(4), {}, false},
      {"sage quant 2-bit", Strategy::vanilla, true, Width::quant(2), {}, true},
      {"stale", Strategy::vanilla, true, Width::fp32(), stale, false},
      {"stale warm-up", Strategy::vanilla, true, Width::fp32(), warmup, false},
      {"boundary sampling", Strategy::overlap, true, Width::fp32(), sampled, false},
      {"overlapped all-reduce", Strategy::vanilla, true, Width::fp32(), overlap_ar, false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    for (const auto& plan : build_plans(parts, model(c.sage), c.strategy, c.training, c.width, nullptr, c.peers)) {
      const auto m = plan_memory(plan);
      REQUIRE_NOTHROW(check_memory(plan, m));
      CHECK(m.arena_bytes <= m.separate_bytes);
      for (std::size_t b = 0; b < plan.buffers.size(); ++b)
        CHECK((m.buffer_offset[b] < 0) == plan.buffers[b].persistent);
    }
  }
}

TEST_CASE("memory plan: lifetimes follow the tasks, a 3-layer step needs well under separate allocations",
          "[memory][plan]") {
  const auto parts = cora_parts(2);
  // Hidden wider than the input (aggregate-first layers, as on rmat graphs with 32-64 features).
  ModelShape wide = model(false);
  wide.dims = {64, 128, 128, 7};
  const auto plan = build_plans(parts, wide, Strategy::vanilla, true)[0];
  const auto m = plan_memory(plan);
  const int n = int(plan.tasks.size());
  // The logits are read after the run: they live to the end.
  CHECK(m.buffer_life[std::size_t(plan.logits_buffer)].last == n);
  for (const auto& t : plan.tasks) {
    for (const Operand* o : {&t.src, &t.src2, &t.dst})
      if (o->kind == Operand::buffer) {
        CHECK(m.buffer_life[std::size_t(o->id)].first <= t.id);
        CHECK(m.buffer_life[std::size_t(o->id)].last >= t.id);
      }
    if (t.kind != TaskKind::send && t.kind != TaskKind::recv) continue;
    // A send / receive's slot is live until every task that depends on it (where the driver waits).
    const Lifetime& life = m.message_life[std::size_t(t.message)];
    bool waited = false;
    for (const auto& u : plan.tasks)
      for (int d : u.deps)
        if (d == t.id) {
          waited = true;
          CHECK(life.last >= u.id);
        }
    if (!waited) CHECK(life.last == n);
  }
  // Dead activations and gradients reuse bytes: the first layer's dropped input is dead once
  // aggregated, forward outputs once their gradients are formed (measured: 0.57 of separate).
  CHECK(double(m.arena_bytes) < 0.65 * double(m.separate_bytes));
}

TEST_CASE("memory plan: the check finds regions that are live together on the same bytes", "[memory][plan]") {
  const auto parts = cora_parts(2);
  const auto plan = build_plans(parts, model(false), Strategy::vanilla, true)[0];
  auto m = plan_memory(plan);
  // Two buffers live at the same time (the logits, live to the end, and any buffer live with it).
  const auto logits = std::size_t(plan.logits_buffer);
  std::size_t other = plan.buffers.size();
  for (std::size_t b = 0; b < plan.buffers.size(); ++b)
    if (b != logits && m.buffer_life[b].overlaps(m.buffer_life[logits])) other = b;
  REQUIRE(other < plan.buffers.size());
  m.buffer_offset[other] = m.buffer_offset[logits];
  CHECK_THROWS_AS(check_memory(plan, m), std::logic_error);
  // A region past the end of the arena.
  auto m2 = plan_memory(plan);
  m2.arena_bytes -= MemoryLayout::kAlign;
  CHECK_THROWS_AS(check_memory(plan, m2), std::logic_error);
}
