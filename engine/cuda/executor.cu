#include <string>

#include "engine/cuda/check.cuh"
#include "engine/cuda/codec.hpp"
#include "engine/cuda/device.hpp"
#include "engine/cuda/executor.hpp"
#include "engine/cuda/kernels.hpp"
#include "engine/cuda/nccl.hpp"
#include "scheduler/wire_format.hpp"

namespace adaqp::engine::cuda {
namespace {

using scheduler::Operand;
using scheduler::RowSet;
using scheduler::Task;
using scheduler::TaskKind;

template <class T>
DeviceBuffer upload(const std::vector<T>& v) {
  DeviceBuffer b(v.size() * sizeof(T));
  copy_to_device(b.get(), v.data(), v.size() * sizeof(T));
  return b;
}

struct DeviceMatrix {
  std::int64_t rows = 0, cols = 0;
  DeviceBuffer data;
  DeviceMatrix() = default;
  DeviceMatrix(std::int64_t r, std::int64_t c) : rows(r), cols(c), data(std::size_t(r * c) * sizeof(float)) {
    fill_zero(data.get(), data.bytes());
  }
  float* ptr() const { return data.as<float>(); }
};

// What a run's executors share on the device (see the header).
class State {
 public:
  explicit State(const BackendInputs& in) : in_(in), handles_(compute_.get()) {
    const auto& part = *in.part;
    std::int64_t total = 0;
    for (auto* p : in.params) {
      offset_.push_back(total);
      total += std::int64_t(p->value.data.size());
    }
    elements_ = total;
    values_ = DeviceBuffer(std::size_t(total) * sizeof(float));
    grads_ = DeviceBuffer(std::size_t(total) * sizeof(float));
    m_ = DeviceBuffer(std::size_t(total) * sizeof(double));
    v_ = DeviceBuffer(std::size_t(total) * sizeof(double));
    grads_host_ = PinnedBuffer(std::size_t(total) * sizeof(float));
    upload_values();
    fill_zero(grads_.get(), grads_.bytes());
    fill_zero(m_.get(), m_.bytes());
    fill_zero(v_.get(), v_.bytes());
    fwd_ = DeviceCsr(in.agg->fwd);
    bwd_ = DeviceCsr(in.agg->bwd);
    if (in.x->is_sparse()) {
      x_sparse_ = DeviceCsr(in.x->sparse, true);  // X^T G (the first layer's dW) as a plain product
    } else {
      x_dense_ = upload(in.x->dense.data);
      x_cols_ = in.x->dense.cols;
    }
    labels_ = upload(*in.loss->labels);
    train_mask_ = upload(*in.loss->mask);
    auto local = part.inner_global;
    local.insert(local.end(), part.halo_global.begin(), part.halo_global.end());
    local_global_ = upload(local);
    for (const auto& rows : part.send_rows) send_rows_.push_back(upload(rows));
    synchronize();
  }

  void upload_values() {
    for (std::size_t i = 0; i < in_.params.size(); ++i)
      copy_to_device(value(int(i)), in_.params[i]->value.data.data(), in_.params[i]->value.data.size() * sizeof(float));
  }
  void download_values(const std::vector<Param<float>*>& params) {
    compute_.synchronize();
    for (std::size_t i = 0; i < params.size(); ++i)
      copy_to_host(params[i]->value.data.data(), value(int(i)), params[i]->value.data.size() * sizeof(float));
  }

  const BackendInputs& in() const { return in_; }
  void* stream() const { return compute_.get(); }
  Stream& compute() { return compute_; }
  Stream& comm() { return comm_; }
  Handles& handles() { return handles_; }
  float* value(int i) const { return values_.as<float>() + offset_[std::size_t(i)]; }
  float* grad(int i) const { return grads_.as<float>() + offset_[std::size_t(i)]; }
  std::int64_t param_cols(int i) const { return in_.params[std::size_t(i)]->value.cols; }
  DeviceCsr& aggregation(bool transposed) { return transposed ? bwd_ : fwd_; }
  bool sparse_features() const { return in_.x->is_sparse(); }
  const float* dense_features(std::int64_t* ld) const {
    *ld = x_cols_;
    return x_dense_.as<float>();
  }
  // The features' CSR: the dropped copy (id 1, when this step dropped) or the original.
  DeviceCsr& sparse_features(int id) { return id == 1 && dropped_valid_ ? *x_dropped_ : x_sparse_; }
  // Drops the sparse features into the copy on the device (same pattern, masked values), or
  // marks the original as this step's input (drop = false).
  void drop_sparse_features(bool drop, double p, const DropoutKey* key, int layer) {
    dropped_valid_ = drop;
    if (!drop) return;
    if (!x_dropped_) x_dropped_ = std::make_unique<DeviceCsr>(in_.x->sparse, true);
    dropout_sparse_values(x_sparse_, *x_dropped_, p, *key, layer, local_global(), compute_.get());
  }
  const std::int32_t* labels() const { return labels_.as<std::int32_t>(); }
  const std::uint8_t* train_mask() const { return train_mask_.as<std::uint8_t>(); }
  const std::int64_t* local_global() const { return local_global_.as<std::int64_t>(); }
  const std::int32_t* send_rows(int peer) const { return send_rows_[std::size_t(peer)].as<std::int32_t>(); }
  DeviceMatrix& store(const std::string& name, std::int64_t rows, std::int64_t cols) {
    auto it = stores_.find(name);
    if (it == stores_.end()) it = stores_.emplace(name, DeviceMatrix(rows, cols)).first;
    if (it->second.rows != rows || it->second.cols != cols)
      throw std::logic_error("cuda executor: persistent buffer " + name + " changed shape between plans");
    return it->second;
  }

