#include "simulator/simulator.hpp"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <queue>
#include <stdexcept>
#include <string>
#include <tuple>

#include "base/error.hpp"
#include "simulator/cost_model.hpp"

namespace adaqp::simulator {

using scheduler::Task;
using scheduler::TaskKind;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Events at one instant before the simulation is declared stuck: a step of P ranks posts at most a
// few messages per peer at once; millions mean the clock stopped moving.
constexpr std::int64_t kMaxEventsAtOneTime = 10'000'000;

struct Op {  // a posted send, receive or all-reduce bucket
  bool posted = false, complete = false;
  double post_s = 0, complete_s = 0;
};

struct RankState {
  std::size_t pc = 0;
  double now = 0;
  int blocked_on = -1;     // task id of the op waited for
  int buckets_posted = 0;  // all-reduce tasks posted so far (the k-th of every rank form one collective)
  double wait_start = 0;
  bool finished = false;
  RankPrediction times;
  std::vector<Op> ops;  // by task id
};

using Key = std::tuple<int, int, int>;  // sender, receiver, tag

// Compute tasks running on shared hosts: ranks r / ranks_per_host share `cores` cores; each rank
// wants `threads` of them while it computes. With k ranks computing on a host, each runs at
// min(1, cores / (k * threads)) of its full speed (processor sharing). On an oversubscribed host
// (ranks_per_host * threads > cores) waiting ranks keep polling their transport and count as
// competing too, so k is every rank of the host that has not finished its step (Open MPI's
// progress loop spins, yielding only to other runnable ranks). cores <= 0: unlimited.
class Cpus {
 public:
  Cpus(int ranks, int ranks_per_host, double cores, int threads)
      : per_host_(std::max(1, ranks_per_host)),
        cores_(cores),
        threads_(std::max(1, threads)),
        jobs_(std::size_t(ranks)),
        busy_(std::size_t((ranks + per_host_ - 1) / per_host_), 0),
        alive_(busy_.size(), 0) {
    oversubscribed_ = cores_ > 0 && double(std::min(per_host_, ranks)) * threads_ > cores_;
    for (int r = 0; r < ranks; ++r) ++alive_[std::size_t(r / per_host_)];
  }
  void finish(int rank) { --alive_[std::size_t(rank / per_host_)]; }  // its step is over
  struct Job {
    bool active = false;
    int task = -1;
    double start_s = 0, remaining_s = 0;  // work left at full speed
  };
  // Caller has advanced to `now`.
  void start(int rank, int task, double work_s, double now) {
    jobs_[std::size_t(rank)] = {true, task, now, work_s};
    ++busy_[std::size_t(rank / per_host_)];
  }
  double rate(int rank) const {
    if (cores_ <= 0) return 1.0;
    const std::size_t h = std::size_t(rank / per_host_);
    const int k = oversubscribed_ ? std::max(alive_[h], busy_[h]) : busy_[h];
    return std::min(1.0, cores_ / (double(k) * threads_));
  }
  double next_completion() const {
    double t = kInf;
    for (std::size_t r = 0; r < jobs_.size(); ++r)
      if (jobs_[r].active) t = std::min(t, now_ + jobs_[r].remaining_s / rate(int(r)));
    return t;
  }
  // Advances to t; returns the ranks whose job completed (with its task and start time).
  std::vector<std::tuple<int, int, double>> advance(double t) {
    std::vector<std::tuple<int, int, double>> done;
    if (t <= now_) return done;
    for (;;) {
      const double to = std::min(t, next_completion());
      for (std::size_t r = 0; r < jobs_.size(); ++r) {
        Job& j = jobs_[r];
        if (!j.active) continue;
        j.remaining_s -= rate(int(r)) * (to - now_);
      }
      now_ = to;
      // Done when what is left is below the clock's resolution at now_ (an absolute 1e-15 s never
      // came at epochs of ~16 s, where a double's step is 3.6e-15 s: the simulation spun forever).
      for (std::size_t r = 0; r < jobs_.size(); ++r) {
        Job& j = jobs_[r];
        if (j.active && (j.remaining_s <= 1e-15 || now_ + j.remaining_s / rate(int(r)) <= now_)) j.remaining_s = 0;
      }
      bool any = false;
      for (std::size_t r = 0; r < jobs_.size(); ++r) {
        Job& j = jobs_[r];
        if (j.active && j.remaining_s <= 0) {
          j.active = false;
          --busy_[r / std::size_t(per_host_)];
          done.emplace_back(int(r), j.task, j.start_s);
          any = true;
        }
      }
      if (!any && now_ >= t) break;
      if (now_ >= t && any) continue;  // more may end at t with the new shares
    }
    return done;
  }

