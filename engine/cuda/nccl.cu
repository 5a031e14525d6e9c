#include <dlfcn.h>
#include <nccl.h>

#include <cstring>
#include <mutex>
#include <vector>

#include "base/error.hpp"
#include "engine/cuda/nccl.hpp"

namespace adaqp::engine::cuda {
namespace {

// The NCCL entry points adaqp uses, resolved once.
struct Api {
  NcclStatus status;
  ncclResult_t (*get_version)(int*) = nullptr;
  ncclResult_t (*get_unique_id)(ncclUniqueId*) = nullptr;
  ncclResult_t (*comm_init_rank)(ncclComm_t*, int, ncclUniqueId, int) = nullptr;
  ncclResult_t (*comm_destroy)(ncclComm_t) = nullptr;
  ncclResult_t (*group_start)() = nullptr;
  ncclResult_t (*group_end)() = nullptr;
  ncclResult_t (*send)(const void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t) = nullptr;
  ncclResult_t (*recv)(void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t) = nullptr;
  ncclResult_t (*all_reduce)(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t,
                             cudaStream_t) = nullptr;
  const char* (*error_string)(ncclResult_t) = nullptr;
};

template <class F>
bool resolve(void* lib, const char* name, F* f, NcclStatus& st) {
  *f = reinterpret_cast<F>(dlsym(lib, name));
  if (!*f) st.reason = std::string("libnccl.so.2 has no ") + name;
  return *f != nullptr;
}

const Api& api() {
  static Api a;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* e = dlerror();
      a.status.reason = std::string("libnccl.so.2 not found (") + (e ? e : "dlopen failed") + ")";
      return;
    }
    if (!(resolve(lib, "ncclGetVersion", &a.get_version, a.status) &&
          resolve(lib, "ncclGetUniqueId", &a.get_unique_id, a.status) &&
          resolve(lib, "ncclCommInitRank", &a.comm_init_rank, a.status) &&
          resolve(lib, "ncclCommDestroy", &a.comm_destroy, a.status) &&
          resolve(lib, "ncclGroupStart", &a.group_start, a.status) &&
          resolve(lib, "ncclGroupEnd", &a.group_end, a.status) && resolve(lib, "ncclSend", &a.send, a.status) &&
          resolve(lib, "ncclRecv", &a.recv, a.status) && resolve(lib, "ncclAllReduce", &a.all_reduce, a.status) &&
          resolve(lib, "ncclGetErrorString", &a.error_string, a.status)))
      return;
    int v = 0;
    a.get_version(&v);
    // NCCL >= 2.9 encodes major * 10000 + minor * 100 + patch.
    a.status.version = std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
    a.status.available = true;
  });
  return a;
}

void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw Error(std::string("NCCL: ") + what + ": " + api().error_string(r));
}

}  // namespace

NcclStatus nccl_status() {
  return api().status;
}

struct NcclComm::Impl {
  ncclComm_t comm = nullptr;
};

NcclComm::NcclComm(Communicator& comm, int device) : impl_(std::make_unique<Impl>()) {
  const Api& a = api();
  if (!a.status.available) throw Error("--transport nccl: " + a.status.reason);
  static_assert(sizeof(ncclUniqueId) % 4 == 0, "unique id is broadcast as 32-bit words");
  ncclUniqueId id{};
  std::vector<std::int32_t> words(sizeof(id) / 4);
  if (comm.rank() == 0) {
    check(a.get_unique_id(&id), "ncclGetUniqueId");
    std::memcpy(words.data(), &id, sizeof(id));
  }
  comm.broadcast(words, 0);
  std::memcpy(&id, words.data(), sizeof(id));
  if (cudaSetDevice(device) != cudaSuccess) throw Error("NCCL: cudaSetDevice(" + std::to_string(device) + ") failed");
  check(a.comm_init_rank(&impl_->comm, comm.size(), id, comm.rank()), "ncclCommInitRank");
}

NcclComm::~NcclComm() {
  if (impl_ && impl_->comm) api().comm_destroy(impl_->comm);
}

void NcclComm::group_start() {
  check(api().group_start(), "ncclGroupStart");
}
void NcclComm::group_end() {
  check(api().group_end(), "ncclGroupEnd");
}
void NcclComm::send(const void* data, std::int64_t bytes, int peer, void* stream) {
  check(api().send(data, std::size_t(bytes), ncclUint8, peer, impl_->comm, static_cast<cudaStream_t>(stream)),
        "ncclSend");
}
void NcclComm::recv(void* data, std::int64_t bytes, int peer, void* stream) {
  check(api().recv(data, std::size_t(bytes), ncclUint8, peer, impl_->comm, static_cast<cudaStream_t>(stream)),
        "ncclRecv");
}
void NcclComm::allreduce_sum(float* data, std::int64_t n, void* stream) {
  check(api().all_reduce(data, data, std::size_t(n), ncclFloat32, ncclSum, impl_->comm,
                         static_cast<cudaStream_t>(stream)),
        "ncclAllReduce");
}

}  // namespace adaqp::engine::cuda
