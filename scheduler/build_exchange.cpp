// Halo exchanges of the plan builder (plan_builder.hpp): receives, packs, sends and unpacks, the
// widths and layouts of their messages, and the stale stores of pipelining.
#include <stdexcept>

#include "scheduler/plan_builder.hpp"
#include "scheduler/wire_format.hpp"

namespace adaqp::scheduler {

PlanBuilder::Wire PlanBuilder::wire(int l, Direction d, int sender, int receiver, std::int64_t rows,
                                    std::int64_t cols) const {
  if (assignment_) {
    const auto it = assignment_->find(ChannelKey{l, d, sender, receiver});
    if (it != assignment_->end()) {
      const MessageLayout& lay = it->second;
      std::int64_t bytes = 0, meta = 0, total = 0;
      for (std::size_t g = 0; g < lay.group_rows.size(); ++g) {
        bytes += message_bytes(lay.group_rows[g], cols, lay.group_widths[g]);
        meta += meta_bytes(lay.group_rows[g], lay.group_widths[g]);
        total += lay.group_rows[g];
      }
      if (total != rows || (!lay.order.empty() && std::int64_t(lay.order.size()) != rows))
        throw std::logic_error("bit assignment of layer " + std::to_string(l) + " " + to_string(d) + " " +
                               std::to_string(sender) + "->" + std::to_string(receiver) + " covers " +
                               std::to_string(total) + " of " + std::to_string(rows) + " rows");
      return {Width::mixed(), bytes, meta, &lay};
    }
  }
  return {width_, message_bytes(rows, cols, width_), meta_bytes(rows, width_), nullptr};
}

Task PlanBuilder::message_task(TaskKind kind, int l, Direction d, std::vector<int> deps, const std::string& what,
                               int peer, std::int64_t rows, std::int64_t cols, const Wire& w, int msg) const {
  Task t = task(kind, l, d, std::move(deps), what);
  t.peer = peer;
  t.rows = rows;
  t.cols = cols;
  t.bytes = w.bytes;
  t.meta_bytes = w.meta;
  t.width = w.width;
  if (w.layout && (kind == TaskKind::pack || kind == TaskKind::unpack)) t.layout = *w.layout;
  t.message = msg;
  return t;
}

PlanBuilder::Pending PlanBuilder::post_exchange(int l, Direction d, int data, std::int64_t cols,
                                                const std::vector<int>& ready) {
  const int P = part_.parts, me = part_.rank;
  const int tag = 2 * l + (d == B);
  Pending pend{l, d, data, cols, std::vector<int>(P, -1), std::vector<int>(P, -1), -1, {}};
  if (peers_.sampled() && d == F && nl_ > n_) {  // dropped halo rows aggregate as zero
    Task z = task(TaskKind::copy_rows, l, d, {}, "clear halo rows");
    z.dst = buf(data);
    z.rows = nl_ - n_;
    z.cols = cols;
    z.row_sel = {RowSet::range, n_, nl_, -1};
    pend.zero = add(std::move(z));
  }
  for (int q = 0; q < P; ++q) {
    if (q == me || rows_in(d, q) == 0) continue;
    const Wire w = wire(l, d, q, me, rows_in(d, q), cols);
    pend.recv_msg[q] = message(q, w.bytes, false);
    Task t = message_task(TaskKind::recv, l, d, {}, "recv<-" + std::to_string(q), q, rows_in(d, q), cols, w,
                          pend.recv_msg[q]);
    t.tag = tag;
    pend.recv_task[q] = add(std::move(t));
  }
  for (int q = 0; q < P; ++q) {
    if (q == me || rows_out(d, q) == 0) continue;
    const Wire w = wire(l, d, me, q, rows_out(d, q), cols);
    const int msg = message(q, w.bytes, true);
    Task pk = message_task(TaskKind::pack, l, d, ready, "pack->" + std::to_string(q), q, rows_out(d, q), cols, w, msg);
    pk.src = buf(data);
    pk.row_sel = d == F ? RowSet{RowSet::send_list, 0, 0, q} : RowSet{RowSet::halo, 0, 0, q};
    pk.row_sel.sampled = peers_.sampled();
    const int pid = add(std::move(pk));
    pend.packs.push_back(pid);
    Task s = message_task(TaskKind::send, l, d, {pid}, "send->" + std::to_string(q), q, rows_out(d, q), cols, w, msg);
    s.tag = tag;
    add(std::move(s));
  }
  return pend;
}

std::vector<int> PlanBuilder::finish_exchange(const Pending& pend, const std::vector<int>& after) {
  if (peers_.stale) return finish_stale(pend, after);
  std::vector<int> unpacks;
  for (int q = 0; q < part_.parts; ++q) {
    if (pend.recv_task[q] < 0) continue;
    std::vector<int> deps = after;
    deps.push_back(pend.recv_task[q]);
    if (pend.zero >= 0) deps.push_back(pend.zero);
    const Wire w = wire(pend.layer, pend.dir, q, part_.rank, rows_in(pend.dir, q), pend.cols);
    Task u = message_task(TaskKind::unpack, pend.layer, pend.dir, deps, "unpack<-" + std::to_string(q), q,
                          rows_in(pend.dir, q), pend.cols, w, pend.recv_msg[q]);
    u.dst = buf(pend.data);
    u.accumulate = pend.dir == B;
    u.row_sel = pend.dir == F ? RowSet{RowSet::halo, 0, 0, q} : RowSet{RowSet::send_list, 0, 0, q};
    u.row_sel.sampled = peers_.sampled();
    const std::int64_t kept = rows_in(pend.dir, q);
    if (kept < full_in(pend.dir, q)) u.scale = double(full_in(pend.dir, q)) / double(kept);
    unpacks.push_back(add(std::move(u)));
  }
  return unpacks;
}

// Stale pipelining. This epoch's messages go to a persistent store per (layer, direction):
// forward, the halo rows (rows [0, nl - n) in halo order); backward, the gradients of the rows
// sent to each peer (the send lists, concatenated in peer order). The layer reads the store
// instead of the messages: forward it copies the store into the halo rows, backward it adds the
// store into the send-list rows. Steady state: the read comes first (last epoch's values) and
// the unpacks run after the optimizer step; warm-up: the unpacks fill the store first.
std::vector<int> PlanBuilder::finish_stale(const Pending& pend, const std::vector<int>& after) {
  const bool fwd = pend.dir == F, warmup = peers_.warmup;
  std::int64_t store_rows = 0;
  for (int q = 0; q < part_.parts; ++q)
    if (q != part_.rank) store_rows += full_in(pend.dir, q);
  const int store = buffer("stale.layer" + std::to_string(pend.layer) + (fwd ? ".forward" : ".backward"), store_rows,
                           pend.cols, true);
  std::vector<int> unpack_of(std::size_t(part_.parts), -1);  // warm-up: the unpack into the store per peer
  std::vector<Deferred> unpacks;                             // steady state: the unpacks after the read
  for (int q = 0; q < part_.parts; ++q) {
    if (pend.recv_task[q] < 0) continue;
    const Wire w = wire(pend.layer, pend.dir, q, part_.rank, rows_in(pend.dir, q), pend.cols);
    Task u = message_task(TaskKind::unpack, pend.layer, pend.dir, {}, "unpack<-" + std::to_string(q) + " to store", q,
                          rows_in(pend.dir, q), pend.cols, w, pend.recv_msg[q]);
    u.dst = buf(store);
    const std::int64_t off = fwd ? halo_offset(q) : send_offset(q);
    u.row_sel = {RowSet::range, off, off + rows_in(pend.dir, q), -1};
    u.smoothing = warmup ? 0.0 : peers_.stale_momentum;
    u.measure_drift = !warmup && peers_.measure_drift;  // fresh epochs' drift is not staleness
    if (warmup) {
      std::vector<int> deps = after;
      deps.push_back(pend.recv_task[q]);
      u.deps = deps;
      unpack_of[std::size_t(q)] = add(std::move(u));
    } else {
      unpacks.push_back({std::move(u), {pend.recv_task[q]}});
    }
  }
  std::vector<int> reads;
  if (fwd) {
    if (nl_ > n_) {
      std::vector<int> deps = after;
      for (int u : unpack_of)
        if (u >= 0) deps.push_back(u);
      reads.push_back(stale_read(pend, store, -1, deps));
    }
  } else {
    for (int q = 0; q < part_.parts; ++q) {
      if (q == part_.rank || send_rows(q) == 0) continue;
      std::vector<int> deps = after;
      if (unpack_of[std::size_t(q)] >= 0) deps.push_back(unpack_of[std::size_t(q)]);
      reads.push_back(stale_read(pend, store, q, deps));
    }
  }
  for (auto& d : unpacks) {  // the store is overwritten only after this epoch's read of it
    d.deps.insert(d.deps.end(), reads.begin(), reads.end());
    deferred_.push_back(std::move(d));
  }
  return reads;
}

// The read of a stale store: forward, every halo row (q = -1); backward, the gradients of the rows
// sent to q, added into their send-list rows.
int PlanBuilder::stale_read(const Pending& pend, int store, int q, std::vector<int> deps) {
  const bool fwd = pend.dir == F;
  Task c = task(TaskKind::copy_rows, pend.layer, pend.dir, std::move(deps),
                fwd ? "stale halo rows" : "+stale gradients<-" + std::to_string(q));
  c.src = buf(store);
  c.dst = buf(pend.data);
  c.cols = pend.cols;
  if (fwd) {
    c.rows = nl_ - n_;
    c.row_sel = {RowSet::range, n_, nl_, -1};
  } else {
    c.rows = send_rows(q);
    c.src_begin = send_offset(q);
    c.row_sel = {RowSet::send_list, 0, 0, q};
    c.accumulate = true;
  }
  return add(std::move(c));
}

void PlanBuilder::emit_deferred_unpacks() {
  for (auto& d : deferred_) {
    d.unpack.deps = d.deps;
    add(std::move(d.unpack));
  }
  deferred_.clear();
}

}  // namespace adaqp::scheduler