 private:
  int per_host_;
  double cores_;
  int threads_;
  std::vector<Job> jobs_;
  std::vector<int> busy_;   // computing ranks per host
  std::vector<int> alive_;  // ranks per host still in their step
  bool oversubscribed_ = false;
  double now_ = 0;
};

class Sim {
 public:
  Sim(const std::vector<scheduler::Plan>& plans, const Profile& profile, const Network& net, bool timeline)
      : plans_(plans),
        profile_(profile),
        net_(net),
        flows_(net),
        cpus_(int(plans.size()), net.ranks_sharing_cores(), profile.cores_per_host, profile.threads),
        ranks_(plans.size()) {
    for (std::size_t r = 0; r < plans.size(); ++r) {
      ranks_[r].ops.resize(plans[r].tasks.size());
      ready_.push({0.0, int(r)});
    }
    // All-reduce buckets, in each plan's order: the k-th of every rank form one collective.
    bucket_tasks_.resize(plans.size());
    for (std::size_t r = 0; r < plans.size(); ++r)
      for (const Task& t : plans[r].tasks)
        if (t.kind == TaskKind::allreduce) bucket_tasks_[r].push_back(t.id);
    for (std::size_t r = 1; r < plans.size(); ++r)
      if (bucket_tasks_[r].size() != bucket_tasks_[0].size())
        throw Error("simulator: ranks 0 and " + std::to_string(r) + " have different numbers of all-reduce buckets");
    posted_buckets_.assign(bucket_tasks_[0].size(), 0);
    ring_left_.assign(bucket_tasks_[0].size(), 0);
    if (timeline) {
      out_.timeline.resize(plans.size());
      for (std::size_t r = 0; r < plans.size(); ++r) out_.timeline[r].resize(plans[r].tasks.size());
    }
  }

  Prediction run() {
    while (true) {
      const double t_rank = ready_.empty() ? kInf : ready_.top().first;
      const double t_net = flows_.next_completion();
      const double t_cpu = cpus_.next_completion();
      if (t_rank == kInf && t_net == kInf && t_cpu == kInf) break;
      ++out_.events;
      // A bug, never a hang: the clock must move within a bounded number of events.
      const double t_next = std::min({t_rank, t_net, t_cpu});
      stuck_ = t_next == last_t_ ? stuck_ + 1 : 0;
      last_t_ = t_next;
      if (stuck_ > kMaxEventsAtOneTime)
        throw std::logic_error("simulator: no progress after " + std::to_string(stuck_) +
                               " events at t = " + std::to_string(t_next) + " s");
      if (t_net <= t_rank && t_net <= t_cpu) {
        for (int id : flows_.advance(t_net)) complete_transfer(id, t_net);
      } else if (t_cpu <= t_rank) {
        advance_cpus(t_cpu);
      } else {
        const auto [t, r] = ready_.top();
        ready_.pop();
        step(r, t);
      }
    }
    for (std::size_t r = 0; r < ranks_.size(); ++r)
      if (!ranks_[r].finished) {
        const auto& rs = ranks_[r];
        const int task = rs.blocked_on >= 0 ? rs.blocked_on : int(rs.pc);
        throw Error("simulator: rank " + std::to_string(r) + " never finishes: blocked at task " +
                    std::to_string(task));
      }
    for (std::size_t r = 0; r < ranks_.size(); ++r) {
      const auto& t = ranks_[r].times;
      out_.ranks.push_back(t);
      out_.epoch_s = std::max(out_.epoch_s, t.total_s);
      out_.compute_s = std::max(out_.compute_s, t.compute_s);
      out_.comm_s = std::max(out_.comm_s, t.comm_s);
      out_.quant_s = std::max(out_.quant_s, t.quant_s);
      out_.reduce_s = std::max(out_.reduce_s, t.reduce_s);
      out_.bytes_sent += plans_[r].bytes_sent();
      out_.bytes_meta += plans_[r].bytes_meta();
    }
    return std::move(out_);
  }

 private:
  void block(int r, int on, double t) {
    ranks_[r].blocked_on = on;
    ranks_[r].wait_start = t;
  }
  // The op rank r waited for completed at t: the wait is comm_s for a message, reduce_s for an
  // all-reduce bucket (as the engine books it).
  void unblock(int r, double t) {
    auto& rs = ranks_[r];
    const Task& waited = plans_[std::size_t(r)].tasks[std::size_t(rs.blocked_on)];
    if (waited.kind == TaskKind::allreduce)
      rs.times.reduce_s += t - rs.wait_start;
    else
      rs.times.comm_s += t - rs.wait_start;
    rs.blocked_on = -1;
    ready_.push({t, r});
  }

