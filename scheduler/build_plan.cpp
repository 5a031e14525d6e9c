#include "scheduler/build_plan.hpp"

#include <functional>
#include <stdexcept>

#include "base/error.hpp"
#include "scheduler/peers.hpp"
#include "scheduler/wire_format.hpp"

namespace adaqp::scheduler {
namespace {

class Builder {
 public:
  Builder(const graph::PartitionShape& part, const ModelShape& m, Strategy s, bool training, int bits,
          const BitAssignment* assignment, const PeerOptions& peers)
      : part_(part),
        m_(m),
        strategy_(s),
        bits_(training ? bits : 32),
        assignment_(training ? assignment : nullptr),
        peers_(training ? peers : PeerOptions{}),
        n_(part.num_inner()),
        nl_(part.num_local()) {
    if (!valid_bits(bits)) throw Error("--bits " + std::to_string(bits) + ": allowed " + kWidthsAllowed);
    check_peers(peers_, s == Strategy::overlap ? Mode::overlap : Mode::vanilla, false);
    if (peers_.any() && assignment_)
      throw Error("adaptive widths with stale pipelining or boundary sampling: not supported");
    plan_.rank = part.rank;
    plan_.ranks = part.parts;
    plan_.strategy = s;
    plan_.training = training;
    plan_.bits = bits_;
    // Non-zeros of the aggregation operator and its transpose by column class.
    nnz_to_halo_ = part.nnz_to_halo;
    nnz_to_inner_ = part.nnz_central + part.nnz_marginal - part.nnz_to_halo;
    self_loops_ = m.sage ? 0 : 1;
  }

  Plan build() {
    if (m_.layers() < 1) throw Error("scheduler: the model has no layer");
    if (m_.sparse_input && !m_.transform_first(0))
      throw Error("scheduler: sparse input features need a transform-first first layer");
    declare_params();
    std::vector<int> fwd_out(m_.layers());
    int prev = -1;  // task producing the previous layer's output
    for (int l = 0; l < m_.layers(); ++l) prev = fwd_out[l] = forward_layer(l, prev);
    plan_.logits_buffer = out_[m_.layers() - 1];
    if (plan_.training) backward(prev);
    emit_deferred_unpacks();
    return std::move(plan_);
  }

 private:
  // ---- declarations ------------------------------------------------------------------------
  int buffer(const std::string& name, std::int64_t rows, std::int64_t cols, bool persistent = false) {
    plan_.buffers.push_back({name, rows, cols, persistent});
    return int(plan_.buffers.size()) - 1;
  }
  int message(int peer, std::int64_t bytes, bool outgoing) {
    plan_.messages.push_back({peer, bytes, outgoing});
    return int(plan_.messages.size()) - 1;
  }
  int add(Task t) {
    t.id = int(plan_.tasks.size());
    plan_.tasks.push_back(std::move(t));
    return plan_.tasks.back().id;
  }
  void declare_params() {
    for (int l = 0; l < m_.layers(); ++l) {
      const std::string pre = "layer" + std::to_string(l) + ".";
      plan_.params.push_back({pre + (m_.sage ? "w_neigh" : "weight"), m_.dims[l], m_.dims[l + 1]});
      if (m_.sage) plan_.params.push_back({pre + "w_self", m_.dims[l], m_.dims[l + 1]});
      plan_.params.push_back({pre + "bias", 1, m_.dims[l + 1]});
    }
  }
  static Operand buf(int id) { return {Operand::buffer, id}; }
  static Operand value(int id) { return {Operand::param_value, id}; }
  static Operand grad(int id) { return {Operand::param_grad, id}; }

