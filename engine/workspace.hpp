// The arena that the executors of one backend share (scheduler/memory_plan.hpp places each plan's
// buffers and message slots in it). Plans never run at the same time and nothing in the arena is
// kept from one run to the next (a run's caller reads what it needs, e.g. the logits, before the
// next run), so each executor asks for its plan's size at the start of every run; growing drops
// the contents. New bytes are 0xFF: every float a NaN, so a task that reads rows no task of its
// step wrote poisons the loss instead of reading another buffer's values unnoticed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "scheduler/memory_plan.hpp"

namespace adaqp::engine {

class Workspace {
 public:
  // At least `bytes` bytes, aligned to MemoryLayout::kAlign; valid until the next call that grows it.
  std::byte* reserve(std::int64_t bytes) {
    if (bytes > size_) {
      data_.reset();
      const auto align = std::size_t(scheduler::MemoryLayout::kAlign);
      const std::size_t n = (std::size_t(bytes) + align - 1) / align * align;
      void* p = std::aligned_alloc(align, n);
      if (!p) throw std::bad_alloc();
      std::memset(p, 0xFF, n);
      data_.reset(static_cast<std::byte*>(p));
      size_ = std::int64_t(n);
    }
    return data_.get();
  }
  std::int64_t bytes() const { return size_; }

 private:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> data_;
  std::int64_t size_ = 0;
};

}  // namespace adaqp::engine
