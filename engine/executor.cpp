#include "engine/executor.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>

#include "base/error.hpp"
#include "engine/codec.hpp"
#include "engine/cpu/blas.hpp"
#include "engine/cpu/kernels.hpp"
#include "engine/loss.hpp"
#include "scheduler/wire_format.hpp"

namespace adaqp::engine {

using scheduler::Operand;
using scheduler::RowSet;
using scheduler::Task;
using scheduler::TaskKind;

std::vector<std::vector<graph::NodeId>> message_rows(const scheduler::Plan& plan, const graph::LocalPartition& part,
                                                     bool* sampled) {
  std::vector<std::vector<graph::NodeId>> out(plan.tasks.size());
  if (sampled) *sampled = false;
  const std::int64_t n_inner = part.num_inner();
  for (const auto& t : plan.tasks) {
    if (t.kind != TaskKind::pack && t.kind != TaskKind::unpack) continue;
    std::vector<graph::NodeId> base;
    const auto& s = t.row_sel;
    if (s.sampled) {  // rows come with each epoch's sample
      if (sampled) *sampled = true;
      continue;
    }
    if (s.kind == RowSet::send_list) {
      base = part.send_rows[s.peer];
    } else {
      const std::int64_t first = s.kind == RowSet::halo ? n_inner + part.halo_begin[s.peer] : s.begin;
      const std::int64_t count =
          s.kind == RowSet::halo ? part.halo_begin[s.peer + 1] - part.halo_begin[s.peer] : s.end - s.begin;
      for (std::int64_t i = 0; i < count; ++i) base.push_back(graph::NodeId(first + i));
    }
    if (std::int64_t(base.size()) != t.rows)
      throw std::logic_error("executor: task " + std::to_string(t.id) + " moves " + std::to_string(t.rows) +
                             " rows, its row set has " + std::to_string(base.size()));
    auto& rows = out[std::size_t(t.id)];
    if (t.layout.order.empty()) {
      rows = std::move(base);
    } else {
      for (auto o : t.layout.order) rows.push_back(base[o]);
    }
  }
  return out;
}

void sample_message_rows(const scheduler::Plan& plan, const graph::LocalPartition& part,
                         const scheduler::BoundarySample& sample,
                         std::vector<std::vector<graph::NodeId>>& rows_by_task) {
  const std::int64_t n_inner = part.num_inner();
  for (const auto& t : plan.tasks) {
    if ((t.kind != TaskKind::pack && t.kind != TaskKind::unpack) || !t.row_sel.sampled) continue;
    const auto& s = t.row_sel;
    const auto q = std::size_t(s.peer);
    auto& rows = rows_by_task[std::size_t(t.id)];
    rows.clear();
    if (s.kind == RowSet::send_list) {
      for (auto p : sample.send_pos.at(q)) rows.push_back(part.send_rows[q][std::size_t(p)]);
    } else {
      for (auto p : sample.halo_pos.at(q)) rows.push_back(graph::NodeId(n_inner + part.halo_begin[q] + p));
    }
    if (std::int64_t(rows.size()) != t.rows)
      throw std::logic_error("executor: task " + std::to_string(t.id) + " moves " + std::to_string(t.rows) +
                             " rows, the boundary sample has " + std::to_string(rows.size()));
  }
}

std::vector<std::pair<std::int64_t, scheduler::Width>> message_groups(const Task& t) {
  if (t.layout.empty()) return {{t.rows, t.width}};
  std::vector<std::pair<std::int64_t, scheduler::Width>> g;
  for (std::size_t k = 0; k < t.layout.group_rows.size(); ++k)
    g.push_back({t.layout.group_rows[k], t.layout.group_widths[k]});
  return g;
}

QuantStats pack_stats(const float* src, std::int64_t ld, const graph::NodeId* rows, std::int64_t count,
                      std::int64_t cols, scheduler::Width width, const std::uint8_t* message, float* ranges,
                      std::vector<float>& scratch) {
  QuantStats q;
  scratch.assign(std::size_t(count * cols), 0.0f);
  decode_rows(message, count, cols, width, {scratch.data(), cols, nullptr, 0, false});
  const double levels = double((1 << width.element_bits()) - 1);
  for (std::int64_t r = 0; r < count; ++r) {
    const float* x = src + std::int64_t(rows[r]) * ld;
    float lo = x[0], hi = x[0];
    for (std::int64_t j = 0; j < cols; ++j) {
      const double e = double(scratch[std::size_t(r * cols + j)]) - double(x[j]);
      q.error_sq += e * e;
      lo = std::min(lo, x[j]);
      hi = std::max(hi, x[j]);
    }
    if (ranges) ranges[r] = hi - lo;
    const double range_sq = double(hi - lo) * double(hi - lo);
    q.bound_sq += double(cols) * range_sq / (4 * levels * levels);
    // A row's minimum and maximum are encoded exactly; the other elements' rounding fractions
    // are taken as uniform: E[f (1 - f)] = 1/6.
    q.model_sq += double(std::max<std::int64_t>(cols - 2, 0)) * range_sq / (6 * levels * levels);
  }
  q.elements = count * cols;
  return q;
}

PlanExecutor::PlanExecutor(const scheduler::Plan& plan, const graph::LocalPartition& part, const Aggregation& agg,
                           Communicator& comm, PersistentBuffers* persistent, Workspace* workspace)
    : plan_(plan),
      part_(part),
      agg_(agg),
      comm_(comm),
      memory_(scheduler::plan_memory(plan)),
      workspace_(workspace),
      driver_(plan, comm) {
  if (!workspace_) buffers_.reserve(plan.buffers.size());
  for (const auto& b : plan.buffers) {
    if (!b.persistent) {
      if (workspace_) {
        buf_.emplace_back(b.rows, b.cols, nullptr);  // bound to the arena by each run
        continue;
      }
      buffers_.emplace_back(b.rows, b.cols);
      buf_.push_back(view(buffers_.back()));
      continue;
    }
    if (!persistent) throw std::logic_error("executor: plan declares persistent buffer " + b.name + " but none given");
    auto it = persistent->find(b.name);
    if (it == persistent->end()) it = persistent->emplace(b.name, Matrix<float>(b.rows, b.cols)).first;
    if (it->second.rows != b.rows || it->second.cols != b.cols)
      throw std::logic_error("executor: persistent buffer " + b.name + " changed shape between plans");
    buf_.push_back(view(it->second));
  }
  if (!workspace_) {
    for (const auto& m : plan.messages) messages_.emplace_back(std::size_t(m.bytes));
    for (auto& m : messages_) msg_.push_back(m.data());
  } else {
    msg_.assign(plan.messages.size(), nullptr);
  }
  local_global_ = part.inner_global;
  local_global_.insert(local_global_.end(), part.halo_global.begin(), part.halo_global.end());
  masks_.resize(plan.buffers.size());
  mask_needed_.assign(plan.buffers.size(), false);
  std::int64_t grad_elems = 0;
  for (const auto& t : plan.tasks)
    if (t.kind == TaskKind::dropout_backward && t.src2.kind == Operand::buffer) mask_needed_[t.src2.id] = true;
  for (const auto& t : plan.tasks) {
    if (t.kind != TaskKind::spmm_features_t) continue;
    if (dw_rows_ >= 0 && t.inner != dw_rows_)
      throw std::logic_error("executor: weight gradients of the sparse input over " + std::to_string(dw_rows_) +
                             " and " + std::to_string(t.inner) + " rows");
    dw_rows_ = t.inner;
  }
  for (const auto& p : plan.params) {
    grad_offset_.push_back(grad_elems);
    grad_elems += p.rows * p.cols;
  }
  grad_offset_.push_back(grad_elems);  // the end of the last
  flat_grads_.resize(std::size_t(grad_elems));
  for (const auto& t : plan.tasks)
    if (t.kind == TaskKind::optimizer) {
      first_update_ = t.id;
      break;
    }
  task_rows_ = message_rows(plan, part, &sampled_);
}

void PlanExecutor::bind_workspace() {
  if (!workspace_) return;
  std::byte* base = workspace_->reserve(memory_.arena_bytes);
  for (std::size_t b = 0; b < plan_.buffers.size(); ++b)
    if (memory_.buffer_offset[b] >= 0) buf_[b].data = reinterpret_cast<float*>(base + memory_.buffer_offset[b]);
  for (std::size_t m = 0; m < plan_.messages.size(); ++m)
    msg_[m] = reinterpret_cast<std::uint8_t*>(base + memory_.message_offset[m]);
}

void PlanExecutor::set_boundary_sample(const scheduler::BoundarySample& sample) {
  sample_message_rows(plan_, part_, sample, task_rows_);
  sample_given_ = true;
}

float* PlanExecutor::rows_ptr(const Operand& o, const std::vector<Param<float>*>& params, const Features<float>& x,
                              std::int64_t* ld) {
  switch (o.kind) {
    case Operand::buffer:
      *ld = buf_[std::size_t(o.id)].cols;
      return buf_[std::size_t(o.id)].data;
    case Operand::param_value:
      *ld = params[o.id]->value.cols;
      return params[o.id]->value.data.data();
    case Operand::param_grad:
      *ld = params[o.id]->grad.cols;
      return params[o.id]->grad.data.data();
    case Operand::features:
      if (o.id != 0 || x.is_sparse()) throw std::logic_error("plan reads sparse features as a dense matrix");
      *ld = x.dense.cols;
      return const_cast<float*>(x.dense.data.data());
    default:
      throw std::logic_error("plan task has an empty operand");
  }
}

StepTimes PlanExecutor::run(const std::vector<Param<float>*>& params, Adam<float>* adam, const Features<float>& x,
                            const DropoutKey* key, const LossInputs* loss) {
  if (params.size() != plan_.params.size())
    throw std::logic_error("executor: model has " + std::to_string(params.size()) + " parameters, plan " +
                           std::to_string(plan_.params.size()));
  if (sampled_ && !sample_given_)
    throw std::logic_error("executor: plan samples boundary rows but no sample was given");
  if (x.rows() != (plan_.halo_features ? part_.num_local() : part_.num_inner()))
    throw std::logic_error("executor: features have " + std::to_string(x.rows()) + " rows, the plan reads " +
                           std::to_string(plan_.halo_features ? part_.num_local() : part_.num_inner()));
  sample_given_ = false;
  quant_stats_ = {};
  quant_by_layer_.clear();
  bind_workspace();
  args_ = {&params, adam, &x, key, loss};
  sparse_input_ = nullptr;
  drift_sq_ = norm_sq_ = 0;
  StepTimes times = driver_.run(*this, trace_);
  times.stale_drift_sq = drift_sq_;
  times.stale_norm_sq = norm_sq_;
  args_ = {};
  return times;
}

int PlanExecutor::execute(const Task& t, StepTimes& times) {
  const auto& params = *args_.params;
  const Features<float>& x = *args_.x;
  Adam<float>* adam = args_.adam;
  const LossInputs* loss = args_.loss;
  std::int64_t lda = 0, ldb = 0, ldc = 0;
  switch (t.kind) {
    case TaskKind::dropout:
      run_dropout(t);
      break;
    case TaskKind::gemm:
      run_gemm(t);
      break;
    case TaskKind::spmm:
      run_spmm(t);
      break;
    case TaskKind::spmm_features: {
      const graph::Csr& xs = t.src.id == 1 ? sparse_input(x) : x.sparse;
      const float* w = rows_ptr(t.src2, params, x, &ldb);
      float* dst = rows_ptr(t.dst, params, x, &ldc);
      const bool ranged = t.row_sel.kind == RowSet::range;
      cpu::spmm(xs, ranged ? t.row_sel.begin : 0, ranged ? t.row_sel.end : xs.num_rows, w, t.cols, dst, t.accumulate);
      break;
    }
    case TaskKind::spmm_features_t: {
      const graph::Csr& xs = t.src2.id == 1 ? sparse_input(x) : x.sparse;
      const float* g = rows_ptr(t.src, params, x, &lda);
      float* grad = rows_ptr(t.dst, params, x, &ldc);
      // rows [0, inner) of X and G; with messages in flight the transport progresses every
      // kProgressRows rows (the sums do not change)
      cpu::RowTick tick;
      if (driver_.in_flight()) tick = {[this] { comm_.progress(); }, kProgressRows};
      const bool block = t.row_sel.kind == RowSet::range;  // rows [begin, end) of dW only
      // dW[c, :] = sum over rows r < inner of X[r, c] G[r, :]: row c of X[0:inner]^T times G,
      // a gather over just the block's rows (a scatter would read all of G for every block)
      const graph::Csr& xt = transposed_input(xs, t.inner);
      cpu::spmm(xt, block ? t.row_sel.begin : 0, block ? t.row_sel.end : xt.num_rows, g, t.cols, grad, false, tick);
      break;
    }
    case TaskKind::bias_act: {
      const float* bias = rows_ptr(t.src, params, x, &lda);
      float* y = rows_ptr(t.dst, params, x, &ldc);
      cpu::add_bias(y, bias, t.rows, t.cols);
      if (t.relu) cpu::relu_forward(y, t.rows * t.cols);
      break;
    }
    case TaskKind::act_backward:
      cpu::relu_backward(rows_ptr(t.src, params, x, &lda), rows_ptr(t.dst, params, x, &ldc), t.rows * t.cols);
      break;
    case TaskKind::bias_grad:
      cpu::column_sums(rows_ptr(t.src, params, x, &lda), t.rows, t.cols, rows_ptr(t.dst, params, x, &ldc), false);
      break;
    case TaskKind::dropout_backward: {
      const float* g = rows_ptr(t.src, params, x, &lda);
      float* out = rows_ptr(t.dst, params, x, &ldc);
      const auto& mask = masks_[t.src2.id];
      const std::int64_t n = t.rows * t.cols;
      if (mask.empty()) {
        std::memcpy(out, g, std::size_t(n) * sizeof(float));
      } else {
        cpu::dropout_backward(g, mask.data(), float(1.0 / (1.0 - t.dropout)), n, out);
      }
      break;
    }
    case TaskKind::pack:
      run_pack(t);
      break;
    case TaskKind::unpack:
      run_unpack(t);
      break;
    case TaskKind::copy_rows:
      run_copy_rows(t);
      break;
    case TaskKind::send:
      return comm_.isend(msg_[std::size_t(t.message)], t.bytes, t.peer, t.tag);
    case TaskKind::recv:
      return comm_.irecv(msg_[std::size_t(t.message)], t.bytes, t.peer, t.tag);
    case TaskKind::loss: {
      if (!loss) throw std::logic_error("plan has a loss task but no loss inputs were given");
      times.loss = softmax_cross_entropy<float>(buf_[std::size_t(t.src.id)], *loss->labels, *loss->mask,
                                                loss->normaliser, buf_[std::size_t(t.dst.id)]);
      break;
    }
    case TaskKind::allreduce:
      return post_allreduce(t);
    case TaskKind::optimizer:
      if (!adam) throw std::logic_error("plan has an optimizer task but no optimizer was given");
      if (t.id == first_update_) adam->begin_step();
      for_each_part(t, [&](std::size_t q, std::int64_t b, std::int64_t e) { adam->update(q, b, e); });
      break;
  }
  return -1;
}

const graph::Csr& PlanExecutor::transposed_input(const graph::Csr& xs, std::int64_t rows) {
  if (input_t_of_ != &xs || input_t_data_ != xs.indices.data() || input_t_nnz_ != xs.nnz() ||
      input_t_.num_cols != rows) {
    graph::transpose_rows(xs, rows, input_t_);
    input_t_of_ = &xs;
    input_t_data_ = xs.indices.data();
    input_t_nnz_ = xs.nnz();
  }
  return input_t_;
}

void PlanExecutor::run_dropout(const Task& t) {
  const auto& params = *args_.params;
  const Features<float>& x = *args_.x;
  const DropoutKey* key = args_.key;
  std::int64_t lda = 0, ldc = 0;
  const bool drop = key && t.dropout > 0;
  if (t.dst.kind == Operand::features) {  // sparse first-layer input
    if (drop) {
      dropout_sparse(x.sparse, t.dropout, *key, t.layer, local_global_.data(), dropped_features_, kept_);
      input_t_of_ = nullptr;                                             // new entries in the same storage
      if (dw_rows_ >= 0) transposed_input(dropped_features_, dw_rows_);  // for this step's dW
    }
    sparse_input_ = drop ? &dropped_features_ : &x.sparse;
    return;
  }
  const float* src = rows_ptr(t.src, params, x, &lda);
  float* dst = rows_ptr(t.dst, params, x, &ldc);
  auto& mask = masks_[t.dst.id];
  if (drop) {
    mask.resize(mask_needed_[t.dst.id] ? std::size_t(t.rows * t.cols) : 0);
    dropout_forward(src, dst, mask.empty() ? nullptr : mask.data(), t.rows, t.cols, t.dropout, *key, t.layer,
                    local_global_.data());  // rows [0, n) inner, then halo rows (halo features)
  } else {
    mask.clear();
    std::memcpy(dst, src, std::size_t(t.rows * t.cols) * sizeof(float));
  }
}

void PlanExecutor::run_gemm(const Task& t) {
  const auto& params = *args_.params;
  const Features<float>& x = *args_.x;
  std::int64_t lda = 0, ldb = 0, ldc = 0;
  const float* a = rows_ptr(t.src, params, x, &lda);
  const float* b = rows_ptr(t.src2, params, x, &ldb);
  float* c = rows_ptr(t.dst, params, x, &ldc);
  // Row chunks of C while messages are in flight (only when A is not transposed: rows of C
  // are then rows of A).
  // A row range (not transposed A) offsets A's and C's rows.
  const std::int64_t first = t.row_sel.kind == RowSet::range && !t.trans_a ? t.row_sel.begin : 0;
  const std::int64_t chunk = driver_.in_flight() && !t.trans_a ? kProgressRows : t.rows;
  for (std::int64_t r = 0; r < t.rows; r += std::max<std::int64_t>(chunk, 1)) {
    const std::int64_t m = std::min(chunk, t.rows - r);
    cpu::gemm(t.trans_a, t.trans_b, m, t.cols, t.inner, 1.0f, a + (t.trans_a ? 0 : (first + r) * lda), lda, b, ldb,
              t.accumulate ? 1.0f : 0.0f, c + (first + r) * ldc, ldc);
    comm_.progress();
  }
}

void PlanExecutor::run_spmm(const Task& t) {
  const auto& params = *args_.params;
  const Features<float>& x = *args_.x;
  std::int64_t lda = 0, ldc = 0;
  const graph::Csr& m = t.transpose_matrix ? agg_.bwd : agg_.fwd;
  const float* src = rows_ptr(t.src, params, x, &lda);
  float* dst = rows_ptr(t.dst, params, x, &ldc);
  // With messages in flight, work in row chunks and let the transport progress between them
  // (TCP moves data only inside MPI calls).
  const std::int64_t chunk = driver_.in_flight() ? kProgressRows : t.row_sel.end - t.row_sel.begin;
  for (std::int64_t b = t.row_sel.begin; b < t.row_sel.end; b += std::max<std::int64_t>(chunk, 1)) {
    cpu::spmm(m, b, std::min(t.row_sel.end, b + chunk), src, t.cols, dst, t.accumulate);
    comm_.progress();
  }
}

void PlanExecutor::run_pack(const Task& t) {
  const auto& params = *args_.params;
  const Features<float>& x = *args_.x;
  const DropoutKey* key = args_.key;
  std::int64_t lda = 0;
  const float* src = rows_ptr(t.src, params, x, &lda);
  QuantKey qk;
  if (key) qk = {key->seed, key->epoch, t.layer, t.dir == scheduler::Direction::backward ? 1 : 0};
  const auto& rows = task_rows_[t.id];
  std::uint8_t* out = msg_[std::size_t(t.message)];
  if (collect_) ranges_.resize(plan_.tasks.size()), ranges_[t.id].assign(std::size_t(t.rows), 0.0f);
  std::int64_t at = 0;
  for (const auto& [count, width] : message_groups(t)) {
    float* ranges = collect_ ? ranges_[t.id].data() + at : nullptr;
    encode_rows({src, lda, rows.data() + at, 0, local_global_.data()}, count, t.cols, width, qk, out, ranges);
    if (collect_ && width.quantized()) {  // measured error against the model's bound
      const QuantStats q = pack_stats(src, lda, rows.data() + at, count, t.cols, width, out, nullptr, scratch_);
      quant_stats_.add(q);
      quant_by_layer_[{t.layer, t.dir == scheduler::Direction::backward ? 1 : 0}].add(q);
    }
    out += scheduler::message_bytes(count, t.cols, width);
    at += count;
  }
}

void PlanExecutor::run_unpack(const Task& t) {
  const auto& params = *args_.params;
  const Features<float>& x = *args_.x;
  std::int64_t ldc = 0;
  float* dst = rows_ptr(t.dst, params, x, &ldc);
  const auto& rows = task_rows_[t.id];
  const std::uint8_t* in = msg_[std::size_t(t.message)];
  // Into a stale store (--stale-bound auto): also measure how far the received rows are from the stored ones.
  const bool store = t.measure_drift;
  const bool plain = !scheduler::unpacks_via_scratch(t);
  if (!plain) scratch_.assign(std::size_t(t.rows * t.cols), 0.0f);
  std::int64_t at = 0;
  for (const auto& [count, width] : message_groups(t)) {
    if (plain)
      decode_rows(in, count, t.cols, width, {dst, ldc, rows.data() + at, 0, t.accumulate});
    else
      decode_rows(in, count, t.cols, width, {scratch_.data(), t.cols, nullptr, at, false});
    in += scheduler::message_bytes(count, t.cols, width);
    at += count;
  }
  if (!plain) {  // dst = s dst + (1 - s) scale m, or dst += scale m
    const float s = float(t.smoothing), f = float((1.0 - t.smoothing) * t.scale);
    const double scale = t.scale;
    double drift = 0, norm = 0;
#pragma omp parallel for schedule(static) reduction(+ : drift, norm)
    for (std::int64_t r = 0; r < t.rows; ++r) {
      float* y = dst + std::int64_t(rows[std::size_t(r)]) * ldc;
      const float* m = scratch_.data() + r * t.cols;
      if (store)
        for (std::int64_t j = 0; j < t.cols; ++j) {
          const double d = scale * m[j] - y[j];
          drift += d * d;
          norm += double(y[j]) * y[j];
        }
      if (t.accumulate) {
        for (std::int64_t j = 0; j < t.cols; ++j) y[j] += f * m[j];
      } else {
        for (std::int64_t j = 0; j < t.cols; ++j) y[j] = s * y[j] + f * m[j];
      }
    }
    drift_sq_ += drift;
    norm_sq_ += norm;
  }
}

void PlanExecutor::run_copy_rows(const Task& t) {
  const auto& params = *args_.params;
  const Features<float>& x = *args_.x;
  std::int64_t lda = 0, ldc = 0;
  float* dst = rows_ptr(t.dst, params, x, &ldc);
  const float* src = t.src.kind == Operand::none ? nullptr : rows_ptr(t.src, params, x, &lda);
  const auto& s = t.row_sel;
  const std::vector<graph::NodeId>* list =
      s.kind == RowSet::send_list ? &part_.send_rows[std::size_t(s.peer)] : nullptr;
  if (!list && s.kind != RowSet::range) throw std::logic_error("copy_rows: row set must be a range or a send list");
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < t.rows; ++r) {
    float* y = dst + (list ? std::int64_t((*list)[std::size_t(r)]) : s.begin + r) * ldc;
    if (!src) {
      std::fill(y, y + t.cols, 0.0f);
      continue;
    }
    const float* a = src + (t.src_begin + r) * lda;
    if (t.accumulate) {
      for (std::int64_t j = 0; j < t.cols; ++j) y[j] += a[j];
    } else {
      std::copy(a, a + t.cols, y);
    }
  }
}

