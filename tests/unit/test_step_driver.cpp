// The shared run loop (engine/step_driver.hpp) and the one rule of time accounting
// (scheduler::time_bucket): which bucket a task's time goes to, whoever measures it.
#include <catch2/catch.hpp>

#include "engine/executor.hpp"
#include "engine/step_driver.hpp"
#include "scheduler/plan.hpp"
#include "scheduler/wire_format.hpp"

using namespace adaqp;
using scheduler::Lane;
using scheduler::Task;
using scheduler::TaskKind;
using scheduler::TimeBucket;
using scheduler::Width;

namespace {
Task make_task(int id, TaskKind kind, Lane lane, Width width = Width::fp32()) {
  Task t;
  t.id = id;
  t.kind = kind;
  t.lane = lane;
  t.width = width;
  return t;
}
}  // namespace

TEST_CASE("time buckets: one rule for every executor", "[step_driver]") {
  // The all-reduce is reduce time on either lane (the GPU executor once skipped comm-lane tasks
  // before testing for it, so reduce_s was always 0 there).
  CHECK(scheduler::time_bucket(make_task(0, TaskKind::allreduce, Lane::comm)) == TimeBucket::reduce);
  CHECK(scheduler::time_bucket(make_task(0, TaskKind::allreduce, Lane::compute)) == TimeBucket::reduce);
  for (Width bits : {Width::quant(2), Width::quant(4), Width::quant(8), Width::fp16(), Width::bf16(), Width::mixed()}) {
    CHECK(scheduler::time_bucket(make_task(0, TaskKind::pack, Lane::compute, bits)) == TimeBucket::quant);
    CHECK(scheduler::time_bucket(make_task(0, TaskKind::unpack, Lane::compute, bits)) == TimeBucket::quant);
  }
  CHECK(scheduler::time_bucket(make_task(0, TaskKind::pack, Lane::compute, Width::fp32())) == TimeBucket::compute);
  CHECK(scheduler::time_bucket(make_task(0, TaskKind::gemm, Lane::compute)) == TimeBucket::compute);
  CHECK(scheduler::time_bucket(make_task(0, TaskKind::send, Lane::comm)) == TimeBucket::comm);
  CHECK(scheduler::time_bucket(make_task(0, TaskKind::recv, Lane::comm)) == TimeBucket::comm);
  engine::StepTimes t;
  scheduler::add_time(t, TimeBucket::reduce, 0.5);
  scheduler::add_time(t, TimeBucket::quant, 0.25);
  CHECK(t.reduce_s == 0.5);
  CHECK(t.quant_s == 0.25);
  CHECK(t.compute_s == 0);
  CHECK(t.comm_s == 0);
}

namespace {
// Hooks that time nothing on the host (as the GPU's do) and book fixed device times per task.
struct DeviceLikeHooks : engine::StepHooks {
  std::vector<int> executed;
  int execute(const Task& t, engine::StepTimes&) override {
    executed.push_back(t.id);
    return -1;
  }
  bool host_timed(const Task&) const override { return false; }
  void account(engine::StepTimes& times, std::vector<double>* trace) override {
    for (int id : executed) engine::book_time(times, plan->tasks[std::size_t(id)], 0.125 * (id + 1), trace);
  }
  const scheduler::Plan* plan = nullptr;
};
}  // namespace

TEST_CASE("step driver: every task once, in order, device-timed tasks booked by the shared rule", "[step_driver]") {
  scheduler::Plan plan;
  plan.tasks = {make_task(0, TaskKind::gemm, Lane::compute),
                make_task(1, TaskKind::pack, Lane::compute, Width::quant(4)),
                make_task(2, TaskKind::allreduce, Lane::comm), make_task(3, TaskKind::allreduce, Lane::compute),
                make_task(4, TaskKind::optimizer, Lane::compute)};
  plan.tasks[2].deps = {1};
  auto comm = engine::make_self_communicator();
  engine::StepDriver driver(plan, *comm);
  DeviceLikeHooks hooks;
  hooks.plan = &plan;
  std::vector<double> trace(plan.tasks.size(), 0.0);
  const auto times = driver.run(hooks, &trace);
  CHECK(hooks.executed == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(times.compute_s == 0.125 + 0.625);  // gemm and optimizer
  CHECK(times.quant_s == 0.25);             // the 4-bit pack
  CHECK(times.reduce_s == 0.375 + 0.5);     // both all-reduces, whatever their lane
  CHECK(trace == std::vector<double>{0.125, 0.25, 0.375, 0.5, 0.625});
  CHECK(times.total_s > 0);
  CHECK_FALSE(driver.in_flight());
}