  // NCCL between ranks (null: MPI staged through pinned host memory).
  NcclComm* nccl() const { return nccl_.get(); }
  void use_nccl(std::unique_ptr<NcclComm> c) { nccl_ = std::move(c); }

  // The all-reduce of one gradient bucket (parameters [first, end), consecutive in the device
  // buffer): NCCL on the device buffer, or MPI through pinned host memory. In stream order, so a
  // bucket is reduced where the plan posts it (the CPU engine overlaps it with backward; here it is
  // not overlapped yet).
  // Sums gradient elements [begin, begin + n) (all parameters laid end to end: Plan::grad_offset).
  void allreduce_grads(Communicator& comm, std::int64_t begin, std::int64_t n) {
    if (nccl_) {
      nccl_->allreduce_sum(grads_.as<float>() + begin, n, stream());
      return;
    }
    const std::size_t bytes = std::size_t(n) * sizeof(float);
    copy_to_host_async(grads_host_.as<float>() + begin, grads_.as<float>() + begin, bytes, stream());
    compute_.synchronize();
    comm.allreduce_sum(grads_host_.as<float>() + begin, n);
    copy_to_device_async(grads_.as<float>() + begin, grads_host_.as<float>() + begin, bytes, stream());
  }
  // Checkpoints: the moments and store contents, copied to / from the host.
  AdamState optimizer_state() {
    compute_.synchronize();
    AdamState s;
    s.step = step_;
    for (std::size_t i = 0; i < in_.params.size(); ++i) {
      const std::size_t n = in_.params[i]->value.data.size();
      s.m.emplace_back(n);
      s.v.emplace_back(n);
      copy_to_host(s.m.back().data(), m_.as<double>() + offset_[i], n * sizeof(double));
      copy_to_host(s.v.back().data(), v_.as<double>() + offset_[i], n * sizeof(double));
    }
    return s;
  }
  void set_optimizer_state(const AdamState& s) {
    compute_.synchronize();
    if (s.m.size() != in_.params.size() || s.v.size() != in_.params.size())
      throw std::logic_error("cuda backend: optimizer state for another number of parameters");
    for (std::size_t i = 0; i < in_.params.size(); ++i) {
      const std::size_t n = in_.params[i]->value.data.size();
      if (s.m[i].size() != n || s.v[i].size() != n)
        throw std::logic_error("cuda backend: optimizer state of parameter " + std::to_string(i) + " has another size");
      copy_to_device(m_.as<double>() + offset_[i], s.m[i].data(), n * sizeof(double));
      copy_to_device(v_.as<double>() + offset_[i], s.v[i].data(), n * sizeof(double));
    }
    step_ = s.step;
  }
  PersistentBuffers host_stores() {
    compute_.synchronize();
    PersistentBuffers out;
    for (const auto& [name, d] : stores_) {
      Matrix<float> h(d.rows, d.cols);
      copy_to_host(h.data.data(), d.ptr(), h.data.size() * sizeof(float));
      out.emplace(name, std::move(h));
    }
    return out;
  }
  void set_host_stores(const PersistentBuffers& from) {
    compute_.synchronize();
    check_stores(from, stores_);
    for (const auto& [name, h] : from)
      copy_to_device(stores_.at(name).ptr(), h.data.data(), h.data.size() * sizeof(float));
  }

  // One optimizer update of elements [begin, end) of every parameter laid end to end (values,
  // gradients and moments share the offsets; Plan::grad_offset); `first` starts the step.
  void adam_update(std::int64_t begin, std::int64_t end, bool first) {
    if (first) ++step_;
    cuda::adam_step(values_.as<float>() + begin, grads_.as<float>() + begin, m_.as<double>() + begin,
                    v_.as<double>() + begin, end - begin, in_.adam, step_, stream());
  }

