#include "engine/step_driver.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

#include "engine/executor.hpp"

namespace adaqp::engine {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
// Rethrows a communicator timeout with the task that was waiting.
[[noreturn]] void timed_out(const CommTimeout& e, const scheduler::Task& t) {
  std::string what = "task " + std::to_string(t.id) + " (" + scheduler::to_string(t.kind);
  if (!t.label.empty()) what += " '" + t.label + "'";
  if (t.peer >= 0) what += ", peer " + std::to_string(t.peer);
  throw CommTimeout(what + "): " + e.what());
}

// ADAQP_FAULT=drop-sends:R (fault injection for the watchdog test): rank R never posts its sends.
bool drops_sends(int rank) {
  const char* f = std::getenv("ADAQP_FAULT");
  const std::string prefix = "drop-sends:";
  return f && std::string(f).rfind(prefix, 0) == 0 && std::string(f).substr(prefix.size()) == std::to_string(rank);
}
}  // namespace

void book_time(StepTimes& times, const scheduler::Task& t, double seconds, std::vector<double>* trace) {
  scheduler::add_time(times, scheduler::time_bucket(t), seconds);
  if (trace) (*trace)[std::size_t(t.id)] += seconds;
}

StepDriver::StepDriver(const scheduler::Plan& plan, Communicator& comm)
    : plan_(plan), comm_(comm), request_(plan.tasks.size(), -1), drop_sends_(drops_sends(comm.rank())) {}

StepTimes StepDriver::run(StepHooks& hooks, std::vector<double>* trace) {
  StepTimes times;
  const auto t0 = Clock::now();
  for (const scheduler::Task& t : plan_.tasks) {
    hooks.before_task(t);
    for (int d : t.deps) {
      if (request_[std::size_t(d)] < 0) continue;
      const auto w0 = Clock::now();
      try {
        comm_.wait(request_[std::size_t(d)]);
      } catch (const CommTimeout& e) {
        timed_out(e, plan_.tasks[std::size_t(d)]);
      }
      request_[std::size_t(d)] = -1;
      --posted_;
      // Waiting for a message is comm_s; for a gradient bucket's all-reduce, reduce_s (its bucket).
      const scheduler::Task& done = plan_.tasks[std::size_t(d)];
      if (done.kind == scheduler::TaskKind::allreduce)
        book_time(times, done, since(w0), trace);
      else
        times.comm_s += since(w0);
      hooks.request_done(done);
    }
    if (drop_sends_ && t.kind == scheduler::TaskKind::send) continue;
    const auto c0 = Clock::now();
    int request = -1;
    try {
      request = hooks.execute(t, times);
    } catch (const CommTimeout& e) {  // the all-reduce
      timed_out(e, t);
    }
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
