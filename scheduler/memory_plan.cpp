#include "scheduler/memory_plan.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

namespace adaqp::scheduler {
namespace {

void touch(Lifetime& l, int position) {
  if (l.first < 0) l.first = position;
  l.first = std::min(l.first, position);
  l.last = std::max(l.last, position);
}

std::int64_t aligned(std::int64_t bytes) {
  return (bytes + MemoryLayout::kAlign - 1) / MemoryLayout::kAlign * MemoryLayout::kAlign;
}

// One region to place: a buffer or a message slot.
struct Region {
  bool message = false;
  int id = 0;
  std::int64_t bytes = 0;
  Lifetime life;
};

std::string region_name(const Plan& plan, bool message, int id) {
  return message ? "message slot " + std::to_string(id) : "buffer " + plan.buffers[std::size_t(id)].name;
}

}  // namespace

MemoryLayout plan_memory(const Plan& plan) {
  MemoryLayout m;
  const int n = int(plan.tasks.size());
  m.buffer_life.assign(plan.buffers.size(), {});
  m.message_life.assign(plan.messages.size(), {});
  // Per task: the latest task that depends on it (a send / receive is waited for there).
  std::vector<int> last_user(std::size_t(n), -1);
  for (const Task& t : plan.tasks)
    for (int d : t.deps) last_user[std::size_t(d)] = std::max(last_user[std::size_t(d)], t.id);
  for (int i = 0; i < n; ++i) {
    const Task& t = plan.tasks[std::size_t(i)];
    for (const Operand* o : {&t.src, &t.src2, &t.dst})
      if (o->kind == Operand::buffer) touch(m.buffer_life[std::size_t(o->id)], i);
    if (t.message < 0) continue;
    Lifetime& l = m.message_life[std::size_t(t.message)];
    touch(l, i);
    if (t.kind == TaskKind::send || t.kind == TaskKind::recv)
      touch(l, last_user[std::size_t(i)] >= 0 ? last_user[std::size_t(i)] : n);
  }
  if (plan.logits_buffer >= 0 && m.buffer_life[std::size_t(plan.logits_buffer)].first >= 0)
    touch(m.buffer_life[std::size_t(plan.logits_buffer)], n);

  std::vector<Region> regions;
  // A region no task touches (e.g. the dense first-layer input of sparse features) takes no bytes.
  auto bytes_if_used = [](std::int64_t bytes, const Lifetime& l) { return l.first >= 0 ? aligned(bytes) : 0; };
  for (std::size_t b = 0; b < plan.buffers.size(); ++b) {
    if (plan.buffers[b].persistent) continue;
    m.separate_bytes += buffer_bytes(plan.buffers[b]);
    regions.push_back(
        {false, int(b), bytes_if_used(buffer_bytes(plan.buffers[b]), m.buffer_life[b]), m.buffer_life[b]});
  }
  for (std::size_t s = 0; s < plan.messages.size(); ++s) {
    m.separate_bytes += plan.messages[s].bytes;
    regions.push_back({true, int(s), bytes_if_used(plan.messages[s].bytes, m.message_life[s]), m.message_life[s]});
  }
  m.buffer_offset.assign(plan.buffers.size(), -1);
  m.message_offset.assign(plan.messages.size(), -1);

  // Largest first; ties by first use, then buffers before messages, then id (deterministic).
  std::vector<std::size_t> order(regions.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const Region &x = regions[a], &y = regions[b];
    if (x.bytes != y.bytes) return x.bytes > y.bytes;
    if (x.life.first != y.life.first) return x.life.first < y.life.first;
    if (x.message != y.message) return !x.message;
    return x.id < y.id;
  });
  std::vector<std::int64_t> offset(regions.size(), -1);
  std::vector<std::size_t> placed;
  std::vector<std::pair<std::int64_t, std::int64_t>> taken;  // [begin, end) of live neighbours
  for (std::size_t k : order) {
    const Region& r = regions[k];
    taken.clear();
    for (std::size_t p : placed)
      if (regions[p].life.overlaps(r.life)) taken.emplace_back(offset[p], offset[p] + regions[p].bytes);
    std::sort(taken.begin(), taken.end());
    std::int64_t at = 0;
    for (const auto& [begin, end] : taken) {
      if (at + r.bytes <= begin) break;
      at = std::max(at, end);
    }
    offset[k] = at;
    placed.push_back(k);
    m.arena_bytes = std::max(m.arena_bytes, at + r.bytes);
  }
  for (std::size_t k = 0; k < regions.size(); ++k)
    (regions[k].message ? m.message_offset : m.buffer_offset)[std::size_t(regions[k].id)] = offset[k];
  return m;
}

std::int64_t run_arena_bytes(const std::vector<const Plan*>& plans) {
  std::int64_t bytes = 0;
  for (const Plan* p : plans)
    if (p) bytes = std::max(bytes, plan_memory(*p).arena_bytes);
  return bytes;
}

void check_memory(const Plan& plan, const MemoryLayout& m) {
  struct Placed {
    bool message;
    int id;
    std::int64_t begin, end;
    Lifetime life;
  };
  std::vector<Placed> all;
  for (std::size_t b = 0; b < plan.buffers.size(); ++b) {
    if (plan.buffers[b].persistent) continue;
    const std::int64_t at = m.buffer_offset.at(b);
    const bool used = m.buffer_life.at(b).first >= 0;
    all.push_back({false, int(b), at, at + (used ? buffer_bytes(plan.buffers[b]) : 0), m.buffer_life.at(b)});
  }
  for (std::size_t s = 0; s < plan.messages.size(); ++s) {
    const std::int64_t at = m.message_offset.at(s);
    const bool used = m.message_life.at(s).first >= 0;
    all.push_back({true, int(s), at, at + (used ? plan.messages[s].bytes : 0), m.message_life.at(s)});
  }
  for (std::size_t i = 0; i < all.size(); ++i) {
    const Placed& a = all[i];
    if (a.begin < 0 || a.end > m.arena_bytes || a.begin % MemoryLayout::kAlign != 0)
      throw std::logic_error("memory plan: " + region_name(plan, a.message, a.id) + " at [" + std::to_string(a.begin) +
                             ", " + std::to_string(a.end) + ") is outside the arena or unaligned");
    for (std::size_t j = i + 1; j < all.size(); ++j) {
      const Placed& b = all[j];
      if (a.life.overlaps(b.life) && a.begin < b.end && b.begin < a.end && a.begin < a.end && b.begin < b.end)
        throw std::logic_error("memory plan: " + region_name(plan, a.message, a.id) + " and " +
                               region_name(plan, b.message, b.id) + " are live together but share bytes");
    }
  }
}

}  // namespace adaqp::scheduler