 private:
  BackendInputs in_;
  Stream compute_, comm_;
  std::unique_ptr<NcclComm> nccl_;
  Handles handles_;
  std::vector<std::int64_t> offset_;
  std::int64_t elements_ = 0;
  DeviceBuffer values_, grads_, m_, v_;
  PinnedBuffer grads_host_;
  long step_ = 0;
  DeviceCsr fwd_, bwd_, x_sparse_;
  std::unique_ptr<DeviceCsr> x_dropped_;
  bool dropped_valid_ = false;
  DeviceBuffer x_dense_;
  std::int64_t x_cols_ = 0;
  DeviceBuffer labels_, train_mask_, local_global_;
  std::vector<DeviceBuffer> send_rows_;
  std::map<std::string, DeviceMatrix> stores_;
};

class CudaExecutor : public Executor, private StepHooks {
 public:
  CudaExecutor(const scheduler::Plan& plan, State& st)
      : plan_(plan), st_(st), comm_(*st.in().comm), driver_(plan, *st.in().comm) {
    const auto& part = *st.in().part;
    if (st.in().x->rows() != (plan.halo_features ? part.num_local() : part.num_inner()))
      throw std::logic_error("cuda executor: features have " + std::to_string(st.in().x->rows()) +
                             " rows, the plan reads " +
                             std::to_string(plan.halo_features ? part.num_local() : part.num_inner()));
    for (const auto& b : plan.buffers) {
      if (b.persistent) {
        buf_.push_back(&st.store(b.name, b.rows, b.cols));
      } else {
        owned_.push_back(std::make_unique<DeviceMatrix>(b.rows, b.cols));
        buf_.push_back(owned_.back().get());
      }
    }
    host_.resize(plan.buffers.size());
    for (const auto& m : plan.messages) {
      dmsg_.emplace_back(std::size_t(m.bytes));
      hmsg_.emplace_back(std::size_t(m.bytes));
      staged_.emplace_back();
    }
    masks_.resize(plan.buffers.size());
    mask_valid_.assign(plan.buffers.size(), false);
    for (const auto& t : plan.tasks)
      if (t.kind == TaskKind::dropout_backward && t.src2.kind == Operand::buffer && !masks_[t.src2.id].get())
        masks_[t.src2.id] = DeviceBuffer(std::size_t(plan.buffers[t.src2.id].rows * plan.buffers[t.src2.id].cols));
    rows_ = message_rows(plan, *st.in().part, &sampled_);
    for (const auto& t : plan.tasks)
      if (t.kind == TaskKind::optimizer) {  // the first optimizer update starts the step
        first_update_ = t.id;
        break;
      }
    rows_dev_.resize(plan.tasks.size());
    for (std::size_t i = 0; i < rows_.size(); ++i)
      if (!rows_[i].empty()) rows_dev_[i] = upload(rows_[i]);
    for (std::size_t i = 0; i < plan.tasks.size(); ++i) {
      begin_.emplace_back();
      end_.emplace_back();
    }
    if (st.nccl()) {
      recv_tag_.assign(plan.tasks.size(), -1);
      waited_.assign(plan.tasks.size(), 0);
      for (const auto& t : plan.tasks) {
        const bool recv = t.kind == TaskKind::recv;
        if (recv || t.kind == TaskKind::send) {
          ++nccl_total_[t.tag];
          nccl_ops_[t.tag];
          nccl_ready_.try_emplace(t.tag);
          nccl_arrived_.try_emplace(t.tag);
        }
        stall_begin_.emplace_back();
        stall_end_.emplace_back();
      }
    }
    std::int64_t scratch = 0;
    for (const auto& t : plan.tasks)
      if (t.kind == TaskKind::unpack && (t.scale != 1 || t.smoothing != 0))
        scratch = std::max(scratch, t.rows * t.cols);
    scratch_ = DeviceBuffer(std::size_t(scratch) * sizeof(float));
    // The zero fills above ran on the legacy stream, which the non-blocking compute stream does
    // not wait for: finish them before the first task.
    synchronize();
  }

  void set_boundary_sample(const scheduler::BoundarySample& sample) override {
    sample_message_rows(plan_, *st_.in().part, sample, rows_);
    // Same row counts every epoch: rewrite the device lists in place (a new allocation's cudaFree
    // of the old one would wait for the whole device). The last step has finished (run() ends
    // with the compute stream synchronized), so nothing still reads them.
    for (const auto& t : plan_.tasks)
      if ((t.kind == TaskKind::pack || t.kind == TaskKind::unpack) && t.row_sel.sampled) {
        const auto& rows = rows_[std::size_t(t.id)];
        auto& dev = rows_dev_[std::size_t(t.id)];
        if (dev.bytes() == rows.size() * sizeof(rows[0]))
          copy_to_device(dev.get(), rows.data(), dev.bytes());
        else
          dev = upload(rows);
      }
    sample_given_ = true;
  }

