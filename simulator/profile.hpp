// Calibration profiles: the fitted cost models of one machine type (or of a cluster described by
// public figures), stored as versioned YAML (`adaqp calibrate --out PROFILE`; `profiles/`).
//
// Compute: per cost class (simulator/cost_model.hpp) a linear model
//   seconds = sum_i coef_s[i] * feature_i(task)
// fitted by least squares with non-negative coefficients over microbenchmark samples; `r2` is the
// coefficient of determination of the fit on its samples.
// Network: per link class an alpha-beta model, seconds = alpha_s + bytes * beta_s_per_byte, where
// 1 / beta is the bandwidth one transfer gets alone on the link.
// Host-speed probe: a few of the calibration benchmarks, by name, with the seconds per call they
// took while the profile was made. `adaqp calibrate --probe-of PROFILE` times the same benchmarks
// again (minutes or days later, e.g. right before a training run on a host whose speed drifts)
// and `simulate --probe` rescales the compute costs by what the probe saw (rescale_to_probe).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace adaqp::simulator {

inline constexpr int kProfileVersion = 1;

struct LinearFit {
  std::vector<double> coef_s;  // seconds per unit of each feature, in cost_model's feature order
  double r2 = 0;               // coefficient of determination on the samples
  std::int64_t samples = 0;
};

struct LinkClass {
  double alpha_s = 0;          // latency of one message (s)
  double beta_s_per_byte = 0;  // inverse bandwidth (s per byte)
  double r2 = 0;               // of the probe fit (1 for classes given by public figures)
  std::string source;          // "probe" or where the figures come from
  int ranks = 2;               // all-reduce classes ("CLASS-allreduce"): the ranks it was measured on
};

// Seconds per call of named calibration benchmarks ("calib/CLASS/LABEL"), as timed by one
// calibration or one probe, with the conditions they were timed under.
struct HostProbe {
  std::string grid;  // "full" or "quick": the benchmark grid the names come from
  int threads = 1;   // compute threads per process while timing
  int corun = 1;     // processes timing each benchmark at once
  std::map<std::string, double> seconds;
};

struct Profile {
  int version = kProfileVersion;
  std::string machine;     // e.g. "debian12-2core" or "2 servers x 4 A100, 100 Gbit/s"
  std::string backend;     // "cpu" | "cuda"
  std::string date;        // ISO date of the calibration
  std::string source;      // how it was made: "adaqp calibrate …" or the public figures used
  int threads = 1;         // compute threads per rank the compute fits hold for
  int cores_per_host = 0;  // cores that ranks on one host share (0: each rank has its own device)
  int corun = 1;           // processes that timed each compute benchmark at once (the ranks per host the fits are for)
  std::map<std::string, LinearFit> compute;  // by cost class
  std::map<std::string, LinkClass> links;    // by link class
  double post_s = 0;                         // cost of posting one send or receive (s)
  HostProbe probe;                           // the probe benchmarks' seconds in this calibration (empty: none recorded)
};

// Reads / writes a profile. Errors (missing file, unknown key, wrong version, a cost class whose
// coefficient count differs from cost_model's features) throw adaqp::Error naming file and key.
Profile load_profile(const std::string& path);
void save_profile(const Profile& profile, const std::string& path);  // atomic: PATH.tmp + rename
std::string to_yaml(const Profile& profile);
// A probe file (`adaqp calibrate --probe-of PROFILE --out PROBE`): the same checks, atomic save.
HostProbe load_probe(const std::string& path);
void save_probe(const HostProbe& probe, const std::string& path);

// Rescales `profile`'s compute fits to the host speed `now` saw: every coefficient of every cost
// class multiplied by the geometric mean, over the profile's probe benchmarks, of
// now.seconds / profile.probe.seconds; returns that factor. One factor for all classes: on a
// shared 2-core VM one benchmark's time moves by ~15% (sd of log ratio) between two probes a
// minute apart, so per-class factors from 1-3 benchmarks would add that noise; the mean over ~40
// moves ~2.5%. Throws adaqp::Error when the profile has no probe, when grid, threads or corun
// differ, or when `now` lacks one of the profile's probe benchmarks (naming it).
double rescale_to_probe(Profile& profile, const HostProbe& now);

// One sample of a cost class: its features and the measured seconds.
struct Sample {
  std::vector<double> features;
  double seconds = 0;
};
// Non-negative least squares over the samples (all with the same feature count), minimising the
// sum of squared relative errors (each sample weighted by 1 / seconds^2, so small and large
// kernels count alike). Features whose coefficient would be negative are dropped (coefficient 0)
// and the rest refitted. Throws adaqp::Error when there are fewer samples than features.
LinearFit fit_linear(const std::vector<Sample>& samples);

// Alpha-beta fit of (bytes, seconds) samples: scheduler::fit_alpha_beta (scheduler/link_fit.hpp).
LinkClass fit_link(const std::vector<std::pair<double, double>>& bytes_seconds);
// The same of ping-pong round trips (scheduler::fit_round_trip: the intercept halved).
LinkClass fit_round_trip_link(const std::vector<std::pair<double, double>>& bytes_round_trip_s);

}  // namespace adaqp::simulator
