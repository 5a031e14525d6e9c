// The calibration microbenchmarks (simulator/calibration/microbench.hpp) for people: every compute cost
// class of the simulator on the engine's kernels, one thread (ADAQP_BENCH_THREADS to change).
// Each row reports its features as counters f0, f1, ... (simulator/cost_model.hpp names them).
// `adaqp calibrate` runs the same benchmarks and fits them into a profile.
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "simulator/calibration/microbench.hpp"

int main(int argc, char** argv) {
  const char* env = std::getenv("ADAQP_BENCH_THREADS");
  adaqp::bench::register_microbenchmarks({env ? std::atoi(env) : 1, false, 0.05});
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