  StepTimes run(const std::vector<Param<float>*>& params, Adam<float>* adam, const Features<float>&,
                const DropoutKey* key, const LossInputs* loss) override {
    if (params.size() != plan_.params.size())
      throw std::logic_error("cuda executor: model has " + std::to_string(params.size()) + " parameters, plan " +
                             std::to_string(plan_.params.size()));
    if (sampled_ && !sample_given_)
      throw std::logic_error("cuda executor: plan samples boundary rows but no sample was given");
    sample_given_ = false;
    quant_stats_ = {};
    quant_by_layer_.clear();
    if (st_.nccl()) {
      std::fill(recv_tag_.begin(), recv_tag_.end(), -1);
      std::fill(waited_.begin(), waited_.end(), 0);
    }
    args_ = {adam, key, loss};
    const StepTimes times = driver_.run(*this, trace_);
    args_ = {};
    return times;
  }

  // StepHooks (engine/step_driver.hpp): the shared run loop calls these.
  void before_task(const Task& t) override {
    if (!st_.nccl()) return;
    for (int d : t.deps)
      if (plan_.tasks[std::size_t(d)].kind == TaskKind::recv) nccl_wait(t, d);
  }
  void request_done(const Task& r) override {
    if (r.kind != TaskKind::recv) return;
    // To the device on the comm stream; the compute stream waits for it.
    copy_to_device_async(dmsg_[r.message].get(), hmsg_[r.message].get(), std::size_t(r.bytes), st_.comm().get());
    staged_[r.message].record(st_.comm().get());
    staged_[r.message].make_wait(st_.stream());
  }
  int execute(const Task& t, StepTimes& times) override {
    begin_[t.id].record(st_.stream());
    const int request = run_task(t, args_.adam, args_.key, args_.loss, times);
    end_[t.id].record(st_.stream());
    return request;
  }
  // Posting a send or receive is host time; every other task is timed on the device.
  bool host_timed(const Task& t) const override { return t.kind == TaskKind::send || t.kind == TaskKind::recv; }
  void drain() override {
    if (!st_.nccl()) return;
    for (const auto& [tag, ops] : nccl_ops_)
      if (!ops.empty())
        throw std::logic_error("cuda executor: exchange " + std::to_string(tag) + " was not posted whole");
    st_.comm().synchronize();
  }
  void synchronize() override { st_.compute().synchronize(); }
  void account(StepTimes& times, std::vector<double>* trace) override {
    for (std::size_t d = 0; d < waited_.size(); ++d)
      if (waited_[d]) times.comm_s += stall_end_[d].seconds_since(stall_begin_[d]);  // device stalls on NCCL
    for (const Task& t : plan_.tasks)
      if (!host_timed(t)) book_time(times, t, end_[t.id].seconds_since(begin_[t.id]), trace);
  }

  MatrixView<const float> host_buffer(int id) override {
    const DeviceMatrix& d = *buf_[std::size_t(id)];
    Matrix<float>& h = host_[std::size_t(id)];
    if (h.rows != d.rows || h.cols != d.cols) h.resize(d.rows, d.cols);
    st_.compute().synchronize();
    copy_to_host(h.data.data(), d.ptr(), h.data.size() * sizeof(float));
    return view(h);
  }
  void collect_stats(bool on) override { collect_ = on; }
  const std::vector<float>& row_ranges(int task_id) const override { return ranges_[std::size_t(task_id)]; }
  void trace(std::vector<double>* task_seconds) override { trace_ = task_seconds; }
  const QuantStats& quant_stats() const override { return quant_stats_; }
  const std::map<std::pair<int, int>, QuantStats>& quant_stats_by_layer() const override { return quant_by_layer_; }
  const scheduler::Plan& plan() const override { return plan_; }

 private:
  float* ptr(const Operand& o, std::int64_t* ld) {
    switch (o.kind) {
      case Operand::buffer:
        *ld = buf_[std::size_t(o.id)]->cols;
        return buf_[std::size_t(o.id)]->ptr();
      case Operand::param_value:
        *ld = st_.param_cols(o.id);
        return st_.value(o.id);
      case Operand::param_grad:
        *ld = st_.param_cols(o.id);
        return st_.grad(o.id);
      case Operand::features:
        if (o.id != 0 || st_.sparse_features()) throw std::logic_error("plan reads sparse features as a dense matrix");
        return const_cast<float*>(st_.dense_features(ld));
      default:
        throw std::logic_error("plan task has an empty operand");
    }
  }

