// Calibration microbenchmarks: every compute cost class of simulator/cost_model.hpp timed on the
// engine's own kernels over a grid of sizes, registered with Google Benchmark: the CPU kernels
// (wall time), or the GPU kernels of engine/cuda (backend "cuda": device time between CUDA events
// around each call, Google Benchmark's manual time). Each benchmark is named "calib/CLASS/..." and
// reports the class's features as user counters f0, f1, ... (one call per iteration), so a run of
// them is a set of fit samples (simulator::Sample).
// Used by `build/bench_calibration` (for people) and by `adaqp calibrate` (for profiles).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "simulator/profile.hpp"

namespace adaqp::bench {

struct MicrobenchOptions {
  int threads = 1;              // OpenMP and BLAS threads while timing
  bool quick = false;           // a smaller grid (tests, CI)
  double min_time_s = 0.05;     // Google Benchmark minimum time per benchmark
  std::string backend = "cpu";  // "cpu" or "cuda" (threads: host threads, unused by the GPU kernels)
  // Processes timing each CPU benchmark at once (simulator/calibration/corun.hpp): the ranks per
  // host the profile is for. 1: the benchmark alone.
  int corun = 1;
};

// Google Benchmark's minimum time per benchmark, the grid's and the host-speed probe's (the same:
// the probe's noise is averaged over its ~40 benchmarks). The quick grid (tests) checks plumbing.
inline double grid_min_time_s(bool quick) {
  return quick ? 0.02 : 0.05;
}

// Registers the benchmarks with Google Benchmark (call once per process). Throws adaqp::Error
// for an unknown backend, for "cuda" in a build without the CUDA backend, and for "cuda" without
// a usable device (naming the reason).
void register_microbenchmarks(const MicrobenchOptions& options);
// The GPU set (microbench_cuda.cpp; microbench_cuda_none.cpp where CUDA is not built).
void register_cuda_microbenchmarks(const MicrobenchOptions& options);

struct Timings {
  std::map<std::string, std::vector<simulator::Sample>> samples;  // per cost class
  std::map<std::string, double> seconds;                          // per call, by benchmark name
};
// Runs the registered calibration benchmarks (only those named in `only`, when given; a name not
// in the grid throws adaqp::Error) and returns their timings (seconds per call). `progress` (may
// be null) receives one line per finished benchmark. With corun > 1, first starts corun - 1
// partner processes with `partner` (a command of this executable that calls run_corun_partner
// with the same options; "--corun-partner FD,SLOT" is appended) and ends them at the end.
Timings run_microbenchmarks(void (*progress)(const std::string& line) = nullptr,
                            const std::vector<std::string>& partner = {}, const std::vector<std::string>& only = {});

// The host-speed probe's benchmarks (simulator/profile.hpp, HostProbe) chosen from a calibration's
// timings (seconds per call by name), on synthetic operands (no dataset to load: a probe takes
// seconds): per cost class, the benchmarks at the 50th, 75th and 90th percentile of its seconds
// for the SpMM and GEMM classes (most of an epoch), at the 75th for every other class: kernels
// of the sizes that weigh in training, long enough to time well.
std::vector<std::string> probe_names(const std::map<std::string, double>& seconds);

// A co-run partner's life (`spec` from --corun-partner): registers the benchmarks of `options` and
// runs the case the leader times, until the leader ends it. Returns the exit code.
int run_corun_partner(const MicrobenchOptions& options, const std::string& spec);

}  // namespace adaqp::bench