  // Non-zeros of forward operator rows [b, e): all inner rows, the central or the marginal ones.
  std::int64_t fwd_nnz(std::int64_t b, std::int64_t e) const {
    const std::int64_t nc = part_.num_central;
    std::int64_t nnz = 0;
    if (b == 0 && e == n_)
      nnz = part_.nnz_central + part_.nnz_marginal;
    else if (b == 0 && e == nc)
      nnz = part_.nnz_central;
    else if (b == nc && e == n_)
      nnz = part_.nnz_marginal;
    else
      throw std::logic_error("scheduler: SpMM over rows that are not a row class");
    return nnz + self_loops_ * (e - b);
  }
  std::int64_t halo_rows(int q) const { return part_.halo_rows[std::size_t(q)]; }
  std::int64_t send_rows(int q) const { return part_.send_rows[std::size_t(q)]; }
  // First row of q's rows in the halo rows / in the concatenated send lists.
  std::int64_t halo_offset(int q) const {
    std::int64_t o = 0;
    for (int p = 0; p < q; ++p) o += halo_rows(p);
    return o;
  }
  std::int64_t send_offset(int q) const {
    std::int64_t o = 0;
    for (int p = 0; p < q; ++p) o += p == part_.rank ? 0 : send_rows(p);
    return o;
  }
  static std::string tag_name(int l, Direction d) {
    if (l < 0) return "";
    std::string s = "L";
    s += std::to_string(l);
    s += d == Direction::forward ? " fwd " : " bwd ";
    return s;
  }

  Task task(TaskKind kind, int l, Direction d, std::vector<int> deps, const std::string& what) const {
    Task t;
    t.kind = kind;
    t.lane =
        (kind == TaskKind::send || kind == TaskKind::recv || kind == TaskKind::allreduce) ? Lane::comm : Lane::compute;
    t.layer = l;
    t.dir = d;
    t.deps = std::move(deps);
    t.label = tag_name(l, d) + what;
    return t;
  }

  // Halo exchange of buffer `data` (cols columns) in direction d, in two steps.
  //   forward: rows send_rows[q] of `data` go to q; rows halo(q) of `data` come from q.
  //   backward: rows halo(q) go to q (gradients of q's rows); they are added into rows send_rows[q].
  // post_exchange posts every receive, then packs (after `ready`) and sends; finish_exchange
  // unpacks each received message once `after` is done too.
  struct Pending {
    int layer;
    Direction dir;
    int data;
    std::int64_t cols;
    std::vector<int> recv_task, recv_msg;
    int zero = -1;           // boundary sampling, forward: the task clearing the halo rows before the unpacks
    std::vector<int> packs;  // the pack tasks (they read `data`)
  };
  // Rows of the full boundary lists, and of this epoch's sample (boundary sampling).
  std::int64_t full_in(Direction d, int q) const { return d == Direction::forward ? halo_rows(q) : send_rows(q); }
  std::int64_t full_out(Direction d, int q) const { return d == Direction::forward ? send_rows(q) : halo_rows(q); }
  std::int64_t rows_in(Direction d, int q) const { return sampled_rows(full_in(d, q), peers_.boundary_rate); }
  std::int64_t rows_out(Direction d, int q) const { return sampled_rows(full_out(d, q), peers_.boundary_rate); }

  // Width, bytes and metadata bytes of one channel's message, and its layout when assigned.
  struct Wire {
    int bits;
    std::int64_t bytes, meta;
    const MessageLayout* layout;
  };
  Wire wire(int l, Direction d, int sender, int receiver, std::int64_t rows, std::int64_t cols) const {
    if (assignment_) {
      const auto it = assignment_->find(ChannelKey{l, d, sender, receiver});
      if (it != assignment_->end()) {
        const MessageLayout& lay = it->second;
        std::int64_t bytes = 0, meta = 0, total = 0;
        for (std::size_t g = 0; g < lay.group_rows.size(); ++g) {
          bytes += message_bytes(lay.group_rows[g], cols, lay.group_bits[g]);
          meta += meta_bytes(lay.group_rows[g], lay.group_bits[g]);
          total += lay.group_rows[g];
        }
        if (total != rows || (!lay.order.empty() && std::int64_t(lay.order.size()) != rows))
          throw std::logic_error("bit assignment of layer " + std::to_string(l) + " " + to_string(d) + " " +
                                 std::to_string(sender) + "->" + std::to_string(receiver) + " covers " +
                                 std::to_string(total) + " of " + std::to_string(rows) + " rows");
        return {0, bytes, meta, &lay};
      }
    }
    return {bits_, message_bytes(rows, cols, bits_), meta_bytes(rows, bits_), nullptr};
  }