  // Runs one task; a send or recv over MPI returns its communicator request (else -1).
  int run_task(const Task& t, Adam<float>* adam, const DropoutKey* key, const LossInputs* loss, StepTimes& times) {
    void* stream = st_.stream();
    Handles& h = st_.handles();
    std::int64_t lda = 0, ldb = 0, ldc = 0;
    switch (t.kind) {
      case TaskKind::dropout: {
        const bool drop = key && t.dropout > 0;
        if (t.dst.kind == Operand::features) {  // sparse first-layer input: values masked on the device
          st_.drop_sparse_features(drop, t.dropout, key, t.layer);
          break;
        }
        const float* src = ptr(t.src, &lda);
        float* dst = ptr(t.dst, &ldc);
        auto& mask = masks_[std::size_t(t.dst.id)];
        mask_valid_[std::size_t(t.dst.id)] = drop;
        if (drop) {
          dropout_forward(src, dst, mask.get() ? mask.as<std::uint8_t>() : nullptr, t.rows, t.cols, t.dropout, *key,
                          t.layer, st_.local_global(), stream);  // inner, then halo rows (halo features)
        } else {
          copy_on_device(dst, src, std::size_t(t.rows * t.cols) * sizeof(float), stream);
        }
        break;
      }
      case TaskKind::gemm: {
        const float* a = ptr(t.src, &lda);
        const float* b = ptr(t.src2, &ldb);
        float* c = ptr(t.dst, &ldc);
        const std::int64_t first = t.row_sel.kind == RowSet::range && !t.trans_a ? t.row_sel.begin : 0;
        gemm(h, t.trans_a, t.trans_b, t.rows, t.cols, t.inner, 1.0f, a + (t.trans_a ? 0 : first * lda), lda, b, ldb,
             t.accumulate ? 1.0f : 0.0f, c + first * ldc, ldc);
        break;
      }
      case TaskKind::spmm:
        spmm(h, st_.aggregation(t.transpose_matrix), t.row_sel.begin, t.row_sel.end, ptr(t.src, &lda), t.cols,
             ptr(t.dst, &ldc), t.accumulate);
        break;
      case TaskKind::spmm_features: {
        DeviceCsr& xs = st_.sparse_features(t.src.id);
        const bool ranged = t.row_sel.kind == RowSet::range;
        spmm(h, xs, ranged ? t.row_sel.begin : 0, ranged ? t.row_sel.end : xs.rows(), ptr(t.src2, &ldb), t.cols,
             ptr(t.dst, &ldc), t.accumulate);
        break;
      }
      case TaskKind::spmm_features_t:
        // rows [0, inner) of X and G; a row block of dW: only its rows
        spmm_transposed(h, st_.sparse_features(t.src2.id), ptr(t.src, &lda), t.cols, ptr(t.dst, &ldc), false, t.inner,
                        t.row_sel.kind == RowSet::range ? t.row_sel.begin : 0,
                        t.row_sel.kind == RowSet::range ? t.row_sel.end : -1);
        break;
      case TaskKind::bias_act: {
        const float* bias = ptr(t.src, &lda);
        float* y = ptr(t.dst, &ldc);
        bias_act(y, bias, t.rows, t.cols, t.relu, stream);
        break;
      }
      case TaskKind::act_backward:
        relu_backward(ptr(t.src, &lda), ptr(t.dst, &ldc), t.rows * t.cols, stream);
        break;
      case TaskKind::bias_grad:
        column_sums(ptr(t.src, &lda), t.rows, t.cols, ptr(t.dst, &ldc), false, stream);
        break;
      case TaskKind::dropout_backward: {
        const float* g = ptr(t.src, &lda);
        float* out = ptr(t.dst, &ldc);
        const std::int64_t n = t.rows * t.cols;
        if (!mask_valid_[std::size_t(t.src2.id)]) {
          copy_on_device(out, g, std::size_t(n) * sizeof(float), stream);
        } else {
          dropout_backward(g, masks_[std::size_t(t.src2.id)].as<std::uint8_t>(), float(1.0 / (1.0 - t.dropout)), n, out,
                           stream);
        }
        break;
      }
      case TaskKind::pack:
        pack(t, key);
        break;
      case TaskKind::unpack: {
        float* dst = ptr(t.dst, &ldc);
        const auto* rows = rows_dev_[std::size_t(t.id)].as<std::int32_t>();
        const std::uint8_t* in = dmsg_[std::size_t(t.message)].as<std::uint8_t>();
        const bool plain = t.scale == 1 && t.smoothing == 0;
        std::int64_t at = 0;
        for (const auto& [count, width] : message_groups(t)) {
          if (plain)
            decode_rows(in, count, t.cols, width, {dst, ldc, rows + at, 0, t.accumulate}, stream);
          else
            decode_rows(in, count, t.cols, width, {scratch_.as<float>(), t.cols, nullptr, at, false}, stream);
          in += scheduler::message_bytes(count, t.cols, width);
          at += count;
        }
        if (!plain)
          blend_rows(dst, ldc, rows, scratch_.as<float>(), t.rows, t.cols, float(t.smoothing),
                     float((1.0 - t.smoothing) * t.scale), t.accumulate, stream);
        break;
      }
      case TaskKind::copy_rows: {
        float* dst = ptr(t.dst, &ldc);
        const float* src = t.src.kind == Operand::none ? nullptr : ptr(t.src, &lda);
        const auto& s = t.row_sel;
        if (s.kind != RowSet::send_list && s.kind != RowSet::range)
          throw std::logic_error("copy_rows: row set must be a range or a send list");
        copy_rows(dst, ldc, s.kind == RowSet::send_list ? st_.send_rows(s.peer) : nullptr, s.begin, src, lda,
                  t.src_begin, t.rows, t.cols, t.accumulate, stream);
        break;
      }
      case TaskKind::send:
      case TaskKind::recv:
        if (st_.nccl()) {
          nccl_enqueue(t);
        } else if (t.kind == TaskKind::send) {
          return comm_.isend(hmsg_[std::size_t(t.message)].get(), t.bytes, t.peer, t.tag);
        } else {
          return comm_.irecv(hmsg_[std::size_t(t.message)].get(), t.bytes, t.peer, t.tag);
        }
        break;
      case TaskKind::loss: {
        if (!loss) throw std::logic_error("plan has a loss task but no loss inputs were given");
        const DeviceMatrix& z = *buf_[std::size_t(t.src.id)];
        times.loss = softmax_cross_entropy(z.ptr(), z.rows, z.cols, st_.labels(), st_.train_mask(), loss->normaliser,
                                           buf_[std::size_t(t.dst.id)]->ptr(), stream);
        break;
      }
      case TaskKind::allreduce:
        if (comm_.size() > 1 || st_.nccl()) st_.allreduce_grads(comm_, t.grad_begin, t.rows);
        break;
      case TaskKind::optimizer:
        if (!adam) throw std::logic_error("plan has an optimizer task but no optimizer was given");
        st_.adam_update(t.grad_begin, t.grad_end, t.id == first_update_);
        break;
    }
    return -1;
  }