void PlanExecutor::for_each_part(const Task& t,
                                 const std::function<void(std::size_t, std::int64_t, std::int64_t)>& f) const {
  for (std::size_t q = 0; q + 1 < grad_offset_.size(); ++q) {
    const std::int64_t b = std::max(t.grad_begin, grad_offset_[q]), e = std::min(t.grad_end, grad_offset_[q + 1]);
    if (b < e) f(q, b - grad_offset_[q], e - grad_offset_[q]);
  }
}

void PlanExecutor::copy_bucket(const Task& t, bool to_flat) {
  const auto& params = *args_.params;
  for_each_part(t, [&](std::size_t q, std::int64_t b, std::int64_t e) {
    float* flat = flat_grads_.data() + grad_offset_[q] + b;
    float* own = params[q]->grad.data.data() + b;
    std::memcpy(to_flat ? flat : own, to_flat ? own : flat, std::size_t(e - b) * sizeof(float));
  });
}

int PlanExecutor::post_allreduce(const Task& t) {
  if (comm_.size() == 1) return -1;
  copy_bucket(t, true);
  return comm_.iallreduce_sum(flat_grads_.data() + t.grad_begin, t.rows);
}

void PlanExecutor::request_done(const Task& t) {
  if (t.kind == TaskKind::allreduce) copy_bucket(t, false);
}

