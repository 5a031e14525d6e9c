#include "simulator/calibration/microbench.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <numeric>
#include <random>

#include "base/error.hpp"
#include "engine/codec.hpp"
#include "engine/cpu/blas.hpp"
#include "engine/cpu/kernels.hpp"
#include "engine/loss.hpp"
#include "engine/model.hpp"
#include "engine/optimizer.hpp"
#include "engine/trainer.hpp"
#include "graph/dataset.hpp"
#include "graph/partition.hpp"
#include "scheduler/wire_format.hpp"
#include "simulator/calibration/microbench_common.hpp"
#include "simulator/cost_model.hpp"

namespace adaqp::bench {

using engine::Matrix;

graph::Csr random_csr(std::int64_t rows, std::int64_t cols, std::int64_t per_row, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> col(0, cols - 1);
  graph::Csr a;
  a.num_rows = rows;
  a.num_cols = cols;
  a.offsets.assign(std::size_t(rows + 1), 0);
  std::vector<graph::NodeId> row;
  for (std::int64_t r = 0; r < rows; ++r) {
    row.clear();
    for (std::int64_t k = 0; k < per_row; ++k) row.push_back(graph::NodeId(col(rng)));
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    for (auto c : row) {
      a.indices.push_back(c);
      a.values.push_back(1.0f / float(row.size()));
    }
    a.offsets[std::size_t(r + 1)] = std::int64_t(a.indices.size());
  }
  return a;
}

std::vector<float> random_values(std::int64_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = u(rng);
  return v;
}

void set_features(benchmark::State& st, const scheduler::Task& t) {
  const auto [cls, f] = simulator::task_features(t);
  for (std::size_t i = 0; i < f.size(); ++i) st.counters["f" + std::to_string(i)] = f[i];
}

scheduler::Task task_of(scheduler::TaskKind kind, std::int64_t rows, std::int64_t cols, std::int64_t inner,
                        std::int64_t nnz) {
  scheduler::Task t;
  t.kind = kind;
  t.rows = rows;
  t.cols = cols;
  t.inner = inner;
  t.nnz = nnz;
  return t;
}

std::string dims(std::initializer_list<std::int64_t> v) {
  std::string s;
  for (auto x : v) s += (s.empty() ? "" : "x") + std::to_string(x);
  return s;
}

namespace {

// Rank 0 of a METIS partition of a shipped dataset into `parts`, with its GCN operator and (when
// asked for) its inner rows' input features as CSR.
struct PartitionSample {
  graph::LocalPartition part;
  engine::Aggregation op;
  std::optional<graph::Csr> features;
};

PartitionSample& partition_sample(const std::string& dataset, int parts, bool features) {
  static std::map<std::pair<std::string, int>, PartitionSample> cache;
  auto it = cache.find({dataset, parts});
  if (it == cache.end()) {
    graph::LoadOptions lo;
    lo.features = false;
    const auto d = graph::load_dataset(dataset, lo);
    const auto owner = graph::partition_graph(d.adj, parts, graph::PartitionMethod::metis_cut, 0);
    auto part = graph::build_partitions(d.adj, owner, parts)[0];
    auto op = engine::make_aggregation(engine::ModelKind::gcn, part, graph::column_degrees(part, d.adj));
    it = cache.emplace(std::pair{dataset, parts}, PartitionSample{std::move(part), std::move(op), {}}).first;
  }
  PartitionSample& s = it->second;
  if (features && !s.features) {
    const auto d = graph::load_dataset(dataset);
    s.features = engine::make_features<float>(d.features.data(), d.num_features, s.part.inner_global, 1.0).sparse;
  }
  return s;
}

}  // namespace

const engine::Aggregation& partition_operator(const std::string& dataset, int parts) {
  return partition_sample(dataset, parts, false).op;
}

namespace {

// Registers one benchmark "calib/CLASS/LABEL"; fn(state) times one call per iteration and sets
// the features.
template <class F>
void add(const MicrobenchOptions& o, const std::string& cls, const std::string& label, F fn) {
  if (!simulator::find_cost_class(cls)) throw std::logic_error("microbench: no cost class " + cls);
  const int threads = o.threads;
  benchmark::RegisterBenchmark(("calib/" + cls + "/" + label).c_str(),
                               [threads, fn](benchmark::State& st) {
                                 omp_set_num_threads(threads);
                                 engine::cpu::set_blas_threads(threads);
                                 fn(st);
                               })
      ->UseRealTime()
      ->MinTime(o.min_time_s)
      ->Unit(benchmark::kMicrosecond);
}

// In training an element-wise task or a codec reads operands that the tasks before it (and the
// other ranks of the host) have pushed out of the caches; timed on one operand reused call after
// call, which then stays in cache, these classes were priced 25-60% fast on a 2-rank AMD EPYC host
// (2026-12-07, trace_compare). So their benchmarks cycle through copies of their operands, at
// least kColdBytes in all (twice that host's 32 MiB L3), one copy per call. The quick grid (tests)
// reuses one copy: it checks the plumbing, not the figures.
constexpr std::int64_t kColdBytes = std::int64_t(64) << 20;
std::int64_t cold_bytes = kColdBytes;  // 0 for the quick grid (register_microbenchmarks)

// Copies of operands that one call touches `bytes` of.
std::int64_t cold_copies(std::int64_t bytes) {
  return std::max<std::int64_t>(1, (cold_bytes + bytes - 1) / std::max<std::int64_t>(bytes, 1));
}

// `copies` copies of random_values(n, seed), end to end.
std::vector<float> cold_values(std::int64_t n, std::int64_t copies, std::uint64_t seed) {
  const auto one = random_values(n, seed);
  std::vector<float> v(std::size_t(n * copies));
  for (std::int64_t i = 0; i < copies; ++i) std::copy(one.begin(), one.end(), v.begin() + i * n);
  return v;
}

// The graph operator's SpMM is timed mostly on real graphs (register_real_graphs): their rows
// share neighbours, so much of the gathered operand stays in cache, which a matrix of uniformly
// random columns lacks; fitted with random matrices of 2,048-65,536 rows (as until 2026-12-07),
// Amazon Computers' operators were priced 16-23% too slow per nonzero and column. Random matrices
// remain only at 65,536 rows (operands of 4-64 MiB): the memory level, which the real graphs here
// (largest operand 19 MB) do not reach; without them Coauthor Physics' SpMM was priced 10% fast.
void register_sparse(const MicrobenchOptions& o) {
  const std::int64_t n = o.quick ? 16384 : 65536;
  for (std::int64_t d : {4, 16, 48})
    for (std::int64_t c : {16, 64, 256})
      add(o, "spmm", dims({n, d, c}), [n, d, c](benchmark::State& st) {
        const auto a = random_csr(n, n, d, 1);
        const auto b = random_values(n * c, 2);
        std::vector<float> out(std::size_t(n * c));
        for (auto _ : st) {
          engine::cpu::spmm(a, 0, n, b.data(), c, out.data(), false);
          benchmark::ClobberMemory();
        }
        set_features(st, task_of(scheduler::TaskKind::spmm, n, c, n, a.nnz()));
      });
  // Sparse input features (rows x in, per_row nonzeros) times / transposed against a weight.
  const Grid xrows = o.quick ? Grid{4096} : Grid{4096, 16384};
  const Grid in = o.quick ? Grid{1000, 4000} : Grid{1000, 8000};
  const Grid per_row = o.quick ? Grid{16, 64} : Grid{16, 128};
  const Grid out = o.quick ? Grid{16, 128} : Grid{16, 256};
  for (auto n : xrows)
    for (auto f : in)
      for (auto k : per_row)
        for (auto c : out) {
          const std::string label = dims({n, f, k, c});
          add(o, "spmm_features", label, [n, f, k, c](benchmark::State& st) {
            const auto x = random_csr(n, f, k, 3);
            const auto w = random_values(f * c, 4);
            std::vector<float> y(std::size_t(n * c));
            for (auto _ : st) {
              engine::cpu::spmm(x, 0, n, w.data(), c, y.data(), false);
              benchmark::ClobberMemory();
            }
            set_features(st, task_of(scheduler::TaskKind::spmm_features, n, c, f, x.nnz()));
          });
          add(o, "spmm_features_t", label, [n, f, k, c](benchmark::State& st) {
            // dW = X^T G as the executor computes it: a gather over X^T's rows (the transpose is
            // made with the step's dropout, priced there)
            const auto xt = graph::transpose(random_csr(n, f, k, 3));
            const auto g = random_values(n * c, 5);
            std::vector<float> grad(std::size_t(f * c));
            for (auto _ : st) {
              engine::cpu::spmm(xt, 0, f, g.data(), c, grad.data(), false);
              benchmark::ClobberMemory();
            }
            set_features(st, task_of(scheduler::TaskKind::spmm_features_t, f, c, n, xt.nnz()));
          });
          add(o, "dropout_sparse", label, [n, f, k](benchmark::State& st) {
            const auto x = random_csr(n, f, k, 3);
            std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
            std::iota(ids.begin(), ids.end(), 0);
            std::int64_t epoch = 0;
            graph::Csr d, xt;
            std::vector<std::uint8_t> kept;
            for (auto _ : st) {  // the executor's step: dropout, then the transpose dW gathers over
              engine::dropout_sparse(x, 0.5, {1, ++epoch}, 0, ids.data(), d, kept);
              graph::transpose_rows(d, n, xt);
              benchmark::DoNotOptimize(xt.indices.data());
            }
            auto t = task_of(scheduler::TaskKind::dropout, n, f, 0, x.nnz());
            t.dst = {scheduler::Operand::features, 1};
            t.dropout = 0.5;
            set_features(st, t);
          });
        }
}

// SpMM on real graphs' GCN operators, as training runs them: rank 0's local matrix of a METIS
// partition (forward: inner rows x local rows; backward: its transpose). Only datasets the simulator's accuracy table
// does not use (Amazon Computers, Coauthor Physics are held out).
void register_real_graphs(const MicrobenchOptions& o) {
  const std::vector<std::string> names =
      o.quick ? std::vector<std::string>{"cora", "citeseer"}
              : std::vector<std::string>{"cora", "citeseer", "amazon-photo", "coauthor-cs", "tolokers"};
  const Grid parts = o.quick ? Grid{1, 2} : Grid{1, 2, 4};
  // Widths as training runs them: class counts with a scalar tail (10, 40), hidden widths that
  // are whole vectors (16, 64) and more than one pass of the kernel (256).
  const Grid cols = o.quick ? Grid{10, 16, 128} : Grid{10, 16, 40, 64, 256};
  for (const auto& name : names)
    for (auto P : parts)
      for (int transpose : {0, 1})
        for (auto c : cols)
          add(o, "spmm", name + "/" + dims({P, transpose, c}), [name, P, transpose, c](benchmark::State& st) {
            const auto& op = partition_operator(name, int(P));
            const graph::Csr& a = transpose ? op.bwd : op.fwd;
            const auto b = random_values(a.num_cols * c, 20);
            std::vector<float> out(std::size_t(a.num_rows * c));
            for (auto _ : st) {
              engine::cpu::spmm(a, 0, a.num_rows, b.data(), c, out.data(), false);
              benchmark::ClobberMemory();
            }
            set_features(st, task_of(scheduler::TaskKind::spmm, a.num_rows, c, a.num_cols, a.nnz()));
          });
}

// The sparse first layer on real bag-of-words features, as training runs it: rank 0's inner rows of
// a METIS partition, whole or after the step's dropout (p = 0.5): X W, dW = X^T G as a gather over
// the transposed rows, and the dropout with that transpose. Their non-zeros per row vary (Amazon
// Photo: median 193, 90th percentile 588 of 745 columns), which uniform random rows lack: with only
// those, Amazon Computers' X W (267 non-zeros per row, beyond their grid) was priced 12-23% fast.
// Held-out datasets (Amazon Computers, Coauthor Physics) are not used.
void register_real_features(const MicrobenchOptions& o) {
  const std::vector<std::string> names = o.quick ? std::vector<std::string>{"cora", "amazon-photo"}
                                                 : std::vector<std::string>{"cora", "citeseer", "amazon-photo", "coauthor-cs"};
  const Grid parts = o.quick ? Grid{2} : Grid{1, 2};
  const Grid cols = o.quick ? Grid{16, 256} : Grid{16, 64, 256};
  // X (whole, or its rows after dropout p = 0.5) of rank 0 of `parts`.
  auto input = [](const std::string& name, int parts, bool dropped) {
    const auto& s = partition_sample(name, parts, true);
    if (!dropped) return *s.features;
    graph::Csr d;
    std::vector<std::uint8_t> kept;
    engine::dropout_sparse(*s.features, 0.5, {1, 1}, 0, s.part.inner_global.data(), d, kept);
    return d;
  };
  for (const auto& name : names)
    for (auto P : parts) {
      for (int dropped : {0, 1})
        for (auto c : cols) {
          const std::string label = name + "/" + dims({P, dropped, c});
          add(o, "spmm_features", label, [name, P, dropped, c, input](benchmark::State& st) {
            const graph::Csr x = input(name, int(P), dropped);
            const auto w = random_values(x.num_cols * c, 21);
            std::vector<float> y(std::size_t(x.num_rows * c));
            for (auto _ : st) {
              engine::cpu::spmm(x, 0, x.num_rows, w.data(), c, y.data(), false);
              benchmark::ClobberMemory();
            }
            set_features(st, task_of(scheduler::TaskKind::spmm_features, x.num_rows, c, x.num_cols, x.nnz()));
          });
          add(o, "spmm_features_t", label, [name, P, dropped, c, input](benchmark::State& st) {
            const graph::Csr x = input(name, int(P), dropped);
            graph::Csr xt;
            graph::transpose_rows(x, x.num_rows, xt);
            const auto g = random_values(x.num_rows * c, 22);
            std::vector<float> grad(std::size_t(xt.num_rows * c));
            for (auto _ : st) {
              engine::cpu::spmm(xt, 0, xt.num_rows, g.data(), c, grad.data(), false);
              benchmark::ClobberMemory();
            }
            set_features(st, task_of(scheduler::TaskKind::spmm_features_t, xt.num_rows, c, x.num_rows, xt.nnz()));
          });
        }
      add(o, "dropout_sparse", name + "/" + std::to_string(P), [name, P](benchmark::State& st) {
        const auto& s = partition_sample(name, int(P), true);
        const graph::Csr& x = *s.features;
        std::int64_t epoch = 0;
        graph::Csr d, xt;
        std::vector<std::uint8_t> kept;
        for (auto _ : st) {  // the executor's step: dropout, then the transpose dW gathers over
          engine::dropout_sparse(x, 0.5, {1, ++epoch}, 0, s.part.inner_global.data(), d, kept);
          graph::transpose_rows(d, x.num_rows, xt);
          benchmark::DoNotOptimize(xt.indices.data());
        }
        auto t = task_of(scheduler::TaskKind::dropout, x.num_rows, x.num_cols, 0, x.nnz());
        t.dst = {scheduler::Operand::features, 1};
        t.dropout = 0.5;
        set_features(st, t);
      });
    }
}

void register_gemm(const MicrobenchOptions& o) {
  // (trans_a, trans_b) patterns of the training step: X W (nn), X^T G (tn), G W^T (nt).
  const Grid big = o.quick ? Grid{2048, 8192} : Grid{2048, 16384};
  const Grid mid = o.quick ? Grid{64, 512} : Grid{64, 256, 1024};
  const Grid small = o.quick ? Grid{16, 128} : Grid{16, 64, 256};
  for (const GemmPattern& s : kGemmPatterns)
    for (auto rows : big)
      for (auto f : mid)
        for (auto c : small) {
          const Mnk d = gemm_mnk(s, rows, f, c);
          const std::int64_t m = d.m, n = d.n, k = d.k;
          add(o, s.cls, dims({m, n, k}), [s, m, n, k](benchmark::State& st) {
            const auto a = random_values(m * k, 6);
            const auto b = random_values(k * n, 7);
            std::vector<float> out(std::size_t(m * n));
            const std::int64_t lda = s.ta ? m : k, ldb = s.tb ? k : n;
            for (auto _ : st) {
              engine::cpu::gemm(s.ta, s.tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, out.data(), n);
              benchmark::ClobberMemory();
            }
            auto t = task_of(scheduler::TaskKind::gemm, m, n, k);
            t.trans_a = s.ta;
            t.trans_b = s.tb;
            set_features(st, t);
          });
        }
}

void register_elementwise(const MicrobenchOptions& o) {
  const Grid rows = o.quick ? Grid{1024, 4096} : Grid{4096, 32768};
  const Grid cols = o.quick ? Grid{16, 64, 512} : Grid{16, 256, 1024};
  for (auto n : rows)
    for (auto c : cols) {
      const std::string label = dims({n, c});
      const std::int64_t e = n * c;
      add(o, "dropout", label, [n, c, e](benchmark::State& st) {
        const std::int64_t k = cold_copies(e * 9);  // x, y, the mask
        const auto x = cold_values(e, k, 8);
        std::vector<float> y(x.size());
        std::vector<std::uint8_t> keep(x.size());
        std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
        std::iota(ids.begin(), ids.end(), 0);
        std::int64_t epoch = 0;
        for (auto _ : st) {
          const std::int64_t at = (epoch % k) * e;
          engine::dropout_forward(x.data() + at, y.data() + at, keep.data() + at, n, c, 0.5, {1, ++epoch}, 0,
                                  ids.data());
          benchmark::ClobberMemory();
        }
        auto t = task_of(scheduler::TaskKind::dropout, n, c);
        t.dropout = 0.5;
        set_features(st, t);
      });
      add(o, "copy", label, [n, c, e](benchmark::State& st) {
        const std::int64_t k = cold_copies(e * 8);
        const auto x = cold_values(e, k, 8);
        std::vector<float> y(x.size());
        std::int64_t i = 0;
        for (auto _ : st) {
          const std::int64_t at = (i++ % k) * e;
          std::memcpy(y.data() + at, x.data() + at, std::size_t(e) * sizeof(float));
          benchmark::ClobberMemory();
        }
        set_features(st, task_of(scheduler::TaskKind::dropout, n, c));
      });
      add(o, "bias_act", label, [n, c, e](benchmark::State& st) {
        const std::int64_t k = cold_copies(e * 4);
        auto x = cold_values(e, k, 9);
        const auto bias = random_values(c, 10);
        std::int64_t i = 0;
        for (auto _ : st) {
          float* at = x.data() + (i++ % k) * e;
          engine::cpu::add_bias(at, bias.data(), n, c);
          engine::cpu::relu_forward(at, e);
          benchmark::ClobberMemory();
        }
        set_features(st, task_of(scheduler::TaskKind::bias_act, n, c));
      });
      add(o, "act_backward", label, [n, c, e](benchmark::State& st) {
        const std::int64_t k = cold_copies(e * 8);
        const auto y = cold_values(e, k, 11);
        auto g = cold_values(e, k, 12);
        std::int64_t i = 0;
        for (auto _ : st) {
          const std::int64_t at = (i++ % k) * e;
          engine::cpu::relu_backward(y.data() + at, g.data() + at, e);
          benchmark::ClobberMemory();
        }
        set_features(st, task_of(scheduler::TaskKind::act_backward, n, c));
      });
      add(o, "bias_grad", label, [n, c, e](benchmark::State& st) {
        const std::int64_t k = cold_copies(e * 4);
        const auto g = cold_values(e, k, 13);
        std::vector<float> out(static_cast<std::size_t>(c));
        std::int64_t i = 0;
        for (auto _ : st) {
          engine::cpu::column_sums(g.data() + (i++ % k) * e, n, c, out.data(), false);
          benchmark::ClobberMemory();
        }
        set_features(st, task_of(scheduler::TaskKind::bias_grad, n, c));
      });
      add(o, "dropout_backward", label, [n, c, e](benchmark::State& st) {
        const std::int64_t k = cold_copies(e * 9);  // g, the mask, out
        const auto g = cold_values(e, k, 14);
        std::vector<std::uint8_t> keep(g.size());
        // A random mask, as training's (a regular pattern would hide a branchy kernel's mispredictions).
        std::mt19937_64 rng(15);
        for (auto& b : keep) b = std::uint8_t(rng() & 1);
        std::vector<float> out(g.size());
        std::int64_t i = 0;
        for (auto _ : st) {
          const std::int64_t at = (i++ % k) * e;
          engine::cpu::dropout_backward(g.data() + at, keep.data() + at, 2.0f, e, out.data() + at);
          benchmark::ClobberMemory();
        }
        set_features(st, task_of(scheduler::TaskKind::dropout_backward, n, c));
      });
    }
  // Loss: rows x classes logits, 5% of rows labelled for training.
  for (auto n : rows)
    for (std::int64_t c : {8, 40}) {
      add(o, "loss", dims({n, c}), [n, c](benchmark::State& st) {
        const std::int64_t k = cold_copies(8 * n * c);
        const auto all = cold_values(n * c, k, 15);
        std::vector<float> grads(all.size());
        std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
        std::vector<std::uint8_t> mask(static_cast<std::size_t>(n));
        for (std::int64_t r = 0; r < n; ++r)
          labels[std::size_t(r)] = std::int32_t(r % c), mask[std::size_t(r)] = r % 20 == 0;
        std::int64_t i = 0;
        for (auto _ : st) {
          const std::int64_t at = (i++ % k) * n * c;
          const engine::MatrixView<const float> z(n, c, all.data() + at);
          benchmark::DoNotOptimize(engine::softmax_cross_entropy<float>(z, labels, mask, double(n) / 20,
                                                                        engine::MatrixView<float>(n, c, grads.data() + at)));
          benchmark::ClobberMemory();
        }
        set_features(st, task_of(scheduler::TaskKind::loss, n, c));
      });
    }
  // Adam over one parameter of n elements.
  for (std::int64_t n : o.quick ? Grid{1 << 14, 1 << 20} : Grid{1 << 14, 1 << 17, 1 << 20, 1 << 22}) {
    add(o, "optimizer", std::to_string(n), [n](benchmark::State& st) {
      engine::Param<float> p;
      p.value.resize(n, 1);
      p.grad.resize(n, 1);
      p.value.data = random_values(n, 16);
      p.grad.data = random_values(n, 17);
      engine::Adam<float> adam({}, {&p});
      for (auto _ : st) {
        adam.step();
        benchmark::ClobberMemory();
      }
      set_features(st, task_of(scheduler::TaskKind::optimizer, n, 1));
    });
  }
}

void register_codecs(const MicrobenchOptions& o) {
  // 100 rows: one group of an adaptive layout (the assigner's default group size), one pack call
  // each; without calls that small the per-call constant was extrapolated (about 55 us, where
  // the engine's 100-row calls cost far less: adaptive quant_s predicted 88% high).
  const Grid rows = o.quick ? Grid{1024, 8192} : Grid{100, 1024, 8192, 32768};
  const Grid cols = o.quick ? Grid{16, 256} : Grid{16, 64, 256};
  for (const scheduler::Width width : simulator::kCalibratedWidths)
    for (auto n : rows)
      for (auto c : cols) {
        const std::string label = dims({n, c});
        // Message rows are scattered over a buffer of 2n rows (send lists, halo rows).
        auto setup = [n](std::vector<std::int32_t>& list, std::vector<std::int64_t>& ids) {
          list.resize(static_cast<std::size_t>(n));
          for (std::int64_t r = 0; r < n; ++r) list[std::size_t(r)] = std::int32_t((r * 7919) % (2 * n));
          ids.resize(std::size_t(2 * n));
          std::iota(ids.begin(), ids.end(), 0);
        };
        add(o, "pack" + std::to_string(width.element_bits()), label, [n, c, width, setup](benchmark::State& st) {
          std::vector<std::int32_t> list;
          std::vector<std::int64_t> ids;
          setup(list, ids);
          const std::int64_t in = 2 * n * c, bytes = scheduler::message_bytes(n, c, width);
          const std::int64_t k = cold_copies(4 * in + bytes);
          const auto x = cold_values(in, k, 18);
          std::vector<std::uint8_t> out(std::size_t(bytes * k));
          std::int64_t epoch = 0;
          for (auto _ : st) {
            const std::int64_t i = epoch % k;
            engine::encode_rows({x.data() + i * in, c, list.data(), 0, ids.data()}, n, c, width, {1, ++epoch, 0, 0},
                                out.data() + i * bytes);
            benchmark::ClobberMemory();
          }
          auto t = task_of(scheduler::TaskKind::pack, n, c);
          t.width = width;
          set_features(st, t);
        });
        add(o, "unpack" + std::to_string(width.element_bits()), label, [n, c, width, setup](benchmark::State& st) {
          std::vector<std::int32_t> list;
          std::vector<std::int64_t> ids;
          setup(list, ids);
          const std::int64_t out = 2 * n * c, bytes = scheduler::message_bytes(n, c, width);
          const std::int64_t k = cold_copies(4 * out + bytes);
          const auto x = random_values(out, 19);
          std::vector<std::uint8_t> msg(std::size_t(bytes * k));
          engine::encode_rows({x.data(), c, list.data(), 0, ids.data()}, n, c, width, {1, 1, 0, 0}, msg.data());
          for (std::int64_t i = 1; i < k; ++i) std::copy_n(msg.begin(), bytes, msg.begin() + i * bytes);
          std::vector<float> y(std::size_t(out * k));
          std::int64_t j = 0;
          for (auto _ : st) {
            const std::int64_t i = j++ % k;
            engine::decode_rows(msg.data() + i * bytes, n, c, width, {y.data() + i * out, c, list.data(), 0, false});
            benchmark::ClobberMemory();
          }
          auto t = task_of(scheduler::TaskKind::unpack, n, c);
          t.width = width;
          set_features(st, t);
        });
      }
}

class Collector : public benchmark::BenchmarkReporter {
 public:
  explicit Collector(void (*progress)(const std::string&)) : progress_(progress) {}
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      const std::string name = r.benchmark_name();
      if (r.error_occurred) throw Error("calibration benchmark " + name + " failed: " + r.error_message);
      if (r.run_type != Run::RT_Iteration || name.rfind("calib/", 0) != 0 || r.iterations == 0) continue;
      const auto slash = name.find('/', 6);
      const std::string cls = name.substr(6, slash - 6);
      simulator::Sample s;
      s.seconds = r.real_accumulated_time / double(r.iterations);
      for (int i = 0;; ++i) {
        const auto it = r.counters.find("f" + std::to_string(i));
        if (it == r.counters.end()) break;
        s.features.push_back(it->second.value);
      }
      samples[cls].push_back(s);
      if (progress_) progress_(fmt::format("{:<48} {:>12.1f} us", name, 1e6 * s.seconds));
    }
  }
  std::map<std::string, std::vector<simulator::Sample>> samples;

 private:
  void (*progress_)(const std::string&);
};

}  // namespace

void register_microbenchmarks(const MicrobenchOptions& options) {
  if (options.threads < 1) throw Error("calibration threads " + std::to_string(options.threads) + ": must be >= 1");
  if (options.backend == "cuda") return register_cuda_microbenchmarks(options);
  cold_bytes = options.quick ? 0 : kColdBytes;
  if (options.backend != "cpu") throw Error("calibration backend '" + options.backend + "': allowed cpu, cuda");
  register_sparse(options);
  register_real_graphs(options);
  register_real_features(options);
  register_gemm(options);
  register_elementwise(options);
  register_codecs(options);
}

std::map<std::string, std::vector<simulator::Sample>> run_microbenchmarks(void (*progress)(const std::string&)) {
  Collector collector(progress);
  benchmark::RunSpecifiedBenchmarks(&collector);
  return std::move(collector.samples);
}

}  // namespace adaqp::bench
