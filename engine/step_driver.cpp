#include "engine/step_driver.hpp"

#include <algorithm>
#include <chrono>

#include "engine/executor.hpp"

namespace adaqp::engine {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
}  // namespace

void book_time(StepTimes& times, const scheduler::Task& t, double seconds, std::vector<double>* trace) {
  scheduler::add_time(times, scheduler::time_bucket(t), seconds);
  if (trace) (*trace)[std::size_t(t.id)] += seconds;
}

StepDriver::StepDriver(const scheduler::Plan& plan, Communicator& comm)
    : plan_(plan), comm_(comm), request_(plan.tasks.size(), -1) {}

StepTimes StepDriver::run(StepHooks& hooks, std::vector<double>* trace) {
  StepTimes times;
  const auto t0 = Clock::now();
  for (const scheduler::Task& t : plan_.tasks) {
    hooks.before_task(t);
    for (int d : t.deps) {
      if (request_[std::size_t(d)] < 0) continue;
      const auto w0 = Clock::now();
      comm_.wait(request_[std::size_t(d)]);
      request_[std::size_t(d)] = -1;
      --posted_;
      times.comm_s += since(w0);
      hooks.request_done(plan_.tasks[std::size_t(d)]);
    }
    const auto c0 = Clock::now();
    const int request = hooks.execute(t, times);
    if (request >= 0) {
      request_[std::size_t(t.id)] = request;
      ++posted_;
    }
    if (hooks.host_timed(t)) book_time(times, t, since(c0), trace);
    if (t.lane == scheduler::Lane::compute) comm_.progress();
  }
  const auto w0 = Clock::now();
  comm_.wait_all();  // sends nobody waited for
  hooks.drain();
  times.comm_s += since(w0);
  std::fill(request_.begin(), request_.end(), -1);
  posted_ = 0;
  hooks.synchronize();
  times.total_s = since(t0);
  hooks.account(times, trace);
  times.bytes_sent = plan_.bytes_sent();
  times.bytes_meta = plan_.bytes_meta();
  return times;
}

}  // namespace adaqp::engine
