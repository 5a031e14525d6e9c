// NCCL for the GPU backend, loaded at run time (dlopen of libnccl.so.2): adaqp starts without it,
// and the transport is chosen from what each run finds (engine/cuda/executor.hpp). The library
// comes from the CUDA toolkit or from the Python wheel nvidia-nccl-cu13 (its lib folder on
// LD_LIBRARY_PATH, as scripts/gpu_run.sh sets it). No CUDA or NCCL header here.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "engine/comm/communicator.hpp"

namespace adaqp::engine::cuda {

struct NcclStatus {
  bool available = false;
  std::string reason;   // why not (library not found, symbol missing), when unavailable
  std::string version;  // "2.28.9"
};
NcclStatus nccl_status();  // loads the library on first call; never throws

// One NCCL communicator over every rank of `comm` (one rank per GPU: NCCL refuses two ranks on one
// device). Made collectively: rank 0 makes the unique id, `comm` broadcasts it. Calls are enqueued
// on the given CUDA stream (cudaStream_t as void*); sizes in bytes / elements. Errors throw
// adaqp::Error naming the call and NCCL's message.
class NcclComm {
 public:
  NcclComm(Communicator& comm, int device);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  // Point-to-point operations between group_start and group_end are issued together (NCCL matches
  // them per peer in issue order, so every rank issues its groups in the same order).
  void group_start();
  void group_end();
  void send(const void* data, std::int64_t bytes, int peer, void* stream);
  void recv(void* data, std::int64_t bytes, int peer, void* stream);
  void allreduce_sum(float* data, std::int64_t n, void* stream);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace adaqp::engine::cuda