  // Encodes on the device, then copies the message to its pinned host slot for the send.
  void pack(const Task& t, const DropoutKey* key) {
    void* stream = st_.stream();
    std::int64_t lda = 0;
    const float* src = ptr(t.src, &lda);
    QuantKey qk;
    if (key) qk = {key->seed, key->epoch, t.layer, t.dir == scheduler::Direction::backward ? 1 : 0};
    const auto* rows = rows_dev_[std::size_t(t.id)].as<std::int32_t>();
    std::uint8_t* out = dmsg_[std::size_t(t.message)].as<std::uint8_t>();
    std::int64_t at = 0;
    for (const auto& [count, width] : message_groups(t)) {
      encode_rows({src, lda, rows + at, 0, st_.local_global()}, count, t.cols, width, qk, out, stream);
      out += scheduler::message_bytes(count, t.cols, width);
      at += count;
    }
    if (st_.nccl() && !collect_) return;  // NCCL sends the device buffer once the stream reaches it
    const auto bytes = std::size_t(plan_.messages[std::size_t(t.message)].bytes);
    copy_to_host_async(hmsg_[std::size_t(t.message)].get(), dmsg_[std::size_t(t.message)].get(), bytes, stream);
    st_.compute().synchronize();
    if (collect_) collect(t, src, lda);
  }

