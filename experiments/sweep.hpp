// The sweep runner: runs every point of a manifest (experiments/manifest.hpp) with the engine
// (mpirun, and benchmarks/link_emulation.sh for an emulated link) and / or the simulator
// (adaqp simulate), each as its own process of this adaqp binary.
//
// Results folder OUT:
//   sweep.json         provenance: manifest path, name and hash, git commit, build, host, start time
//   runs/ID.engine.jsonl, runs/ID.simulator.jsonl   each run's records (written atomically by the run)
//   logs/ID.EXECUTOR.log                              each run's output
//   results.csv        one row per finished run: executor, every axis value, summary fields
//                      (rewritten atomically after every run)
//   paired.csv         every strategy against its baseline, paired by seed (experiments/paired.hpp;
//                      rewritten with results.csv)
// A point whose records exist is finished: --resume skips it, so a killed sweep continues where
// it stopped and ends with every point exactly once. --resume also takes a manifest that only adds
// points to the one that made OUT (every finished run in OUT has an id of the new manifest; the
// hashes it grew from go to sweep.json's "extends"); any other manifest is refused.
#pragma once
#include <string>

namespace adaqp::experiments {

struct SweepOptions {
  std::string manifest;
  std::string out;       // default: results/<manifest name>
  bool resume = false;   // continue a sweep in OUT (required when OUT already has finished runs)
  bool dry_run = false;  // print the points and their commands, run nothing
  int jobs = 1;          // simulator runs at a time (engine runs always run alone: they are timed)
};

// Returns the number of failed runs (0 = all finished). Throws adaqp::Error for a bad manifest,
// an OUT that belongs to another manifest, or a link emulation that cannot be set up.
int run_sweep(const SweepOptions& options);

// Rebuilds OUT/results.csv and OUT/paired.csv from OUT/runs (atomically). Returns results.csv's rows.
int write_results_csv(const std::string& out);

// `adaqp report DIR`: plots/report.py with a Python 3 that has matplotlib ($ADAQP_PYTHON, python3
// on PATH, /usr/bin/python3, in that order). Returns its exit code; throws adaqp::Error when no
// such interpreter exists or DIR is not a results folder.
int run_report(const std::string& dir);

}  // namespace adaqp::experiments
