// Builds without the CUDA backend (no nvcc at configure time): the GPU calibration set is absent.
#include "base/error.hpp"
#include "simulator/calibration/microbench.hpp"

namespace adaqp::bench {

void register_cuda_microbenchmarks(const MicrobenchOptions&) {
  throw Error("calibration backend 'cuda': this build has no CUDA backend (nvcc was not found when it was configured)");
}

}  // namespace adaqp::bench
