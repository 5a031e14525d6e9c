// Internal to engine/cuda: errors of the CUDA runtime, cuBLAS and cuSPARSE as adaqp::Error
// ("CUDA: cudaMalloc(4096 bytes): out of memory"). Included by .cu files only.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusparse.h>

#include <string>

#include "base/error.hpp"

namespace adaqp::engine::cuda {

inline void check(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess) throw Error("CUDA: " + what + ": " + cudaGetErrorString(e));
}
inline void check_blas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw Error(std::string("cuBLAS: ") + what + ": status " + std::to_string(int(s)));
}
inline void check_sparse(cusparseStatus_t s, const char* what) {
  if (s != CUSPARSE_STATUS_SUCCESS) throw Error(std::string("cuSPARSE: ") + what + ": " + cusparseGetErrorString(s));
}

}  // namespace adaqp::engine::cuda
