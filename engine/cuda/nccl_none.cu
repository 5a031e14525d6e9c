// Built without nccl.h (ADAQP_NCCL=OFF, or NCCL not found at configure time): NCCL is reported
// unavailable and the GPU backend talks MPI.
#include "base/error.hpp"
#include "engine/cuda/nccl.hpp"

namespace adaqp::engine::cuda {

NcclStatus nccl_status() {
  return {false, "adaqp was built without NCCL (nccl.h not found at configure time)", ""};
}

struct NcclComm::Impl {};
NcclComm::NcclComm(Communicator&, int) {
  throw Error("--transport nccl: " + nccl_status().reason);
}
NcclComm::~NcclComm() = default;
void NcclComm::group_start() {}
void NcclComm::group_end() {}
void NcclComm::send(const void*, std::int64_t, int, void*) {}
void NcclComm::recv(void*, std::int64_t, int, void*) {}
void NcclComm::allreduce_sum(float*, std::int64_t, void*) {}

}  // namespace adaqp::engine::cuda