  void advance_cpus(double t) {
    for (const auto& [r, task, start] : cpus_.advance(t)) finish_compute(r, task, start, t);
  }
  void finish_compute(int r, int task_id, double start, double end) {
    auto& rs = ranks_[std::size_t(r)];
    const Task& task = plans_[std::size_t(r)].tasks[std::size_t(task_id)];
    scheduler::add_time(rs.times, scheduler::time_bucket(task), end - start);
    record(r, task_id, start, end);
    ++rs.pc;
    ready_.push({end, r});
  }

  // The k-th all-reduce bucket is done at t on every rank.
  void finish_allreduce(int k, double t) {
    for (std::size_t q = 0; q < plans_.size(); ++q) {
      const int task = bucket_tasks_[q][std::size_t(k)];
      Op& op = ranks_[q].ops[std::size_t(task)];
      op.complete = true;
      op.complete_s = t;
      if (ranks_[q].blocked_on == task) unblock(int(q), t);
    }
  }
  // Every rank has posted its k-th bucket (the last at t): the ring's transfers start on the
  // network, sharing it with whatever else is in flight; the bucket is done when the last ends.
  void start_allreduce(int k, double t) {
    for (int id : flows_.advance(t)) complete_transfer(id, t);
    const Task& task = plans_[0].tasks[std::size_t(bucket_tasks_[0][std::size_t(k)])];
    const auto cost = allreduce_cost(net_, 4.0 * double(task.rows));
    const auto ring = flows_.start_ring(cost.latency_s, cost.transfer_s, t);
    for (int id : ring) {
      if (int(transfer_.size()) <= id) transfer_.resize(std::size_t(id) + 1);
      transfer_[std::size_t(id)] = {-1 - k, -1, -1, -1};
    }
    ring_left_[std::size_t(k)] = int(ring.size());
    if (ring.empty()) finish_allreduce(k, t);
  }

  void complete_transfer(int flow, double t) {
    const auto [s, s_task, q, q_task] = transfer_[flow];
    if (s < 0) {  // a transfer of bucket -1 - s's ring
      if (--ring_left_[std::size_t(-1 - s)] == 0) finish_allreduce(-1 - s, t);
      return;
    }
    for (auto [r, task] : {std::pair{s, s_task}, std::pair{q, q_task}}) {
      Op& op = ranks_[r].ops[task];
      op.complete = true;
      op.complete_s = t;
      if (ranks_[r].blocked_on == task) unblock(r, t);
    }
  }

  // Pairs the heads of a (sender, receiver, tag) channel and starts their transfer at t.
  void match(const Key& key, double t) {
    for (int id : flows_.advance(t)) complete_transfer(id, t);  // what finished within rounding of t
    auto& sends = sends_[key];
    auto& recvs = recvs_[key];
    while (!sends.empty() && !recvs.empty()) {
      const int s_task = sends.front(), q_task = recvs.front();
      sends.pop_front();
      recvs.pop_front();
      const int s = std::get<0>(key), q = std::get<1>(key);
      const double bytes = double(plans_[s].tasks[s_task].bytes);
      const int id = flows_.start(s, q, bytes, t);
      if (int(transfer_.size()) <= id) transfer_.resize(std::size_t(id) + 1);
      transfer_[std::size_t(id)] = {s, s_task, q, q_task};
    }
  }

