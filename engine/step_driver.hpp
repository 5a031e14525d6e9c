// The run loop every executor shares (CPU: engine/executor.cpp, GPU: engine/cuda/executor.cu):
// issues one rank's plan tasks in list order on the calling thread, waits for the sends and
// receives a task depends on before it (that wait is comm_s), lets the communicator progress
// after every compute-lane task, waits for the sends nobody waited for at the end, and books each
// task's time by the scheduler's one rule (scheduler::time_bucket). A backend supplies what
// differs through StepHooks: how a task runs, and which tasks it times itself (a GPU times its
// kernels with device events and books them after the step). A wait or all-reduce past the
// communicator's timeout (Communicator::set_timeout, --comm-timeout) throws CommTimeout naming the
// task and its peer: the watchdog that ends a run instead of letting it hang.
#pragma once
#include <vector>

#include "engine/comm/communicator.hpp"
#include "scheduler/plan.hpp"

namespace adaqp::engine {

struct StepTimes;

class StepHooks {
 public:
  virtual ~StepHooks() = default;
  // Before the driver waits for t's dependencies (the GPU's NCCL path orders the device here).
  virtual void before_task(const scheduler::Task&) {}
  // The communicator request of send / recv / allreduce task d has completed (a receive's bytes
  // have landed; a bucket's sums are in).
  virtual void request_done(const scheduler::Task&) {}
  // Runs task t; a send, recv or allreduce posts it and returns the communicator request (else -1).
  virtual int execute(const scheduler::Task& t, StepTimes& times) = 0;
  // Whether the driver books t's wall time on the host (true) or the hooks book it in account().
  virtual bool host_timed(const scheduler::Task&) const { return true; }
  // After the final wait for unwaited sends, still counted as comm_s (NCCL: the comm stream).
  virtual void drain() {}
  // Before the step's wall time is taken: device work ends here.
  virtual void synchronize() {}
  // After the step: books the times the hooks measured themselves (book_time for each).
  virtual void account(StepTimes&, std::vector<double>* /*trace*/) {}
};

// Adds seconds to the bucket of t (scheduler::time_bucket) and, when tracing, to trace[t.id].
void book_time(StepTimes& times, const scheduler::Task& t, double seconds, std::vector<double>* trace);

class StepDriver {
 public:
  // plan and comm must outlive the driver.
  StepDriver(const scheduler::Plan& plan, Communicator& comm);
  // Runs every task once; total_s, bytes_sent and bytes_meta are set here, the rest by the buckets.
  // trace: plan.tasks.size() entries that each task's seconds are added to, or null.
  StepTimes run(StepHooks& hooks, std::vector<double>* trace);
  // Some posted send / receive has not been waited for yet (compute then works in chunks and
  // lets the transport progress between them).
  bool in_flight() const { return posted_ > 0; }

 private:
  const scheduler::Plan& plan_;
  Communicator& comm_;
  std::vector<int> request_;  // per task: communicator request of a posted send / recv, or -1
  int posted_ = 0;            // requests in request_
  bool drop_sends_ = false;   // ADAQP_FAULT=drop-sends:RANK on this rank (watchdog test only)
};

}  // namespace adaqp::engine