  // A pack / unpack / send / recv task of one message: the fields they all share.
  Task message_task(TaskKind kind, int l, Direction d, std::vector<int> deps, const std::string& what, int peer,
                    std::int64_t rows, std::int64_t cols, const Wire& w, int msg) const {
    Task t = task(kind, l, d, std::move(deps), what);
    t.peer = peer;
    t.rows = rows;
    t.cols = cols;
    t.bytes = w.bytes;
    t.meta_bytes = w.meta;
    t.bits = w.bits;
    if (w.layout && (kind == TaskKind::pack || kind == TaskKind::unpack)) t.layout = *w.layout;
    t.message = msg;
    return t;
  }

  Pending post_exchange(int l, Direction d, int data, std::int64_t cols, const std::vector<int>& ready) {
    const int P = part_.parts, me = part_.rank;
    const int tag = 2 * l + (d == Direction::backward);
    Pending pend{l, d, data, cols, std::vector<int>(P, -1), std::vector<int>(P, -1), -1, {}};
    if (peers_.sampled() && d == Direction::forward && nl_ > n_) {  // dropped halo rows aggregate as zero
      Task z = task(TaskKind::copy_rows, l, d, {}, "clear halo rows");
      z.c = buf(data);
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
      Task pk =
          message_task(TaskKind::pack, l, d, ready, "pack->" + std::to_string(q), q, rows_out(d, q), cols, w, msg);
      pk.a = buf(data);
      pk.row_sel = d == Direction::forward ? RowSet{RowSet::send_list, 0, 0, q} : RowSet{RowSet::halo, 0, 0, q};
      pk.row_sel.sampled = peers_.sampled();
      const int pid = add(std::move(pk));
      pend.packs.push_back(pid);
      Task s = message_task(TaskKind::send, l, d, {pid}, "send->" + std::to_string(q), q, rows_out(d, q), cols, w, msg);
      s.tag = tag;
      add(std::move(s));
    }
    return pend;
  }