void copy_stores(const PersistentBuffers& from, PersistentBuffers& to) {
  check_stores(from, to);
  for (const auto& [name, m] : from) to.at(name).data = m.data;  // in place: executors hold pointers to them
}

namespace {
class CpuBackend : public Backend {
 public:
  explicit CpuBackend(const BackendInputs& in) : in_(in) {}
  std::unique_ptr<Executor> make(const scheduler::Plan& plan) override {
    return std::make_unique<PlanExecutor>(plan, *in_.part, *in_.agg, *in_.comm, &stores_,
                                          in_.share_buffers ? &workspace_ : nullptr);
  }
  void finish(const std::vector<Param<float>*>&) override {}
  AdamState optimizer_state(const Adam<float>& adam) override { return adam.state(); }
  void set_training_state(const std::vector<Param<float>*>&, Adam<float>& adam, const AdamState& state) override {
    adam.set_state(state);  // parameter values are the host model's own
  }
  PersistentBuffers stores() override { return stores_; }
  void set_stores(const PersistentBuffers& stores) override { copy_stores(stores, stores_); }
  nlohmann::json describe() const override {
    return {{"name", "cpu"}, {"transport", in_.comm->size() > 1 ? "mpi" : "none"}};
  }

 private:
  BackendInputs in_;
  PersistentBuffers stores_;  // stale pipelining: what each layer received last epoch
  Workspace workspace_;       // the arena of every executor made here (BackendInputs::share_buffers)
};

std::map<std::string, BackendFactory>& registry() {
  static std::map<std::string, BackendFactory> r{{"cpu", make_cpu_backend}};
  return r;
}
std::mutex registry_mutex;
}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const BackendInputs& in) {
  if (in.transport != "auto" && in.transport != "mpi")
    throw Error("--transport " + in.transport + ": the cpu backend talks MPI only (auto or mpi)");
  return std::make_unique<CpuBackend>(in);
}

void register_backend(const std::string& name, BackendFactory factory) {
  std::lock_guard lock(registry_mutex);
  registry()[name] = std::move(factory);
}

std::vector<std::string> backend_names() {
  std::lock_guard lock(registry_mutex);
  std::vector<std::string> names;
  for (const auto& [name, f] : registry()) names.push_back(name);
  return names;
}

std::unique_ptr<Backend> make_backend(const std::string& name, const BackendInputs& in) {
  BackendFactory f;
  {
    std::lock_guard lock(registry_mutex);
    auto it = registry().find(name);
    if (it != registry().end()) f = it->second;
  }
  if (!f) {
    std::string built;
    for (const auto& n : backend_names()) built += (built.empty() ? "" : ", ") + n;
    throw Error("--backend " + name + ": not built into this program (built: " + built + ")");
  }
  return f(in);
}

}  // namespace adaqp::engine
