// adaqp calibrate: measures this machine and writes (or updates) a calibration profile.
// Compute: the microbenchmarks of simulator/calibration/microbench.hpp, fitted per cost class (rank 0), on
// the CPU kernels or (--backend cuda) the GPU kernels; a profile holds one backend's fits.
// Links (under mpirun, 2 or more ranks): ping-pong between ranks 0 and 1 at several sizes, fitted
// alpha-beta, stored as link class --link-class; the cost of posting a send / receive.
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <vector>

#include "adaqp/git_commit.hpp"
#include "apps/commands.hpp"
#include "base/error.hpp"
#include "engine/trainer.hpp"
#include "simulator/calibration/microbench.hpp"
#include "simulator/cost_model.hpp"
#include "simulator/profile.hpp"

namespace adaqp::apps {

namespace {

void print_line(const std::string& line) {
  fmt::print("  {}\n", line);
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Ranks 0 and 1: (bytes, one-way seconds + the 1-byte reply) samples, best of `reps` each.
simulator::LinkClass probe_link(engine::Communicator& comm, double* post_s) {
  const int me = comm.rank();
  const std::vector<std::int64_t> sizes = {1024, 16384, 131072, 524288, 2097152, 4194304};
  std::vector<std::pair<double, double>> samples;
  for (auto m : sizes) {
    double best = 1e300;
    for (int rep = 0; rep < 7; ++rep) {
      const double t = me <= 1 ? comm.ping_pong(1 - me, m, me == 0) : 0;
      best = std::min(best, t);
    }
    samples.push_back({double(m), best});
  }
  const simulator::LinkClass l = simulator::fit_round_trip_link(samples);
  // Posting cost: 64 receives and 64 sends of 64 bytes each way, timed while posting only.
  const int n = 64;
  std::vector<char> out(std::size_t(64 * n)), in(std::size_t(64 * n));
  double posted = 0;
  if (me <= 1) {
    const int peer = 1 - me;
    const double t0 = now_s();
    for (int i = 0; i < n; ++i) comm.irecv(in.data() + 64 * i, 64, peer, 7000 + i);
    for (int i = 0; i < n; ++i) comm.isend(out.data() + 64 * i, 64, peer, 7000 + i);
    posted = now_s() - t0;
    comm.wait_all();
  }
  *post_s = posted / (2 * n);
  return l;
}

// Every rank: the gradient all-reduce (float sums) at several sizes, best of 5, fitted alpha-beta
// in bytes per rank.
simulator::LinkClass probe_allreduce(engine::Communicator& comm) {
  std::vector<std::pair<double, double>> samples;
  for (std::int64_t n : {16384, 65536, 262144, 1048576}) {
    std::vector<float> data(static_cast<std::size_t>(n), 1.0f);
    double best = 1e300;
    for (int rep = 0; rep < 5; ++rep) {
      double sync = 0;
      comm.allreduce_max(&sync, 1);
      const double t0 = now_s();
      comm.allreduce_sum(data.data(), n);
      double t = now_s() - t0;
      comm.allreduce_max(&t, 1);
      best = std::min(best, t);
    }
    samples.push_back({4.0 * double(n), best});
  }
  return simulator::fit_link(samples);
}

// calibrate --probe-of PROFILE --out PROBE: the profile's probe benchmarks timed now, under the
// profile's conditions, and how each compares with the calibration.
int probe_host(const CalibrateOptions& o, engine::Communicator& comm) {
  if (comm.size() > 1) throw Error("calibrate --probe-of: run it without mpirun");
  const auto profile = simulator::load_profile(o.probe_of);
  const auto& then = profile.probe;
  if (then.seconds.empty())
    throw Error(o.probe_of + ": the profile has no probe benchmarks (calibrate it again with this adaqp)");
  if (then.threads * then.corun > omp_get_num_procs())
    throw Error(fmt::format("calibrate --probe-of {}: its probe ran {} x {} thread(s), this host has {} cores",
                            o.probe_of, then.corun, then.threads, omp_get_num_procs()));
  const bool quick = then.grid == "quick";
  bench::register_microbenchmarks({then.threads, quick, bench::grid_min_time_s(quick), "cpu", then.corun});
  std::vector<std::string> names,
      partner = {"adaqp", "calibrate", "--out", "-", "--threads", std::to_string(then.threads)};
  if (quick) partner.push_back("--quick");
  for (const auto& [name, s] : then.seconds) names.push_back(name);
  const auto timings = bench::run_microbenchmarks(&print_line, partner, names);
  simulator::HostProbe now = then;
  now.seconds = timings.seconds;
  fmt::print("{:<52} {:>12} {:>12} {:>7}\n", "probe benchmark", "profile us", "now us", "ratio");
  for (const auto& [name, s] : then.seconds)
    fmt::print("{:<52} {:>12.1f} {:>12.1f} {:>7.3f}\n", name, 1e6 * s, 1e6 * now.seconds.at(name),
               now.seconds.at(name) / s);
  simulator::save_probe(now, o.out);
  fmt::print("probe written to {}\n", o.out);
  return 0;
}

}  // namespace

int cmd_calibrate(const CalibrateOptions& o, engine::Communicator& comm) {
  if (!o.corun_partner.empty())
    return bench::run_corun_partner({o.threads, o.quick, bench::grid_min_time_s(o.quick), "cpu", 1}, o.corun_partner);
  const bool lead = comm.rank() == 0;
  if (o.out.empty()) throw Error("calibrate: --out PROFILE is required");
  if (!o.probe_of.empty()) {
    if (o.links_only) throw Error("calibrate --probe-of times compute benchmarks: it does not go with --links-only");
    return probe_host(o, comm);
  }
  if (o.threads < 1) throw Error("--threads " + std::to_string(o.threads) + ": must be >= 1");
  if (o.corun < 1) throw Error("--corun " + std::to_string(o.corun) + ": must be >= 1");
  if (o.corun > 1 && !o.links_only) {
    if (o.backend == "cuda") throw Error("--corun " + std::to_string(o.corun) + ": the GPU benchmarks time one device");
    if (comm.size() > 1)
      throw Error("--corun " + std::to_string(o.corun) +
                  ": calibrate the compute classes without mpirun (the other "
                  "ranks would share the cores)");
    // Partners sharing a core would time the time-slicing the simulator models itself (cores_per_host).
    if (o.threads * o.corun > omp_get_num_procs())
      throw Error(fmt::format("--corun {} with --threads {}: needs {} cores, this host has {}", o.corun, o.threads,
                              o.threads * o.corun, omp_get_num_procs()));
  }
  if (o.links_only && comm.size() < 2)
    throw Error("calibrate --links-only probes links between ranks: run it under mpirun -np 2");
  if (o.backend != "cpu" && o.backend != "cuda")
    throw Error("calibrate --backend " + o.backend + ": allowed cpu, cuda");
  simulator::Profile p;
  if (std::filesystem::exists(o.out)) p = simulator::load_profile(o.out);  // update in place
  if (!o.links_only && !p.backend.empty() && p.backend != o.backend) {
    if (lead) fmt::print("calibrate: {} holds {} fits; replacing them with {} fits\n", o.out, p.backend, o.backend);
    p.compute.clear();
  }
  if (o.links_only && !p.backend.empty() && p.backend != o.backend)
    throw Error("calibrate --links-only --backend " + o.backend + ": " + o.out + " holds " + p.backend +
                " compute fits (calibrate them first, or give --backend " + p.backend + ")");
  p.machine = !o.machine.empty() ? o.machine : (p.machine.empty() ? engine::hostname() : p.machine);
  p.backend = o.backend;
  p.date = engine::utc_now().substr(0, 10);
  p.source = std::string("adaqp calibrate, commit ") + build::kGitCommit + ", host " + engine::hostname();
  if (!o.links_only) {
    if (!p.compute.empty() && p.threads != o.threads && lead)
      fmt::print("calibrate: replacing compute fits made for {} thread(s) with {} thread(s)\n", p.threads, o.threads);
    p.threads = o.threads;
    p.corun = o.corun;
    // Ranks on one host share its cores; a GPU rank has its own device (simulator/profile.hpp).
    p.cores_per_host = o.backend == "cuda" ? 0 : omp_get_num_procs();
    if (lead) {
      fmt::print("calibrate: {} compute microbenchmarks, {} thread(s){}{}\n", o.backend, o.threads,
                 o.corun > 1 ? fmt::format(", {} processes at once", o.corun) : "", o.quick ? ", quick grid" : "");
      bench::register_microbenchmarks({o.threads, o.quick, bench::grid_min_time_s(o.quick), o.backend, o.corun});
      std::vector<std::string> partner = {"adaqp", "calibrate", "--out", "-", "--threads", std::to_string(o.threads)};
      if (o.quick) partner.push_back("--quick");
      const auto timings = bench::run_microbenchmarks(&print_line, partner);
      const auto& samples = timings.samples;
      p.probe = {o.quick ? "quick" : "full", o.threads, o.corun, {}};
      // The probe's reference: its benchmarks' times in this grid, taken while their classes were fitted.
      if (o.backend == "cpu")
        for (const auto& name : bench::probe_names(timings.seconds)) p.probe.seconds[name] = timings.seconds.at(name);
      fmt::print("{:<18} {:>8} {:>8}  coefficients (s per unit of each feature)\n", "cost class", "samples", "R^2");
      for (const auto& [cls, s] : samples) {
        p.compute[cls] = simulator::fit_linear(s);
        std::string coef;
        const auto& names = simulator::cost_class(cls).features;
        for (std::size_t i = 0; i < names.size(); ++i)
          coef += fmt::format("{}{}={:.3g}", i ? ", " : "", names[i], p.compute[cls].coef_s[i]);
        fmt::print("{:<18} {:>8} {:>8.4f}  {}\n", cls, s.size(), p.compute[cls].r2, coef);
      }
    }
  }
  if (comm.size() >= 2) {
    double sync = 0;
    comm.allreduce_max(&sync, 1);  // the other ranks wait here while rank 0 benchmarks
    double post_s = 0;
    const auto link = probe_link(comm, &post_s);
    const auto reduce = probe_allreduce(comm);
    // Every ordered pair, as the engine probes channels for the bit assigner (3 ranks or more:
    // with 2, the pair 0-1 is the class itself).
    std::vector<std::vector<scheduler::ChannelCost>> channels;
    if (comm.size() > 2) channels = engine::probe_links(comm);
    if (lead) {
      p.links[o.link_class] = link;
      p.links[o.link_class + "-allreduce"] = reduce;
      p.links[o.link_class + "-allreduce"].ranks = comm.size();
      for (int a = 0; a < int(channels.size()); ++a)
        for (int b = 0; b < int(channels[a].size()); ++b)
          if (a != b)
            p.links[o.link_class + "@" + std::to_string(a) + "-" + std::to_string(b)] = {
                channels[a][b].alpha_s, channels[a][b].beta_s_per_byte, 1.0, "probe (engine channel)"};
      // Posting cost as the engine pays it without emulation (the `inter` class).
      if (o.link_class == "inter") p.post_s = post_s;
      fmt::print("link class '{}': alpha {:.2f} us, {:.3f} GB/s (R^2 {:.4f}); posting {:.2f} us\n", o.link_class,
                 1e6 * link.alpha_s, 1e-9 / link.beta_s_per_byte, link.r2, 1e6 * post_s);
      fmt::print("all-reduce on {} ranks: {:.2f} us + {:.3f} ns per byte (R^2 {:.4f})\n", comm.size(),
                 1e6 * reduce.alpha_s, 1e9 * reduce.beta_s_per_byte, reduce.r2);
    }
  }
  if (lead) {
    simulator::save_profile(p, o.out);
    fmt::print("profile written to {}\n", o.out);
  }
  return 0;
}

}  // namespace adaqp::apps
