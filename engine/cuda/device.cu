#include "engine/cuda/check.cuh"
#include "engine/cuda/device.hpp"

namespace adaqp::engine::cuda {

DeviceInfo device_info() {
  DeviceInfo d;
  cudaRuntimeGetVersion(&d.runtime_version);
  if (cudaDriverGetVersion(&d.driver_version) != cudaSuccess || d.driver_version == 0) {
    d.reason = "no CUDA driver on this machine";
    d.no_device = true;
    return d;
  }
  const cudaError_t e = cudaGetDeviceCount(&d.count);
  if (e != cudaSuccess || d.count == 0) {
    d.reason = e != cudaSuccess ? std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e) : "no CUDA device";
    d.no_device = e == cudaSuccess || e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver;
    cudaGetLastError();  // clear the sticky error
    return d;
  }
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
    d.reason = "cudaGetDeviceProperties failed";
    cudaGetLastError();
    return d;
  }
  d.available = true;
  d.name = p.name;
  d.sm_count = p.multiProcessorCount;
  d.major = p.major;
  d.minor = p.minor;
  d.memory_gib = double(p.totalGlobalMem) / double(1ULL << 30);
  return d;
}

std::string device_pci_bus_id(int device) {
  char id[32] = {};
  check(cudaDeviceGetPCIBusId(id, int(sizeof(id)), device), "cudaDeviceGetPCIBusId(" + std::to_string(device) + ")");
  return id;
}

void* DeviceAlloc::allocate(std::size_t bytes) {
  void* p = nullptr;
  check(cudaMalloc(&p, bytes), "cudaMalloc(" + std::to_string(bytes) + " bytes)");
  return p;
}
void DeviceAlloc::release(void* p) noexcept {
  if (p) cudaFree(p);
}
void* PinnedAlloc::allocate(std::size_t bytes) {
  void* p = nullptr;
  check(cudaHostAlloc(&p, bytes, cudaHostAllocDefault), "cudaHostAlloc(" + std::to_string(bytes) + " bytes)");
  return p;
}
void PinnedAlloc::release(void* p) noexcept {
  if (p) cudaFreeHost(p);
}

namespace {
// Once per device: the default pool keeps what is freed (by default it returns memory to the
// driver at every synchronization, and the next allocation maps it again).
void keep_pool_memory() {
  static thread_local int done_for = -1;
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  if (done_for == device) return;
  cudaMemPool_t pool;
  check(cudaDeviceGetDefaultMemPool(&pool, device), "cudaDeviceGetDefaultMemPool");
  std::uint64_t unlimited = ~std::uint64_t(0);
  check(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &unlimited), "cudaMemPoolSetAttribute");
  done_for = device;
}
}  // namespace

StreamBuffer::StreamBuffer(std::size_t bytes, void* stream) : stream_(stream) {
  if (bytes == 0) return;
  keep_pool_memory();
  check(cudaMallocAsync(&ptr_, bytes, static_cast<cudaStream_t>(stream)),
        "cudaMallocAsync(" + std::to_string(bytes) + " bytes)");
}
StreamBuffer::~StreamBuffer() {
  if (ptr_) cudaFreeAsync(ptr_, static_cast<cudaStream_t>(stream_));
}

void copy_to_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes > 0) check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "copy to device");
}
void copy_to_host(void* dst, const void* src, std::size_t bytes) {
  if (bytes > 0) check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "copy to host");
}
void synchronize() {
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

void copy_on_device(void* dst, const void* src, std::size_t bytes, void* stream) {
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, static_cast<cudaStream_t>(stream)), "device copy");
}

Stream::Stream() {
  cudaStream_t s;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  stream_ = s;
}
Stream::~Stream() {
  if (stream_) cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}
void Stream::synchronize() {
  check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)), "cudaStreamSynchronize");
}

Event::Event() {
  cudaEvent_t e;
  check(cudaEventCreate(&e), "cudaEventCreate");
  event_ = e;
}
Event::~Event() {
  if (event_) cudaEventDestroy(static_cast<cudaEvent_t>(event_));
}
void Event::record(void* stream) {
  check(cudaEventRecord(static_cast<cudaEvent_t>(event_), static_cast<cudaStream_t>(stream)), "cudaEventRecord");
}
void Event::synchronize() {
  check(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)), "cudaEventSynchronize");
}
void Event::make_wait(void* stream) const {
  check(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), static_cast<cudaEvent_t>(event_), 0),
        "cudaStreamWaitEvent");
}
double Event::seconds_since(const Event& earlier) {
  float ms = 0;
  check(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(earlier.event_), static_cast<cudaEvent_t>(event_)),
        "cudaEventElapsedTime");
  return double(ms) * 1e-3;
}

void copy_to_device_async(void* dst, const void* src, std::size_t bytes, void* stream) {
  if (bytes > 0)
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, static_cast<cudaStream_t>(stream)),
          "async copy to device");
}
void copy_to_host_async(void* dst, const void* src, std::size_t bytes, void* stream) {
  if (bytes > 0)
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, static_cast<cudaStream_t>(stream)),
          "async copy to host");
}
void fill_zero(void* dst, std::size_t bytes, void* stream) {
  if (bytes > 0) check(cudaMemsetAsync(dst, 0, bytes, static_cast<cudaStream_t>(stream)), "cudaMemsetAsync");
}

EventTimer::EventTimer(void* stream) : stream_(stream) {
  cudaEvent_t b, e;
  check(cudaEventCreate(&b), "cudaEventCreate");
  check(cudaEventCreate(&e), "cudaEventCreate");
  begin_ = b;
  end_ = e;
}
EventTimer::~EventTimer() {
  cudaEventDestroy(static_cast<cudaEvent_t>(begin_));
  cudaEventDestroy(static_cast<cudaEvent_t>(end_));
}
void EventTimer::start() {
  check(cudaEventRecord(static_cast<cudaEvent_t>(begin_), static_cast<cudaStream_t>(stream_)), "cudaEventRecord");
}
double EventTimer::stop() {
  check(cudaEventRecord(static_cast<cudaEvent_t>(end_), static_cast<cudaStream_t>(stream_)), "cudaEventRecord");
  check(cudaEventSynchronize(static_cast<cudaEvent_t>(end_)), "cudaEventSynchronize");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(begin_), static_cast<cudaEvent_t>(end_)),
        "cudaEventElapsedTime");
  return double(ms) * 1e-3;
}

}  // namespace adaqp::engine::cuda