  // NCCL: the sends and receives of one exchange (one tag) are issued as one group on the comm
  // stream once the plan has posted all of them (the same order on every rank, as NCCL matches
  // point-to-point operations per peer in issue order). The comm stream first waits for the
  // compute stream (the packs); tasks that need a received message make the compute stream wait
  // for the group's completion event.
  void nccl_enqueue(const Task& t) {
    auto& ops = nccl_ops_[t.tag];
    ops.push_back(t.id);
    if (std::int64_t(ops.size()) < nccl_total_.at(t.tag)) return;
    NcclComm& nccl = *st_.nccl();
    void* cs = st_.comm().get();
    auto& ready = nccl_ready_.at(t.tag);
    ready.record(st_.stream());
    ready.make_wait(cs);
    nccl.group_start();
    for (int id : ops) {
      const Task& o = plan_.tasks[std::size_t(id)];
      if (o.kind == TaskKind::send)
        nccl.send(dmsg_[std::size_t(o.message)].get(), o.bytes, o.peer, cs);
      else
        nccl.recv(dmsg_[std::size_t(o.message)].get(), o.bytes, o.peer, cs);
    }
    nccl.group_end();
    nccl_arrived_.at(t.tag).record(cs);
    for (int id : ops)
      if (plan_.tasks[std::size_t(id)].kind == TaskKind::recv) recv_tag_[std::size_t(id)] = t.tag;
    ops.clear();
  }
  // Task `t` needs the message of receive task `d`: the compute stream waits for its group (the
  // events around the wait measure the stall).
  void nccl_wait(const Task& t, int d) {
    if (waited_[std::size_t(d)]) return;
    const int tag = recv_tag_[std::size_t(d)];
    if (tag < 0)
      throw std::logic_error("cuda executor: task " + std::to_string(t.id) + " needs receive " + std::to_string(d) +
                             " before its exchange was posted whole (NCCL groups need every send and receive first)");
    stall_begin_[std::size_t(d)].record(st_.stream());
    nccl_arrived_.at(tag).make_wait(st_.stream());
    stall_end_[std::size_t(d)].record(st_.stream());
    waited_[std::size_t(d)] = 1;
  }

  // Row ranges and quantization error of a pack, on the host from copies of its source buffer and
  // message (only on the epochs that collect statistics).
  void collect(const Task& t, const float* src, std::int64_t lda) {
    if (ranges_.size() != plan_.tasks.size()) ranges_.resize(plan_.tasks.size());
    auto& ranges = ranges_[std::size_t(t.id)];
    ranges.assign(std::size_t(t.rows), 0.0f);
    const std::int64_t src_rows = t.src.kind == Operand::buffer ? buf_[std::size_t(t.src.id)]->rows : 0;
    std::vector<float> host_src(std::size_t(src_rows * lda));
    copy_to_host(host_src.data(), src, host_src.size() * sizeof(float));
    const auto& rows = rows_[std::size_t(t.id)];
    const std::uint8_t* msg = hmsg_[std::size_t(t.message)].as<std::uint8_t>();
    std::int64_t at = 0;
    for (const auto& [count, width] : message_groups(t)) {
      if (width.quantized()) {
        const QuantStats q = pack_stats(host_src.data(), lda, rows.data() + at, count, t.cols, width, msg,
                                        ranges.data() + at, host_scratch_);
        quant_stats_.add(q);
        quant_by_layer_[{t.layer, t.dir == scheduler::Direction::backward ? 1 : 0}].add(q);
      } else {
        for (std::int64_t r = 0; r < count; ++r) {
          const float* x = host_src.data() + std::int64_t(rows[std::size_t(at + r)]) * lda;
          const auto [lo, hi] = std::minmax_element(x, x + t.cols);
          ranges[std::size_t(at + r)] = t.cols > 0 ? *hi - *lo : 0.0f;
        }
      }
      msg += scheduler::message_bytes(count, t.cols, width);
      at += count;
    }
  }

