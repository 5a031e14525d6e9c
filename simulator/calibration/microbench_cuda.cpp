// GPU calibration microbenchmarks: every compute cost class of simulator/cost_model.hpp timed on
// the kernels the CUDA executor runs (engine/cuda), one call per iteration, device time between
// two CUDA events around the call (Google Benchmark's manual time). Same classes, features and
// benchmark names as the CPU set (microbench.cpp), on larger grids: a GPU needs far more work per
// call before the launch cost stops dominating.
//
// Not timed here: the host staging copies of messages under MPI (the executor's pack / unpack
// without NCCL also copy the message between device and pinned host memory); the pack / unpack
// classes hold the device codec only.
#include <benchmark/benchmark.h>

#include <map>
#include <numeric>
#include <random>
#include <tuple>

#include "base/error.hpp"
#include "engine/cuda/codec.hpp"
#include "engine/cuda/device.hpp"
#include "engine/cuda/kernels.hpp"
#include "scheduler/wire_format.hpp"
#include "simulator/calibration/microbench.hpp"
#include "simulator/calibration/microbench_common.hpp"
#include "simulator/cost_model.hpp"

namespace adaqp::bench {

namespace {

namespace cuda = engine::cuda;
using scheduler::TaskKind;

template <class T>
cuda::DeviceBuffer upload(const std::vector<T>& v) {
  cuda::DeviceBuffer d(v.size() * sizeof(T));
  cuda::copy_to_device(d.get(), v.data(), v.size() * sizeof(T));
  return d;
}

// Host inputs are costly to make at GPU sizes, and Google Benchmark calls a benchmark several
// times while it settles the iteration count: make each once.
const graph::Csr& cached_csr(std::int64_t rows, std::int64_t cols, std::int64_t per_row, std::uint64_t seed) {
  static std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t, std::uint64_t>, graph::Csr> cache;
  auto it = cache.find({rows, cols, per_row, seed});
  if (it == cache.end())
    it = cache.emplace(std::tuple{rows, cols, per_row, seed}, random_csr(rows, cols, per_row, seed)).first;
  return it->second;
}
cuda::DeviceBuffer random_device(std::int64_t n, std::uint64_t seed) {
  return upload(random_values(n, seed));
}
cuda::DeviceBuffer iota_ids(std::int64_t n) {
  std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
  std::iota(ids.begin(), ids.end(), 0);
  return upload(ids);
}

// Registers "calib/CLASS/LABEL"; fn(state, timer) runs the timed loop.
template <class F>
void add(const MicrobenchOptions& o, const std::string& cls, const std::string& label, F fn) {
  if (!simulator::find_cost_class(cls)) throw std::logic_error("microbench: no cost class " + cls);
  benchmark::RegisterBenchmark(("calib/" + cls + "/" + label).c_str(), fn)
      ->UseManualTime()
      ->MinTime(o.min_time_s)
      ->Unit(benchmark::kMicrosecond);
}
// The timed loop: call() once per iteration between two events on the default stream.
template <class Call>
void timed(benchmark::State& st, Call call) {
  cuda::EventTimer timer;
  call();  // first-use costs (handles, workspace, cached row blocks) stay out of the samples
  cuda::synchronize();
  for (auto _ : st) {
    timer.start();
    call();
    st.SetIterationTime(timer.stop());
  }
}

void register_sparse(const MicrobenchOptions& o) {
  const Grid rows = o.quick ? Grid{8192, 131072} : Grid{8192, 131072, 524288};
  const Grid degree = o.quick ? Grid{4, 32} : Grid{4, 16, 48};
  const Grid cols = o.quick ? Grid{16, 256} : Grid{16, 64, 256};
  for (auto n : rows)
    for (auto d : degree)
      for (auto c : cols)
        add(o, "spmm", dims({n, d, c}), [n, d, c](benchmark::State& st) {
          const auto& host = cached_csr(n, n, d, 1);
          cuda::DeviceCsr a(host);
          const auto b = random_device(n * c, 2);
          cuda::DeviceBuffer out(std::size_t(n * c) * 4);
          cuda::Handles h;
          timed(st, [&] { cuda::spmm(h, a, 0, n, b.as<float>(), c, out.as<float>(), false); });
          set_features(st, task_of(TaskKind::spmm, n, c, n, host.nnz()));
        });
  const Grid xrows = o.quick ? Grid{16384} : Grid{16384, 131072};
  const Grid in = o.quick ? Grid{1000, 8000} : Grid{1000, 8000};
  const Grid per_row = o.quick ? Grid{16, 128} : Grid{16, 128};
  const Grid out = o.quick ? Grid{16, 256} : Grid{16, 64, 256};
  for (auto n : xrows)
    for (auto f : in)
      for (auto k : per_row)
        for (auto c : out) {
          const std::string label = dims({n, f, k, c});
          add(o, "spmm_features", label, [n, f, k, c](benchmark::State& st) {
            const auto& host = cached_csr(n, f, k, 3);
            cuda::DeviceCsr x(host);
            const auto w = random_device(f * c, 4);
            cuda::DeviceBuffer y(std::size_t(n * c) * 4);
            cuda::Handles h;
            timed(st, [&] { cuda::spmm(h, x, 0, n, w.as<float>(), c, y.as<float>(), false); });
            set_features(st, task_of(TaskKind::spmm_features, n, c, f, host.nnz()));
          });
          add(o, "spmm_features_t", label, [n, f, k, c](benchmark::State& st) {
            // As the executor runs it: the features keep their transpose, whose values are
            // gathered again after each dropout (mutable_values marks them stale).
            const auto& host = cached_csr(n, f, k, 3);
            cuda::DeviceCsr x(host, true);
            const auto g = random_device(n * c, 5);
            cuda::DeviceBuffer grad(std::size_t(f * c) * 4);
            cuda::Handles h;
            timed(st, [&] {
              x.mutable_values();
              cuda::spmm_transposed(h, x, g.as<float>(), c, grad.as<float>(), false);
            });
            set_features(st, task_of(TaskKind::spmm_features_t, f, c, n, host.nnz()));
          });
          add(o, "dropout_sparse", label, [n, f, k](benchmark::State& st) {
            const auto& host = cached_csr(n, f, k, 3);
            cuda::DeviceCsr x(host), y(host);
            const auto ids = iota_ids(n);
            std::int64_t epoch = 0;
            timed(st, [&] { cuda::dropout_sparse_values(x, y, 0.5, {1, ++epoch}, 0, ids.as<std::int64_t>()); });
            auto t = task_of(TaskKind::dropout, n, f, 0, host.nnz());
            t.dst = {scheduler::Operand::features, 1};
            t.dropout = 0.5;
            set_features(st, t);
          });
        }
}

// SpMM on real graphs' GCN operators (as microbench.cpp's register_real_graphs).
void register_real_graphs(const MicrobenchOptions& o) {
  const std::vector<std::string> names =
      o.quick ? std::vector<std::string>{"cora", "coauthor-cs"}
              : std::vector<std::string>{"cora", "citeseer", "amazon-photo", "coauthor-cs", "tolokers"};
  const Grid parts = o.quick ? Grid{1, 2} : Grid{1, 2, 4};
  const Grid cols = o.quick ? Grid{16, 256} : Grid{16, 64, 256};
  for (const auto& name : names)
    for (auto P : parts)
      for (int transpose : {0, 1})
        for (auto c : cols)
          add(o, "spmm", name + "/" + dims({P, transpose, c}), [name, P, transpose, c](benchmark::State& st) {
            const auto& op = partition_operator(name, int(P));
            const graph::Csr& host = transpose ? op.bwd : op.fwd;
            cuda::DeviceCsr a(host);
            const auto b = random_device(host.num_cols * c, 20);
            cuda::DeviceBuffer out(std::size_t(host.num_rows * c) * 4);
            cuda::Handles h;
            timed(st, [&] { cuda::spmm(h, a, 0, host.num_rows, b.as<float>(), c, out.as<float>(), false); });
            set_features(st, task_of(TaskKind::spmm, host.num_rows, c, host.num_cols, host.nnz()));
          });
}

void register_gemm(const MicrobenchOptions& o) {
  const Grid big = o.quick ? Grid{8192, 131072} : Grid{8192, 131072, 524288};
  const Grid mid = o.quick ? Grid{64, 1024} : Grid{64, 256, 1024};
  const Grid small = o.quick ? Grid{16, 256} : Grid{16, 64, 256};
  for (const GemmPattern& s : kGemmPatterns)
    for (auto rows : big)
      for (auto f : mid)
        for (auto c : small) {
          const Mnk d = gemm_mnk(s, rows, f, c);
          const std::int64_t m = d.m, n = d.n, k = d.k;
          add(o, s.cls, dims({m, n, k}), [s, m, n, k](benchmark::State& st) {
            const auto a = random_device(m * k, 6), b = random_device(k * n, 7);
            cuda::DeviceBuffer out(std::size_t(m * n) * 4);
            const std::int64_t lda = s.ta ? m : k, ldb = s.tb ? k : n;
            cuda::Handles h;
            timed(st, [&] {
              cuda::gemm(h, s.ta, s.tb, m, n, k, 1.0f, a.as<float>(), lda, b.as<float>(), ldb, 0.0f, out.as<float>(),
                         n);
            });
            auto t = task_of(TaskKind::gemm, m, n, k);
            t.trans_a = s.ta;
            t.trans_b = s.tb;
            set_features(st, t);
          });
        }
}

void register_elementwise(const MicrobenchOptions& o) {
  const Grid rows = o.quick ? Grid{8192, 262144} : Grid{8192, 131072, 1048576};
  const Grid cols = o.quick ? Grid{16, 256} : Grid{16, 256, 1024};
  for (auto n : rows)
    for (auto c : cols) {
      const std::string label = dims({n, c});
      const std::size_t bytes = std::size_t(n * c) * 4;
      add(o, "dropout", label, [n, c, bytes](benchmark::State& st) {
        const auto x = random_device(n * c, 8), ids = iota_ids(n);
        cuda::DeviceBuffer y(bytes), keep(bytes / 4);
        std::int64_t epoch = 0;
        timed(st, [&] {
          cuda::dropout_forward(x.as<float>(), y.as<float>(), keep.as<std::uint8_t>(), n, c, 0.5, {1, ++epoch}, 0,
                                ids.as<std::int64_t>());
        });
        auto t = task_of(TaskKind::dropout, n, c);
        t.dropout = 0.5;
        set_features(st, t);
      });
      add(o, "copy", label, [n, c, bytes](benchmark::State& st) {
        const auto x = random_device(n * c, 8);
        cuda::DeviceBuffer y(bytes);
        timed(st, [&] { cuda::copy_on_device(y.get(), x.get(), bytes); });
        set_features(st, task_of(TaskKind::dropout, n, c));
      });
      add(o, "bias_act", label, [n, c](benchmark::State& st) {
        const auto x = random_device(n * c, 9), bias = random_device(c, 10);
        timed(st, [&] { cuda::bias_act(x.as<float>(), bias.as<float>(), n, c, true); });
        set_features(st, task_of(TaskKind::bias_act, n, c));
      });
      add(o, "act_backward", label, [n, c](benchmark::State& st) {
        const auto y = random_device(n * c, 11), g = random_device(n * c, 12);
        timed(st, [&] { cuda::relu_backward(y.as<float>(), g.as<float>(), n * c); });
        set_features(st, task_of(TaskKind::act_backward, n, c));
      });
      add(o, "bias_grad", label, [n, c](benchmark::State& st) {
        const auto g = random_device(n * c, 13);
        cuda::DeviceBuffer out(std::size_t(c) * 4);
        timed(st, [&] { cuda::column_sums(g.as<float>(), n, c, out.as<float>(), false); });
        set_features(st, task_of(TaskKind::bias_grad, n, c));
      });
      add(o, "dropout_backward", label, [n, c, bytes](benchmark::State& st) {
        const auto g = random_device(n * c, 14);
        std::vector<std::uint8_t> host_keep(std::size_t(n * c));
        std::mt19937_64 rng(15);  // a random mask, as training's
        for (auto& k : host_keep) k = std::uint8_t(rng() & 1);
        const auto keep = upload(host_keep);
        cuda::DeviceBuffer out(bytes);
        timed(st,
              [&] { cuda::dropout_backward(g.as<float>(), keep.as<std::uint8_t>(), 2.0f, n * c, out.as<float>()); });
        set_features(st, task_of(TaskKind::dropout_backward, n, c));
      });
    }
  // Loss: rows x classes logits, 5% of rows labelled for training (the executor's call waits for
  // its stream, so the sample includes that wait, as an epoch does).
  for (auto n : rows)
    for (std::int64_t c : {8, 40})
      add(o, "loss", dims({n, c}), [n, c](benchmark::State& st) {
        const auto logits = random_device(n * c, 15);
        std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
        std::vector<std::uint8_t> mask(static_cast<std::size_t>(n));
        for (std::int64_t r = 0; r < n; ++r)
          labels[std::size_t(r)] = std::int32_t(r % c), mask[std::size_t(r)] = r % 20 == 0;
        const auto dl = upload(labels), dm = upload(mask);
        cuda::DeviceBuffer grad(std::size_t(n * c) * 4);
        timed(st, [&] {
          benchmark::DoNotOptimize(cuda::softmax_cross_entropy(logits.as<float>(), n, c, dl.as<std::int32_t>(),
                                                               dm.as<std::uint8_t>(), double(n) / 20,
                                                               grad.as<float>()));
        });
        set_features(st, task_of(TaskKind::loss, n, c));
      });
  for (std::int64_t n : o.quick ? Grid{1 << 14, 1 << 22} : Grid{1 << 14, 1 << 17, 1 << 20, 1 << 22})
    add(o, "optimizer", std::to_string(n), [n](benchmark::State& st) {
      const auto w = random_device(n, 16), g = random_device(n, 17);
      cuda::DeviceBuffer m(std::size_t(n) * 8), v(std::size_t(n) * 8);
      cuda::fill_zero(m.get(), m.bytes());
      cuda::fill_zero(v.get(), v.bytes());
      const engine::AdamConfig config;
      long step = 0;
      timed(st,
            [&] { cuda::adam_step(w.as<float>(), g.as<float>(), m.as<double>(), v.as<double>(), n, config, ++step); });
      set_features(st, task_of(TaskKind::optimizer, n, 1));
    });
}

void register_codecs(const MicrobenchOptions& o) {
  const Grid rows = o.quick ? Grid{4096, 131072} : Grid{4096, 32768, 262144};
  const Grid cols = o.quick ? Grid{16, 256} : Grid{16, 64, 256};
  for (const scheduler::Width width : simulator::kCalibratedWidths)
    for (auto n : rows)
      for (auto c : cols) {
        const std::string label = dims({n, c});
        // Message rows scattered over a buffer of 2n rows (send lists, halo rows), as on the CPU.
        auto list = [n] {
          std::vector<std::int32_t> l(static_cast<std::size_t>(n));
          for (std::int64_t r = 0; r < n; ++r) l[std::size_t(r)] = std::int32_t((r * 7919) % (2 * n));
          return upload(l);
        };
        add(o, "pack" + std::to_string(width.element_bits()), label, [n, c, width, list](benchmark::State& st) {
          const auto x = random_device(2 * n * c, 18), rows_of = list(), ids = iota_ids(2 * n);
          cuda::DeviceBuffer out(std::size_t(scheduler::message_bytes(n, c, width)));
          std::int64_t epoch = 0;
          timed(st, [&] {
            cuda::encode_rows({x.as<float>(), c, rows_of.as<std::int32_t>(), 0, ids.as<std::int64_t>()}, n, c, width,
                              {1, ++epoch, 0, 0}, out.as<std::uint8_t>());
          });
          auto t = task_of(TaskKind::pack, n, c);
          t.width = width;
          set_features(st, t);
        });
        add(o, "unpack" + std::to_string(width.element_bits()), label, [n, c, width, list](benchmark::State& st) {
          const auto x = random_device(2 * n * c, 19), rows_of = list(), ids = iota_ids(2 * n);
          cuda::DeviceBuffer msg(std::size_t(scheduler::message_bytes(n, c, width))), y(std::size_t(2 * n * c) * 4);
          cuda::encode_rows({x.as<float>(), c, rows_of.as<std::int32_t>(), 0, ids.as<std::int64_t>()}, n, c, width,
                            {1, 1, 0, 0}, msg.as<std::uint8_t>());
          timed(st, [&] {
            cuda::decode_rows(msg.as<std::uint8_t>(), n, c, width,
                              {y.as<float>(), c, rows_of.as<std::int32_t>(), 0, false});
          });
          auto t = task_of(TaskKind::unpack, n, c);
          t.width = width;
          set_features(st, t);
        });
      }
}

}  // namespace

void register_cuda_microbenchmarks(const MicrobenchOptions& options) {
  const auto info = cuda::device_info();
  if (!info.available) throw Error("calibration backend 'cuda': no usable CUDA device (" + info.reason + ")");
  register_sparse(options);
  register_real_graphs(options);
  register_gemm(options);
  register_elementwise(options);
  register_codecs(options);
}

}  // namespace adaqp::bench
