// CUDA devices and device memory for the GPU backend. No CUDA header here: callers compile with a
// plain C++ compiler; the implementation (device.cu) is the only place that includes the runtime.
// Errors of the CUDA runtime throw adaqp::Error naming the call and the runtime's message.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace adaqp::engine::cuda {

struct DeviceInfo {
  bool available = false;  // a device this process can use
  std::string reason;      // why not, when unavailable (no driver, no device, ...)
  int count = 0;           // devices visible
  std::string name;        // device 0
  int sm_count = 0;
  int major = 0, minor = 0;     // compute capability
  double memory_gib = 0;        // total global memory
  int runtime_version = 0, driver_version = 0;
};
DeviceInfo device_info();  // never throws

// Device memory (cudaMalloc / cudaFree), moved but never copied.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr, o.bytes_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }
  std::size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

// Blocking copies between host and device memory (bytes).
void copy_to_device(void* device_dst, const void* host_src, std::size_t bytes);
void copy_to_host(void* host_dst, const void* device_src, std::size_t bytes);
void synchronize();  // waits for all work on the device
// Device-to-device copy of `bytes` (the bandwidth reference of the benchmarks).
void copy_on_device(void* dst, const void* src, std::size_t bytes, void* stream = nullptr);

// Elapsed device time between two points of a stream (CUDA events), in seconds.
class EventTimer {
 public:
  explicit EventTimer(void* stream = nullptr);
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  void start();
  double stop();  // waits for the stream; seconds since start()

 private:
  void* stream_;
  void* begin_ = nullptr;
  void* end_ = nullptr;
};

}  // namespace adaqp::engine::cuda