  const scheduler::Plan& plan_;
  State& st_;
  Communicator& comm_;
  // NCCL bookkeeping (engine/cuda/nccl.hpp): per tag, its sends + receives in the plan, the ones
  // posted this step, and the events before / after its group; per receive task, its group's tag
  // once issued, whether the compute stream waits for it already, and the events around that wait.
  std::map<int, std::int64_t> nccl_total_;
  std::map<int, std::vector<int>> nccl_ops_;
  std::map<int, Event> nccl_ready_, nccl_arrived_;
  std::vector<int> recv_tag_;
  int first_update_ = -1;  // the plan's first optimizer task
  std::vector<char> waited_;
  std::vector<Event> stall_begin_, stall_end_;
  std::vector<std::unique_ptr<DeviceMatrix>> owned_;
  std::vector<DeviceMatrix*> buf_;
  std::vector<Matrix<float>> host_;
  std::vector<DeviceBuffer> dmsg_;
  std::vector<PinnedBuffer> hmsg_;
  std::vector<Event> staged_;  // per message slot: its copy to the device done
  std::vector<DeviceBuffer> masks_;
  std::vector<bool> mask_valid_;
  std::vector<std::vector<graph::NodeId>> rows_;
  std::vector<DeviceBuffer> rows_dev_;
  bool sampled_ = false, sample_given_ = false;
  std::vector<Event> begin_, end_;
  DeviceBuffer scratch_;
  std::vector<float> host_scratch_;
  bool collect_ = false;
  std::vector<double>* trace_ = nullptr;
  std::vector<std::vector<float>> ranges_;
  QuantStats quant_stats_;
  std::map<std::pair<int, int>, QuantStats> quant_by_layer_;
  // The arguments of the run in progress (null outside run()).
  struct RunArgs {
    Adam<float>* adam = nullptr;
    const DropoutKey* key = nullptr;
    const LossInputs* loss = nullptr;
  };
  RunArgs args_;
  StepDriver driver_;
};

class CudaBackend : public Backend {
 public:
  CudaBackend(const BackendInputs& in, const DeviceInfo& info, int device) : info_(info), device_(device) {
    check(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
    state_ = std::make_unique<State>(in);
    choose_transport(in);
  }
  std::unique_ptr<Executor> make(const scheduler::Plan& plan) override {
    return std::make_unique<CudaExecutor>(plan, *state_);
  }
  void finish(const std::vector<Param<float>*>& params) override { state_->download_values(params); }
  AdamState optimizer_state(const Adam<float>&) override { return state_->optimizer_state(); }
  void set_training_state(const std::vector<Param<float>*>&, Adam<float>& adam, const AdamState& state) override {
    adam.set_state(state);
    state_->upload_values();  // the host model's values (restored by the caller)
    state_->set_optimizer_state(state);
  }
  PersistentBuffers stores() override { return state_->host_stores(); }
  void set_stores(const PersistentBuffers& stores) override { state_->set_host_stores(stores); }
  nlohmann::json describe() const override {
    return {{"name", "cuda"},
            {"device", info_.name},
            {"device_index", device_},
            {"devices_visible", info_.count},
            {"compute_capability", std::to_string(info_.major) + "." + std::to_string(info_.minor)},
            {"memory_gib", info_.memory_gib},
            {"runtime_version", info_.runtime_version},
            {"driver_version", info_.driver_version},
            {"transport", transport_},
            {"spmm", spmm_impl_name(spmm_impl())},
            {"transport_requested", state_->in().transport},
            {"nccl", nccl_found_}};
  }

 private:
  // What every rank can use, agreed over MPI: NCCL needs the library on every rank and one GPU
  // per rank. auto takes NCCL when it can (and there is more than one rank), else MPI through
  // pinned host memory; nccl and mpi are requests that fail with one line when impossible.
  void choose_transport(const BackendInputs& in) {
    Communicator& comm = *in.comm;
    const auto status = nccl_status();
    nccl_found_ = status.available ? "available " + status.version : "unavailable: " + status.reason;
    std::vector<std::uint64_t> ok(std::size_t(comm.size())), bus(std::size_t(comm.size()));
    comm.allgather(std::uint64_t(status.available), ok.data());
    comm.allgather(std::hash<std::string>{}(device_pci_bus_id(device_)), bus.data());
    std::string why_not;
    for (int r = 0; r < comm.size() && why_not.empty(); ++r) {
      if (!ok[std::size_t(r)])
        why_not =
            "rank " + std::to_string(r) + " has no NCCL (" + (r == comm.rank() ? status.reason : "see its log") + ")";
      for (int q = 0; q < r && why_not.empty(); ++q)
        if (bus[std::size_t(q)] == bus[std::size_t(r)])
          why_not = "ranks " + std::to_string(q) + " and " + std::to_string(r) +
                    " share one GPU (NCCL needs one rank per GPU): use --transport mpi";
    }
    const std::string& want = in.transport;
    if (want != "auto" && want != "mpi" && want != "nccl")
      throw Error("--transport " + want + ": must be auto, mpi or nccl");
    const bool nccl = want == "nccl" || (want == "auto" && comm.size() > 1 && why_not.empty());
    if (nccl && !why_not.empty()) throw Error("--transport nccl: " + why_not);
    if (nccl) {
      state_->use_nccl(std::make_unique<NcclComm>(comm, device_));
      transport_ = "nccl " + status.version;
    } else {
      transport_ = comm.size() > 1 ? "mpi, staged through pinned host memory" : "none";
    }
  }

  std::string transport_, nccl_found_;
  DeviceInfo info_;
  int device_;
  std::unique_ptr<State> state_;
};

}  // namespace

void register_backend() {
  engine::register_backend("cuda", [](const BackendInputs& in) -> std::unique_ptr<Backend> {
    const DeviceInfo info = device_info();
    if (!info.available)
      throw Error("--backend cuda: " + (info.no_device ? "no device (" + info.reason + ")" : info.reason));
    return std::make_unique<CudaBackend>(in, info, in.comm->rank() % info.count);
  });
}

}  // namespace adaqp::engine::cuda
