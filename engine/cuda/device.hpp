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
  bool no_device = false;  // unavailable because this machine has no driver or no device (tests skip only then)
  int count = 0;           // devices visible
  std::string name;        // device 0
  int sm_count = 0;
  int major = 0, minor = 0;  // compute capability
  double memory_gib = 0;     // total global memory
  int runtime_version = 0, driver_version = 0;
};
DeviceInfo device_info();  // never throws
// PCI bus id of a device ("0000:19:00.0"): which ranks share one GPU. Throws adaqp::Error.
std::string device_pci_bus_id(int device);

// Memory owned by one object, moved but never copied; Alloc says where it lives.
template <class Alloc>
class OwnedMemory {
 public:
  OwnedMemory() = default;
  explicit OwnedMemory(std::size_t bytes) : ptr_(bytes > 0 ? Alloc::allocate(bytes) : nullptr), bytes_(bytes) {}
  ~OwnedMemory() { Alloc::release(ptr_); }
  OwnedMemory(OwnedMemory&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr, o.bytes_ = 0; }
  OwnedMemory& operator=(OwnedMemory&& o) noexcept {
    if (this != &o) {
      Alloc::release(ptr_);
      ptr_ = o.ptr_;
      bytes_ = o.bytes_;
      o.ptr_ = nullptr;
      o.bytes_ = 0;
    }
    return *this;
  }
  OwnedMemory(const OwnedMemory&) = delete;
  OwnedMemory& operator=(const OwnedMemory&) = delete;
  void* get() const { return ptr_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  std::size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};
// Device memory (cudaMalloc / cudaFree). allocate throws adaqp::Error; release(nullptr) is a no-op.
struct DeviceAlloc {
  static void* allocate(std::size_t bytes);
  static void release(void* p) noexcept;
};
// Page-locked host memory (cudaHostAlloc): the staging area of messages and all-reduces, so
// copies to and from the device run asynchronously at full PCIe / NVLink-C2C speed.
struct PinnedAlloc {
  static void* allocate(std::size_t bytes);
  static void release(void* p) noexcept;
};
using DeviceBuffer = OwnedMemory<DeviceAlloc>;
using PinnedBuffer = OwnedMemory<PinnedAlloc>;

// Device memory for the temporaries of one call, from the device's stream-ordered pool
// (cudaMallocAsync on `stream`; released with cudaFreeAsync on the same stream). Unlike
// DeviceBuffer, whose cudaFree waits for the whole device, neither end waits for other streams, so
// a temporary on the compute stream does not stall the communication stream. The pool keeps freed
// memory for reuse (release threshold: unlimited). Throws adaqp::Error.
class StreamBuffer {
 public:
  StreamBuffer(std::size_t bytes, void* stream);
  ~StreamBuffer();
  StreamBuffer(const StreamBuffer&) = delete;
  StreamBuffer& operator=(const StreamBuffer&) = delete;
  void* get() const { return ptr_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  void* stream_ = nullptr;
};

// Blocking copies between host and device memory (bytes).
void copy_to_device(void* device_dst, const void* host_src, std::size_t bytes);
void copy_to_host(void* host_dst, const void* device_src, std::size_t bytes);
void synchronize();  // waits for all work on the device
// Device-to-device copy of `bytes` (the bandwidth reference of the benchmarks).
void copy_on_device(void* dst, const void* src, std::size_t bytes, void* stream = nullptr);

// A non-blocking stream (cudaStreamCreateWithFlags), owned.
class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  void* get() const { return stream_; }
  void synchronize();

 private:
  void* stream_ = nullptr;
};

// A CUDA event (timing enabled), owned: marks a point of a stream that another stream or the
// host can wait for, and that elapsed times are measured between.
class Event {
 public:
  Event();
  ~Event();
  Event(Event&& o) noexcept : event_(o.event_) { o.event_ = nullptr; }
  Event& operator=(Event&&) = delete;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record(void* stream);
  void synchronize();                          // host waits for the point
  void make_wait(void* stream) const;          // `stream` waits for the point (no host wait)
  double seconds_since(const Event& earlier);  // both recorded and complete

 private:
  void* event_ = nullptr;
};

// Asynchronous copies and fill on a stream (host memory must be pinned to overlap).
void copy_to_device_async(void* device_dst, const void* host_src, std::size_t bytes, void* stream);
void copy_to_host_async(void* host_dst, const void* device_src, std::size_t bytes, void* stream);
void fill_zero(void* device_dst, std::size_t bytes, void* stream = nullptr);

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
