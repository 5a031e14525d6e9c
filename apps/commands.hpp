// Subcommands of the adaqp binary that live in their own files (apps/adaqp.cpp parses the
// command line and dispatches). Each returns the process exit code; user mistakes throw
// adaqp::Error.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/comm/communicator.hpp"
#include "engine/trainer.hpp"

namespace adaqp::apps {

struct SimulateOptions {
  int parts = 2;
  std::string profile;                        // calibration profile (YAML)
  std::string topology;                       // flat | shared | nodes=NxG; empty: the link's default
  std::string link = "none";                  // none | RATE (emulated loopback link)
  std::string metrics;                        // write run + summary records here
  std::string compare;                        // a measured run's records: print predicted next to measured
  std::string trace;                          // rank 0's per-task predicted seconds (JSON Lines, as train --trace)
  std::string probe;                          // host-speed probe (calibrate --probe-of): rescale the profile
  std::string shape;                          // graph::parse_shape_model spec instead of a dataset
  std::int64_t features = 100, classes = 47;  // with shape: input width and classes (dense features)
  std::string width_mix;                      // --bits adaptive: a run's records or BITS:FRACTION,...
  scheduler::WidthMix mix;                    // what width_mix gave (cmd_simulate fills it)
};
int cmd_simulate(const engine::TrainConfig& config, const SimulateOptions& options);

// The run record of `path` (records of adaqp train --metrics), for simulate --like; throws
// adaqp::Error naming the file when it cannot be read or holds no run record.
nlohmann::json run_record_of(const std::string& path);

struct CalibrateOptions {
  std::string out;                   // profile to write (merged into when it exists)
  int threads = 1;                   // compute threads per rank to calibrate for
  int corun = 1;                     // processes timing each compute benchmark at once (ranks per host)
  std::string corun_partner;         // internal: run as a co-run partner (simulator/calibration/corun.hpp)
  bool quick = false;                // smaller benchmark grid
  bool links_only = false;           // only the link probes (under mpirun)
  std::string link_class = "inter";  // name of the probed link class
  std::string machine;               // profile's machine name; default: the host name
  std::string backend = "cpu";       // whose kernels the compute fits time: cpu or cuda
  std::string probe_of;              // time only this profile's probe benchmarks; --out is then the probe file
};
int cmd_calibrate(const CalibrateOptions& options, engine::Communicator& comm);

}  // namespace adaqp::apps
