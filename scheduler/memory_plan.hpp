// Where a plan's buffers and message slots live: one arena of bytes that every plan of a run
// shares (a run's plans - training step, evaluation, the stale warm-up step - never run at the
// same time), with regions whose lifetimes do not overlap placed on the same bytes.
//
// A region's lifetime is the range of positions in plan.tasks (the list order every executor issues
// tasks in: engine/step_driver.hpp) from the first task that touches it to the last:
//   - a buffer: every task naming it as an operand (src, src2 or dst); the logits buffer is read
//     after the run (accuracy), so it lives to the end;
//   - a message slot: its pack / unpack tasks, and its send / receive until the task that waits for
//     it (the latest task that depends on the send / receive; the end of the step when none does).
// Persistent buffers (the stale stores) keep their values across epochs: not in the arena. A region
// no task touches (the dense first-layer input when features are sparse) takes no bytes.
// Each region starts on a 64-byte boundary. Placement: largest region first, at the lowest offset
// free of every placed region whose lifetime overlaps (greedy by size, as in TFLite's planner).
//
// What it saves: dead activations and gradients reuse each other's bytes (e.g. the first layer's
// dropped input once it has been aggregated), and evaluation reuses the training step's bytes. The
// executor makes every region it reads before writing an error it can see (the arena starts as NaN).
#pragma once
#include <cstdint>
#include <vector>

#include "scheduler/plan.hpp"

namespace adaqp::scheduler {

struct Lifetime {
  int first = -1, last = -1;  // task positions, inclusive; first == -1: never touched
  bool overlaps(const Lifetime& o) const { return first >= 0 && o.first >= 0 && first <= o.last && o.first <= last; }
};

struct MemoryLayout {
  static constexpr std::int64_t kAlign = 64;  // bytes
  // Byte offset into the arena per buffer (plan.buffers order; -1: persistent, stored elsewhere)
  // and per message slot (plan.messages order).
  std::vector<std::int64_t> buffer_offset, message_offset;
  std::vector<Lifetime> buffer_life, message_life;
  std::int64_t arena_bytes = 0;     // bytes the plan needs (the end of its last region)
  std::int64_t separate_bytes = 0;  // one allocation per non-persistent buffer and message slot, used or not
};

// Lifetimes and placement of one plan's regions (the rules above).
MemoryLayout plan_memory(const Plan& plan);

// Throws std::logic_error naming both regions when two regions whose lifetimes overlap share a byte,
// or a region lies outside the arena. plan_memory's result always passes; tests check it.
void check_memory(const Plan& plan, const MemoryLayout& layout);

// The arena one rank's executors share: the largest plan_memory(p).arena_bytes over the plans of
// its run (null entries skipped). The `arena_bytes` of run summaries and simulator predictions.
std::int64_t run_arena_bytes(const std::vector<const Plan*>& plans);

// Bytes of one buffer (rows x cols floats) and of one message slot.
inline std::int64_t buffer_bytes(const BufferSpec& b) {
  return b.rows * b.cols * std::int64_t(sizeof(float));
}

}  // namespace adaqp::scheduler