  void step(int r, double t) {
    auto& rs = ranks_[r];
    const auto& tasks = plans_[r].tasks;
    rs.now = t;
    if (rs.pc == tasks.size()) {  // wait for the rank's unfinished sends and all-reduce buckets
      for (std::size_t i = 0; i < tasks.size(); ++i)
        if ((tasks[i].kind == TaskKind::send || tasks[i].kind == TaskKind::allreduce) && rs.ops[i].posted &&
            !rs.ops[i].complete)
          return block(r, int(i), t);
      advance_cpus(t);
      cpus_.finish(r);  // shares change from now on
      rs.finished = true;
      rs.times.total_s = t;
      return;
    }
    const Task& task = tasks[rs.pc];
    for (int d : task.deps)
      if (rs.ops[std::size_t(d)].posted && !rs.ops[std::size_t(d)].complete) return block(r, d, t);
    double end = t;
    switch (task.kind) {
      case TaskKind::send:
      case TaskKind::recv: {
        // Posted at t (the transfer may start now); the rank is busy posting until t + post_s.
        end = t + profile_.post_s;
        scheduler::add_time(rs.times, scheduler::time_bucket(task), profile_.post_s);
        Op& op = rs.ops[std::size_t(task.id)];
        op.posted = true;
        op.post_s = t;
        const bool send = task.kind == TaskKind::send;
        const Key key = send ? Key{r, task.peer, task.tag} : Key{task.peer, r, task.tag};
        (send ? sends_ : recvs_)[key].push_back(task.id);
        record(r, task.id, t, end);
        ++rs.pc;
        match(key, t);
        ready_.push({end, r});
        return;
      }
      case TaskKind::allreduce: {
        // Posted without blocking (the engine's MPI_Iallreduce); whoever depends on it waits.
        if (plans_.size() == 1) break;
        end = t + profile_.post_s;
        scheduler::add_time(rs.times, scheduler::time_bucket(task), profile_.post_s);
        Op& op = rs.ops[std::size_t(task.id)];
        op.posted = true;
        op.post_s = t;
        record(r, task.id, t, end);
        ++rs.pc;
        const int k = rs.buckets_posted++;
        if (std::size_t(k) >= bucket_tasks_[std::size_t(r)].size() ||
            bucket_tasks_[std::size_t(r)][std::size_t(k)] != task.id)
          throw std::logic_error("simulator: all-reduce buckets out of order");
        if (++posted_buckets_[std::size_t(k)] == int(plans_.size())) start_allreduce(k, t);
        ready_.push({end, r});
        return;
      }
      default: {
        const double work = compute_seconds(task, profile_);
        advance_cpus(t);
        if (work <= 0) return finish_compute(r, task.id, t, t);
        cpus_.start(r, task.id, work, t);  // the rank is busy until its job completes
        return;
      }
    }
    record(r, task.id, t, end);
    ++rs.pc;
    ready_.push({end, r});
  }

  void record(int r, int task, double start, double end) {
    if (!out_.timeline.empty()) out_.timeline[std::size_t(r)][std::size_t(task)] = {start, end};
  }

  const std::vector<scheduler::Plan>& plans_;
  const Profile& profile_;
  const Network& net_;
  FlowNetwork flows_;
  Cpus cpus_;
  std::vector<RankState> ranks_;
  using Event = std::pair<double, int>;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> ready_;
  std::map<Key, std::deque<int>> sends_, recvs_;
  std::vector<std::tuple<int, int, int, int>> transfer_;  // flow -> sender, its task, receiver, its task
  std::vector<std::vector<int>> bucket_tasks_;            // per rank: its all-reduce task ids, in order
  std::vector<int> posted_buckets_;                       // per bucket: ranks that have posted it
  std::vector<int> ring_left_;                            // per bucket: ring transfers not yet complete
  Prediction out_;
  double last_t_ = -1;      // the time of the last event
  std::int64_t stuck_ = 0;  // events in a row at last_t_
};

}  // namespace

Prediction simulate(const std::vector<scheduler::Plan>& plans, const Profile& profile, const Network& net,
                    bool timeline) {
  if (plans.empty()) throw Error("simulator: no plans");
  if (int(plans.size()) != net.ranks)
    throw Error("simulator: " + std::to_string(plans.size()) + " plans for a network of " + std::to_string(net.ranks) +
                " ranks");
  for (std::size_t r = 0; r < plans.size(); ++r)
    if (plans[r].rank != int(r))
      throw Error("simulator: plan at index " + std::to_string(r) + " is rank " + std::to_string(plans[r].rank));
  return Sim(plans, profile, net, timeline).run();
}

nlohmann::json summary_record(const Prediction& train, const Prediction& eval, int ranks, const std::string& mode,
                              const std::string& bits, double simulate_s) {
  return {{"type", "summary"},
          {"epochs", 0},
          {"ranks", ranks},
          {"mode", mode},
          {"bits", bits},
          {"predicted_epoch_s", train.epoch_s},
          {"predicted_compute_s", train.compute_s},
          {"predicted_comm_s", train.comm_s},
          {"predicted_quant_s", train.quant_s},
          {"predicted_reduce_s", train.reduce_s},
          {"predicted_eval_s", eval.epoch_s},
          {"bytes_sent", train.bytes_sent},
          {"bytes_meta", train.bytes_meta},
          {"simulator_events", train.events + eval.events},
          {"simulate_s", simulate_s}};
}

}  // namespace adaqp::simulator
