// Internal to engine/cuda: CUDA runtime errors as adaqp::Error ("cudaMalloc(4096 bytes): out of
// memory"). Included by .cu files only.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "graph/error.hpp"

namespace adaqp::engine::cuda {

inline void check(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess) throw Error("CUDA: " + what + ": " + cudaGetErrorString(e));
}

}  // namespace adaqp::engine::cuda