  std::vector<int> finish_exchange(const Pending& pend, const std::vector<int>& after) {
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
      u.c = buf(pend.data);
      u.accumulate = pend.dir == Direction::backward;
      u.row_sel = pend.dir == Direction::forward ? RowSet{RowSet::halo, 0, 0, q} : RowSet{RowSet::send_list, 0, 0, q};
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
  struct Deferred {
    Task unpack;
    std::vector<int> deps;
  };
  std::vector<int> finish_stale(const Pending& pend, const std::vector<int>& after) {
    const bool fwd = pend.dir == Direction::forward, warmup = peers_.warmup;
    std::int64_t store_rows = 0;
    for (int q = 0; q < part_.parts; ++q)
      if (q != part_.rank) store_rows += full_in(pend.dir, q);
    const int store = buffer("stale.layer" + std::to_string(pend.layer) + (fwd ? ".forward" : ".backward"), store_rows,
                             pend.cols, true);
    std::vector<int> unpack_of(std::size_t(part_.parts), -1);
    std::vector<Deferred> unpacks;
    for (int q = 0; q < part_.parts; ++q) {
      if (pend.recv_task[q] < 0) continue;
      const Wire w = wire(pend.layer, pend.dir, q, part_.rank, rows_in(pend.dir, q), pend.cols);
      Task u = message_task(TaskKind::unpack, pend.layer, pend.dir, {}, "unpack<-" + std::to_string(q) + " to store", q,
                            rows_in(pend.dir, q), pend.cols, w, pend.recv_msg[q]);
      u.c = buf(store);
      const std::int64_t off = fwd ? halo_offset(q) : send_offset(q);
      u.row_sel = {RowSet::range, off, off + rows_in(pend.dir, q), -1};
      u.smoothing = warmup ? 0.0 : peers_.stale_momentum;
      if (warmup) {
        std::vector<int> deps = after;
        deps.push_back(pend.recv_task[q]);
        u.deps = deps;
        unpack_of[std::size_t(q)] = add(std::move(u));
      } else {
        unpacks.push_back({std::move(u), {pend.recv_task[q]}});
      }
    }
    auto read = [&](int q, std::vector<int> deps) {
      Task c = task(TaskKind::copy_rows, pend.layer, pend.dir, std::move(deps),
                    fwd ? "stale halo rows" : "+stale gradients<-" + std::to_string(q));
      c.a = buf(store);
      c.c = buf(pend.data);
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
    };
    std::vector<int> reads;
    if (fwd) {
      if (nl_ > n_) {
        std::vector<int> deps = after;
        for (int u : unpack_of)
          if (u >= 0) deps.push_back(u);
        reads.push_back(read(-1, deps));
      }
    } else {
      for (int q = 0; q < part_.parts; ++q) {
        if (q == part_.rank || send_rows(q) == 0) continue;
        std::vector<int> deps = after;
        if (unpack_of[std::size_t(q)] >= 0) deps.push_back(unpack_of[std::size_t(q)]);
        reads.push_back(read(q, deps));
      }
    }
    for (auto& d : unpacks) {  // the store is overwritten only after this epoch's read of it
      d.deps.insert(d.deps.end(), reads.begin(), reads.end());
      deferred_.push_back(std::move(d));
    }
    return reads;
  }
  void emit_deferred_unpacks() {
    for (auto& d : deferred_) {
      d.unpack.deps = d.deps;
      add(std::move(d.unpack));
    }
    deferred_.clear();
  }

  int spmm(int l, Direction d, std::vector<int> deps, int src, int dst, std::int64_t cols, std::int64_t b,
           std::int64_t e, bool transpose, const std::string& what) {
    Task t = task(TaskKind::spmm, l, d, std::move(deps), what);
    t.a = buf(src);
    t.c = buf(dst);
    t.rows = e - b;
    t.cols = cols;
    t.row_sel = {RowSet::range, b, e, -1};
    t.transpose_matrix = transpose;
    t.inner = transpose ? n_ : nl_;  // rows of the dense operand (columns of the sparse matrix)
    if (!transpose) {
      t.nnz = fwd_nnz(b, e);
    } else {  // rows of the transpose: inner rows [0, n) and halo rows [n, nl)
      t.nnz = (b < n_ ? nnz_to_inner_ + self_loops_ * n_ : 0) + (e > n_ ? nnz_to_halo_ : 0);
    }
    t.bytes = (t.nnz * (8 + cols * 4)) + t.rows * cols * 4;
    return add(std::move(t));
  }

  int gemm(int l, Direction d, std::vector<int> deps, Operand a, bool ta, Operand b, bool tb, Operand c, std::int64_t m,
           std::int64_t n, std::int64_t k, bool accumulate, const std::string& what) {
    Task t = task(TaskKind::gemm, l, d, std::move(deps), what);
    t.a = a;
    t.b = b;
    t.c = c;
    t.trans_a = ta;
    t.trans_b = tb;
    t.rows = m;
    t.cols = n;
    t.inner = k;
    t.accumulate = accumulate;
    return add(std::move(t));
  }

  // Exchanging inputs (stale pipelining), from the second layer on, in training with dropout: the
  // rows travel before dropout and every rank drops all its local rows, halo rows included, with
  // this epoch's masks (PipeGCN's order: a stale row is dropped afresh, and its gradient goes back
  // through the mask that was applied to it).
  bool drop_after(int l) const {
    return plan_.training && m_.dropout > 0 && m_.exchange_inputs && l > 0 && !m_.transform_first(l);
  }
  // Layer l reads its halo input rows from the rank's features instead of exchanging anything
  // (forward_layer).
  bool local_first_layer(int l) const {
    return l == 0 && !peers_.sampled() && nl_ > n_ && (!m_.transform_first(0) || m_.exchange_inputs);
  }

  // ---- forward -----------------------------------------------------------------------------
  int forward_layer(int l, int prev) {
    const std::int64_t in = m_.dims[l], out = m_.dims[l + 1];
    const bool tf = m_.transform_first(l), last = l + 1 == m_.layers();
    const bool sparse = l == 0 && m_.sparse_input;
    const auto F = Direction::forward;
    const int w = m_.param_index(l, 0), w_self = m_.param_index(l, 1), bias = m_.param_index(l, m_.sage ? 2 : 1);
    const std::string L = "layer" + std::to_string(l) + ".";
    // The first layer takes its halo rows from the rank's own copy of the features
    // (Plan::halo_features) when it aggregates first, and when it transforms first under
    // exchange_inputs (it computes X[halo] W itself: an exchanged X[halo] W is no cheaper to get
    // fresh, and a stale one would carry last epoch's W). Not under boundary sampling, whose
    // estimator drops halo rows.
    const bool local_x = local_first_layer(l);
    if (local_x) plan_.halo_features = true;
    const int in_buf = buffer(L + "input", tf && !local_x ? n_ : nl_, in);
    in_.push_back(in_buf);
    // Layer input: dropout (training) of the previous output or the features, or the value itself.
    Operand x = l == 0 ? Operand{Operand::features, 0} : buf(out_[l - 1]);
    std::vector<int> x_ready = prev >= 0 ? std::vector<int>{prev} : std::vector<int>{};
    const bool drop = plan_.training && m_.dropout > 0;
    const bool drop_after = this->drop_after(l);
    if (drop || !sparse) {
      Task t = task(TaskKind::dropout, l, F, x_ready, drop && !drop_after ? "dropout" : "copy");
      t.a = x;
      t.c = sparse ? Operand{Operand::features, 1} : buf(in_buf);
      t.rows = local_x ? nl_ : n_;
      t.cols = in;
      t.nnz = sparse ? m_.feature_nnz : 0;
      t.dropout = drop && !drop_after ? m_.dropout : 0.0;
      x_ready = {add(std::move(t))};
      x = sparse ? Operand{Operand::features, 1} : buf(in_buf);
    }
    if (l == 0) x0_ = x;
    const double keep = drop ? 1.0 - m_.dropout : 1.0;
    // dst rows [b, e) (+)= X rows [b, e) times a weight (dense GEMM or sparse-feature product).
    auto times_weight = [&](int param, Operand dst, bool acc, std::vector<int> deps, const std::string& what,
                            std::int64_t b, std::int64_t e) {
      if (sparse) {
        Task t = task(TaskKind::spmm_features, l, F, std::move(deps), what);
        t.a = x;
        t.b = value(param);
        t.c = dst;
        t.rows = e - b;
        t.cols = out;
        t.inner = in;
        t.nnz = n_ > 0 ? std::int64_t(double(m_.feature_nnz) * keep * double(e - b) / double(n_)) : 0;
        t.accumulate = acc;
        t.row_sel = {RowSet::range, b, e, -1};
        return add(std::move(t));
      }
      const int id = gemm(l, F, std::move(deps), x, false, value(param), false, dst, e - b, out, in, acc, what);
      plan_.tasks[id].row_sel = {RowSet::range, b, e, -1};
      return id;
    };
    const int out_buf = buffer(L + "output", n_, out);
    out_.push_back(out_buf);
    std::vector<int> agg_done;
    if (tf) {
      const int mid = buffer(L + "transformed", nl_, out);
      mid_.push_back(mid);
      if (local_x) {  // every local row transformed here: no exchange
        const int xw = times_weight(w, buf(mid), false, x_ready, "X*W[inner+halo]", 0, nl_);
        agg_done = {spmm(l, F, {xw}, mid, out_buf, out, 0, n_, false, "A*[all]")};
      } else if (strategy_ == Strategy::overlap) {
        // Rows peers need are marginal: transform them first, post the exchange, then transform
        // and aggregate the central rows while the messages travel.
        const std::int64_t nc = part_.num_central;
        const int xw_m = times_weight(w, buf(mid), false, x_ready, "X*W[marginal]", nc, n_);
        const Pending pend = post_exchange(l, F, mid, out, {xw_m});
        const int xw_c = times_weight(w, buf(mid), false, x_ready, "X*W[central]", 0, nc);
        const int central = spmm(l, F, {xw_c, xw_m}, mid, out_buf, out, 0, nc, false, "A*[central]");
        std::vector<int> after = {xw_c, xw_m};
        for (int u : finish_exchange(pend, {})) after.push_back(u);
        agg_done = {central, spmm(l, F, after, mid, out_buf, out, nc, n_, false, "A*[marginal]")};
      } else {
        const int xw = times_weight(w, buf(mid), false, x_ready, "X*W", 0, n_);
        agg_done = aggregate(l, {xw}, mid, out_buf, out);
      }
    } else {
      const int mid = buffer(L + "aggregated", n_, in);
      mid_.push_back(mid);
      std::vector<int> spmms;
      if (local_x) {
        spmms = {spmm(l, F, x_ready, in_buf, mid, in, 0, n_, false, "A*[all]")};
      } else if (drop_after) {
        const Pending pend = post_exchange(l, F, in_buf, in, x_ready);
        std::vector<int> deps = finish_exchange(pend, {});
        deps.insert(deps.end(), x_ready.begin(), x_ready.end());
        deps.insert(deps.end(), pend.packs.begin(), pend.packs.end());  // they read the undropped rows
        Task t = task(TaskKind::dropout, l, F, deps, "dropout[all rows]");
        t.a = buf(in_buf);
        t.c = buf(in_buf);
        t.rows = nl_;
        t.cols = in;
        t.dropout = m_.dropout;
        spmms = {spmm(l, F, {add(std::move(t))}, in_buf, mid, in, 0, n_, false, "A*[all]")};
      } else {
        spmms = aggregate(l, x_ready, in_buf, mid, in);
      }
      agg_done = {gemm(l, F, spmms, buf(mid), false, value(w), false, buf(out_buf), n_, out, in, false, "A*X*W")};
    }
    if (m_.sage) agg_done = {times_weight(w_self, buf(out_buf), true, agg_done, "+X*W_self", 0, n_)};
    Task ba = task(TaskKind::bias_act, l, F, agg_done, last ? "+bias" : "+bias, relu");
    ba.a = value(bias);
    ba.c = buf(out_buf);
    ba.rows = n_;
    ba.cols = out;
    ba.relu = !last;
    return add(std::move(ba));
  }

  // dst rows [0, n) = A src, with src's halo rows exchanged first. Returns the spmm task ids.
  std::vector<int> aggregate(int l, const std::vector<int>& ready, int src, int dst, std::int64_t cols) {
    const auto F = Direction::forward;
    const auto unpacks = finish_exchange(post_exchange(l, F, src, cols, ready), {});
    std::vector<int> after = ready;
    after.insert(after.end(), unpacks.begin(), unpacks.end());
    if (strategy_ == Strategy::vanilla) return {spmm(l, F, after, src, dst, cols, 0, n_, false, "A*[all]")};
    const int central = spmm(l, F, ready, src, dst, cols, 0, part_.num_central, false, "A*[central]");
    const int marginal = spmm(l, F, after, src, dst, cols, part_.num_central, n_, false, "A*[marginal]");
    return {central, marginal};
  }

  // ---- backward ----------------------------------------------------------------------------
  // dst (nl rows) = A^T src (n rows); halo rows of dst go back to their owners and are added into
  // their send_list rows; rows [0, n) of dst get those contributions. Returns the tasks after which
  // dst rows [0, n) are final. `then_inner` runs after the inner-row spmm and before the unpacks.
  std::vector<int> aggregate_backward(int l, const std::vector<int>& ready, int src, int dst, std::int64_t cols,
                                      const std::function<std::vector<int>(int)>& then_inner) {
    const auto B = Direction::backward;
    auto finish = [&](const Pending& pend, int inner) {
      const auto extra = then_inner ? then_inner(inner) : std::vector<int>{inner};
      auto done = finish_exchange(pend, extra);
      done.insert(done.end(), extra.begin(), extra.end());
      return done;
    };
    if (strategy_ == Strategy::vanilla) {
      const int all = spmm(l, B, ready, src, dst, cols, 0, nl_, true, "A^T*[all]");
      return finish(post_exchange(l, B, dst, cols, {all}), all);
    }
    // Halo-row gradients first, sent while the inner rows are aggregated.
    std::vector<int> halo_ready = ready;
    if (nl_ > n_) halo_ready = {spmm(l, B, ready, src, dst, cols, n_, nl_, true, "A^T*[halo]")};
    const Pending pend = post_exchange(l, B, dst, cols, halo_ready);
    return finish(pend, spmm(l, B, ready, src, dst, cols, 0, n_, true, "A^T*[inner]"));
  }

  // dst rows [0, rows) = src rows through layer l's input dropout mask (src == dst: in place).
  int dropout_backward(int l, std::vector<int> deps, int src, int dst, std::int64_t rows, std::int64_t cols,
                       const std::string& what) {
    Task db = task(TaskKind::dropout_backward, l, Direction::backward, std::move(deps), what);
    db.a = buf(src);
    db.b = buf(in_[l]);
    db.c = buf(dst);
    db.rows = rows;
    db.cols = cols;
    db.dropout = m_.dropout;
    return add(std::move(db));
  }

  void backward(int loss_after) {
    const auto B = Direction::backward;
    const int layers = m_.layers();
    std::vector<int> grad_tasks;
    // Gradient of the logits.
    const int g_logits = buffer("logits.grad", n_, m_.dims[layers]);
    Task lt = task(TaskKind::loss, layers - 1, B, {loss_after}, "softmax cross-entropy");
    lt.a = buf(out_[layers - 1]);
    lt.c = buf(g_logits);
    lt.rows = n_;
    lt.cols = m_.dims[layers];
    int gout = g_logits, gout_ready = add(std::move(lt));
    for (int l = layers - 1; l >= 0; --l) {
      const std::int64_t in = m_.dims[l], out = m_.dims[l + 1];
      const bool tf = m_.transform_first(l), sparse = l == 0 && m_.sparse_input;
      const std::string L = "layer" + std::to_string(l) + ".";
      const int w = m_.param_index(l, 0), w_self = m_.param_index(l, 1), bias = m_.param_index(l, m_.sage ? 2 : 1);
      if (l + 1 < layers) {
        Task t = task(TaskKind::act_backward, l, B, {gout_ready}, "relu'");
        t.a = buf(out_[l]);
        t.c = buf(gout);
        t.rows = n_;
        t.cols = out;
        gout_ready = add(std::move(t));
      }
      Task bg = task(TaskKind::bias_grad, l, B, {gout_ready}, "bias grad");
      bg.a = buf(gout);
      bg.c = grad(bias);
      bg.rows = n_;
      bg.cols = out;
      grad_tasks.push_back(add(std::move(bg)));
      const bool need_dx = l > 0;
      const Operand x = l == 0 ? x0_ : buf(in_[l]);
      // grad(param) = X^T G over the first `rows` rows of X and G.
      auto input_t_times = [&](int g_buf, int param, std::vector<int> deps, const std::string& what,
                               std::int64_t rows) {
        if (sparse) {
          Task t = task(TaskKind::spmm_features_t, l, B, std::move(deps), what);
          t.a = buf(g_buf);
          t.b = x;
          t.c = grad(param);
          t.rows = in;
          t.cols = out;
          t.inner = rows;
          t.nnz = n_ > 0 ? std::int64_t(double(m_.feature_nnz) * (m_.dropout > 0 ? 1.0 - m_.dropout : 1.0) *
                                        double(rows) / double(n_))
                         : 0;
          return add(std::move(t));
        }
        return gemm(l, B, std::move(deps), x, true, buf(g_buf), false, grad(param), in, out, rows, false, what);
      };
      const int gin = need_dx ? buffer(L + "input.grad", tf ? n_ : nl_, in) : -1;
      std::vector<int> gin_done;
      if (tf) {
        const int gmid = buffer(L + "transformed.grad", nl_, out);
        if (local_first_layer(l)) {
          // The halo rows were transformed here, so their gradients stay here: dW over every
          // local row equals, summed over ranks, the owners' dW after a backward exchange.
          const int all = spmm(l, B, {gout_ready}, gout, gmid, out, 0, nl_, true, "A^T*[all]");
          grad_tasks.push_back(input_t_times(gmid, w, {all}, "dW=X^T*G[inner+halo]", nl_));
        } else {
          const auto final_rows = aggregate_backward(l, {gout_ready}, gout, gmid, out, nullptr);
          grad_tasks.push_back(input_t_times(gmid, w, final_rows, "dW=X^T*G", n_));
          if (need_dx)
            gin_done = {
                gemm(l, B, final_rows, buf(gmid), false, value(w), true, buf(gin), n_, in, out, false, "dX=G*W^T")};
        }
      } else {
        grad_tasks.push_back(
            gemm(l, B, {gout_ready}, buf(mid_[l]), true, buf(gout), false, grad(w), in, out, n_, false, "dW=M^T*G"));
        if (need_dx) {
          const int gmid = buffer(L + "aggregated.grad", n_, in);
          const int gm =
              gemm(l, B, {gout_ready}, buf(gout), false, value(w), true, buf(gmid), n_, in, out, false, "dM=G*W^T");
          std::function<std::vector<int>(int)> self_term;
          if (m_.sage)
            self_term = [&, gin, w_self, gout, gout_ready](int inner) {
              return std::vector<int>{gemm(l, B, {inner, gout_ready}, buf(gout), false, value(w_self), true, buf(gin),
                                           n_, in, out, true, "+G*W_self^T")};
            };
          if (drop_after(l)) {
            // The layer dropped all its rows after the exchange (forward_layer): the gradients of
            // the halo rows go back through that mask before they travel, and the received ones
            // (gradients of undropped rows) are added after this rank's own mask.
            if (strategy_ != Strategy::vanilla)
              throw std::logic_error("scheduler: inputs exchanged before dropout need the vanilla schedule");
            const int all = spmm(l, B, {gm}, gmid, gin, in, 0, nl_, true, "A^T*[all]");
            const int dropped = dropout_backward(l, self_term ? self_term(all) : std::vector<int>{all}, gin, gin, nl_,
                                                 in, "dropout'[all rows]");
            gin_done = finish_exchange(post_exchange(l, B, gin, in, {dropped}), {dropped});
            gin_done.push_back(dropped);
          } else {
            gin_done = aggregate_backward(l, {gm}, gmid, gin, in, self_term);
          }
        }
      }
      if (m_.sage) {
        grad_tasks.push_back(input_t_times(gout, w_self, {gout_ready}, "dW_self=X^T*G", n_));
        if (need_dx && tf)
          gin_done = {
              gemm(l, B, gin_done, buf(gout), false, value(w_self), true, buf(gin), n_, in, out, true, "+G*W_self^T")};
      }
      if (need_dx && drop_after(l)) {
        // Already through the dropout: the inner rows are the previous layer's output gradient.
        const int prev_gout = buffer("layer" + std::to_string(l - 1) + ".output.grad", n_, in);
        Task c = task(TaskKind::copy_rows, l, B, gin_done, "inner rows");
        c.a = buf(gin);
        c.c = buf(prev_gout);
        c.rows = n_;
        c.cols = in;
        c.row_sel = {RowSet::range, 0, n_, -1};
        gout = prev_gout;
        gout_ready = add(std::move(c));
      } else if (need_dx) {
        // Gradient of the previous layer's output: through this layer's input dropout.
        const int prev_gout = buffer("layer" + std::to_string(l - 1) + ".output.grad", n_, in);
        gout = prev_gout;
        gout_ready = dropout_backward(l, gin_done, gin, prev_gout, n_, in, "dropout'");
      }
    }
    std::int64_t param_elems = 0;
    for (const auto& p : plan_.params) param_elems += p.rows * p.cols;
    Task ar = task(TaskKind::allreduce, -1, B, grad_tasks, "all-reduce gradients");
    ar.rows = param_elems;
    ar.bytes = param_elems * 4;
    const int ar_id = add(std::move(ar));
    Task opt = task(TaskKind::optimizer, -1, Direction::none, {ar_id}, "optimizer step");
    opt.rows = param_elems;
    opt.label = "optimizer step";
    add(std::move(opt));
  }

  const graph::PartitionShape& part_;
  ModelShape m_;
  Strategy strategy_;
  int bits_;
  const BitAssignment* assignment_;
  PeerOptions peers_;
  std::int64_t n_, nl_;
  std::vector<Deferred> deferred_;  // stale pipelining: unpacks issued after the optimizer step
  std::int64_t nnz_to_inner_ = 0, nnz_to_halo_ = 0, self_loops_ = 0;
  Plan plan_;
  std::vector<int> in_, mid_, out_;
  Operand x0_;  // what the first layer multiplied: its input buffer, or raw / dropped sparse features
};

}  // namespace

Plan build_plan(const graph::PartitionShape& part, const ModelShape& model, Strategy strategy, bool training, int bits,
                const BitAssignment* assignment, const PeerOptions& peers) {
  return Builder(part, model, strategy, training, bits, assignment, peers).build();
}

Plan build_plan(const graph::LocalPartition& part, const ModelShape& model, Strategy strategy, bool training, int bits,
                const BitAssignment* assignment, const PeerOptions& peers) {
  return build_plan(graph::shape_of(part), model, strategy, training, bits, assignment, peers);
}

std::vector<Plan> build_plans(const std::vector<graph::LocalPartition>& parts, const ModelShape& model,
                              Strategy strategy, bool training, int bits, const BitAssignment* assignment,
                              const PeerOptions& peers) {
  std::vector<Plan> plans;
  for (const auto& p : parts) plans.push_back(build_plan(p, model, strategy, training, bits, assignment, peers));
  validate(plans);
  return plans;
}

}  // namespace adaqp::scheduler
