#include "simulator/calibration/microbench.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <string_view>

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
#include "simulator/calibration/corun.hpp"
#include "simulator/calibration/microbench_common.hpp"
#include "simulator/cost_model.hpp"

namespace adaqp::bench {

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

// One benchmarked call: its operands set up (owned by `call`), the call, and the task it is.
struct Case {
  std::function<void()> call;
  scheduler::Task task;
};
using MakeCase = std::function<Case()>;

int g_corun = 1;  // MicrobenchOptions::corun of the registered grid

// Every registered benchmark's case maker, in registration order (a co-run partner, which
// registers the same grid, finds a case by its index).
std::vector<MakeCase>& cases() {
  static std::vector<MakeCase> all;
  return all;
}
// Their names "calib/CLASS/LABEL", in the same order.
std::vector<std::string>& case_names() {
  static std::vector<std::string> all;
  return all;
}

// Registers one benchmark "calib/CLASS/LABEL": each Google Benchmark invocation makes the case
// (operands set up, not timed), starts the co-run partners on it, times `call` once per iteration
// and reports the case's task's features.
void add(const MicrobenchOptions& o, const std::string& cls, const std::string& label, MakeCase make) {
  if (!simulator::find_cost_class(cls)) throw std::logic_error("microbench: no cost class " + cls);
  const int threads = o.threads;
  const int index = int(cases().size());
  cases().push_back(std::move(make));
  case_names().push_back("calib/" + cls + "/" + label);
  benchmark::RegisterBenchmark(case_names().back().c_str(),
                               [threads, index](benchmark::State& st) {
                                 omp_set_num_threads(threads);
                                 engine::cpu::set_blas_threads(threads);
                                 Case c = cases()[std::size_t(index)]();
                                 auto* partners = corun::Partners::active();
                                 if (partners) partners->start(index);
                                 for (auto _ : st) {
                                   c.call();
                                   benchmark::ClobberMemory();
                                 }
                                 if (partners) partners->stop();
                                 set_features(st, c.task);
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

// The operands of an element-wise call over `elements` values that touches `bytes_per_element`
// bytes per value: two float arrays x, y (random) and a byte mask (ones), each in
// cold_copies(elements * bytes_per_element) copies; next() is the element offset of the next copy.
struct ColdOperands {
  ColdOperands(std::int64_t elements, std::int64_t bytes_per_element, std::uint64_t seed)
      : e(elements),
        copies(cold_copies(elements * bytes_per_element)),
        x(cold_values(elements, copies, seed)),
        y(cold_values(elements, copies, seed + 1)),
        mask(std::size_t(elements * copies), 1) {}
  std::int64_t next() { return (i++ % copies) * e; }
  std::int64_t e, copies, i = 0;
  std::vector<float> x, y;
  std::vector<std::uint8_t> mask;
};

// A sparse first-layer product on X (rows x F): X times a random F x c weight (spmm_features), or
// dW = X^T G as the executor computes it, a gather over X^T's rows (spmm_features_t; the transpose
// is made with the step's dropout, priced there).
Case sparse_times(graph::Csr x, std::int64_t c, scheduler::TaskKind kind) {
  auto a = std::make_shared<graph::Csr>();
  std::int64_t inner = x.num_cols;
  if (kind == scheduler::TaskKind::spmm_features_t) {
    graph::transpose_rows(x, x.num_rows, *a);
    inner = x.num_rows;
  } else {
    *a = std::move(x);
  }
  auto b = std::make_shared<const std::vector<float>>(random_values(a->num_cols * c, 21));
  auto out = std::make_shared<std::vector<float>>(std::size_t(a->num_rows * c));
  return Case{[a, b, out, c] { engine::cpu::spmm(*a, 0, a->num_rows, b->data(), c, out->data(), false); },
              task_of(kind, a->num_rows, c, inner, a->nnz())};
}

// The executor's sparse dropout step (p = 0.5) on X's rows (global ids `ids`), then the transpose
// dW gathers over.
Case sparse_dropout(std::shared_ptr<const graph::Csr> x, std::vector<std::int64_t> ids) {
  struct Out {
    graph::Csr d, xt;
    std::vector<std::uint8_t> kept;
    std::int64_t epoch = 0;
  };
  auto out = std::make_shared<Out>();
  auto t = task_of(scheduler::TaskKind::dropout, x->num_rows, x->num_cols, 0, x->nnz());
  t.dst = {scheduler::Operand::features, 1};
  t.dropout = 0.5;
  return Case{[x, ids = std::move(ids), out] {
                engine::dropout_sparse(*x, 0.5, {1, ++out->epoch}, 0, ids.data(), out->d, out->kept);
                graph::transpose_rows(out->d, x->num_rows, out->xt);
                benchmark::DoNotOptimize(out->xt.indices.data());
              },
              t};
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
      add(o, "spmm", dims({n, d, c}), [n, d, c] {
        auto a = std::make_shared<const graph::Csr>(random_csr(n, n, d, 1));
        auto b = std::make_shared<const std::vector<float>>(random_values(n * c, 2));
        auto out = std::make_shared<std::vector<float>>(std::size_t(n * c));
        return Case{[a, b, out, n, c] { engine::cpu::spmm(*a, 0, n, b->data(), c, out->data(), false); },
                    task_of(scheduler::TaskKind::spmm, n, c, n, a->nnz())};
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
          add(o, "spmm_features", label,
              [n, f, k, c] { return sparse_times(random_csr(n, f, k, 3), c, scheduler::TaskKind::spmm_features); });
          // dW = X^T G as the executor computes it: a gather over X^T's rows (the transpose is made
          // with the step's dropout, priced there)
          add(o, "spmm_features_t", label,
              [n, f, k, c] { return sparse_times(random_csr(n, f, k, 3), c, scheduler::TaskKind::spmm_features_t); });
          add(o, "dropout_sparse", label, [n, f, k] {
            std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
            std::iota(ids.begin(), ids.end(), 0);
            return sparse_dropout(std::make_shared<const graph::Csr>(random_csr(n, f, k, 3)), std::move(ids));
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
          add(o, "spmm", name + "/" + dims({P, transpose, c}), [name, P, transpose, c] {
            const auto& op = partition_operator(name, int(P));
            const graph::Csr* a = transpose ? &op.bwd : &op.fwd;  // cached for the process's life
            auto b = std::make_shared<const std::vector<float>>(random_values(a->num_cols * c, 20));
            auto out = std::make_shared<std::vector<float>>(std::size_t(a->num_rows * c));
            return Case{[a, b, out, c] { engine::cpu::spmm(*a, 0, a->num_rows, b->data(), c, out->data(), false); },
                        task_of(scheduler::TaskKind::spmm, a->num_rows, c, a->num_cols, a->nnz())};
          });
}

// The sparse first layer on real bag-of-words features, as training runs it: rank 0's inner rows of
// a METIS partition, whole or after the step's dropout (p = 0.5): X W, dW = X^T G as a gather over
// the transposed rows, and the dropout with that transpose. Their non-zeros per row vary (Amazon
// Photo: median 193, 90th percentile 588 of 745 columns), which uniform random rows lack: with only
// those, Amazon Computers' X W (267 non-zeros per row, beyond their grid) was priced 12-23% fast.
// Held-out datasets (Amazon Computers, Coauthor Physics) are not used.
void register_real_features(const MicrobenchOptions& o) {
  const std::vector<std::string> names =
      o.quick ? std::vector<std::string>{"cora", "amazon-photo"}
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
          add(o, "spmm_features", label, [name, P, dropped, c, input] {
            return sparse_times(input(name, int(P), dropped), c, scheduler::TaskKind::spmm_features);
          });
          add(o, "spmm_features_t", label, [name, P, dropped, c, input] {
            return sparse_times(input(name, int(P), dropped), c, scheduler::TaskKind::spmm_features_t);
          });
        }
      add(o, "dropout_sparse", name + "/" + std::to_string(P), [name, P] {
        const auto& s = partition_sample(name, int(P), true);
        return sparse_dropout(std::shared_ptr<const graph::Csr>(&*s.features, [](const graph::Csr*) {}),
                              s.part.inner_global);
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
          add(o, s.cls, dims({m, n, k}), [s, m, n, k] {
            auto a = std::make_shared<const std::vector<float>>(random_values(m * k, 6));
            auto b = std::make_shared<const std::vector<float>>(random_values(k * n, 7));
            auto out = std::make_shared<std::vector<float>>(std::size_t(m * n));
            auto t = task_of(scheduler::TaskKind::gemm, m, n, k);
            t.trans_a = s.ta;
            t.trans_b = s.tb;
            return Case{[s, m, n, k, a, b, out] {
                          engine::cpu::gemm(s.ta, s.tb, m, n, k, 1.0f, a->data(), s.ta ? m : k, b->data(), s.tb ? k : n,
                                            0.0f, out->data(), n);
                        },
                        t};
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
      add(o, "dropout", label, [n, c, e] {
        auto cold = std::make_shared<ColdOperands>(e, 9, 8);  // x, y, the mask
        std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
        std::iota(ids.begin(), ids.end(), 0);
        auto t = task_of(scheduler::TaskKind::dropout, n, c);
        t.dropout = 0.5;
        return Case{[cold, ids = std::move(ids), n, c, epoch = std::int64_t(0)]() mutable {
                      const std::int64_t at = cold->next();
                      engine::dropout_forward(cold->x.data() + at, cold->y.data() + at, cold->mask.data() + at, n, c,
                                              0.5, {1, ++epoch}, 0, ids.data());
                    },
                    t};
      });
      add(o, "copy", label, [n, c, e] {
        auto cold = std::make_shared<ColdOperands>(e, 8, 8);
        return Case{[cold, e] {
                      const std::int64_t at = cold->next();
                      std::memcpy(cold->y.data() + at, cold->x.data() + at, std::size_t(e) * sizeof(float));
                    },
                    task_of(scheduler::TaskKind::dropout, n, c)};
      });
      add(o, "bias_act", label, [n, c, e] {
        auto cold = std::make_shared<ColdOperands>(e, 4, 9);
        auto bias = std::make_shared<const std::vector<float>>(random_values(c, 10));
        return Case{[cold, bias, n, c, e] {
                      float* x = cold->x.data() + cold->next();
                      engine::cpu::add_bias(x, bias->data(), n, c);
                      engine::cpu::relu_forward(x, e);
                    },
                    task_of(scheduler::TaskKind::bias_act, n, c)};
      });
      add(o, "act_backward", label, [n, c, e] {
        auto cold = std::make_shared<ColdOperands>(e, 8, 11);  // y, g
        return Case{[cold, e] {
                      const std::int64_t at = cold->next();
                      engine::cpu::relu_backward(cold->x.data() + at, cold->y.data() + at, e);
                    },
                    task_of(scheduler::TaskKind::act_backward, n, c)};
      });
      add(o, "bias_grad", label, [n, c, e] {
        auto cold = std::make_shared<ColdOperands>(e, 4, 13);
        auto out = std::make_shared<std::vector<float>>(static_cast<std::size_t>(c));
        return Case{
            [cold, out, n, c] { engine::cpu::column_sums(cold->x.data() + cold->next(), n, c, out->data(), false); },
            task_of(scheduler::TaskKind::bias_grad, n, c)};
      });
      add(o, "dropout_backward", label, [n, c, e] {
        auto cold = std::make_shared<ColdOperands>(e, 9, 14);  // g, the mask, out
        // A random mask, as training's (a regular pattern would hide a branchy kernel's mispredictions).
        std::mt19937_64 rng(15);
        for (auto& b : cold->mask) b = std::uint8_t(rng() & 1);
        return Case{[cold, e] {
                      const std::int64_t at = cold->next();
                      engine::cpu::dropout_backward(cold->x.data() + at, cold->mask.data() + at, 2.0f, e,
                                                    cold->y.data() + at);
                    },
                    task_of(scheduler::TaskKind::dropout_backward, n, c)};
      });
    }
  // Loss: rows x classes logits, 5% of rows labelled for training.
  for (auto n : rows)
    for (std::int64_t c : {8, 40}) {
      add(o, "loss", dims({n, c}), [n, c] {
        auto cold = std::make_shared<ColdOperands>(n * c, 8, 15);  // logits, their gradient
        auto labels = std::make_shared<std::vector<std::int32_t>>(static_cast<std::size_t>(n));
        auto mask = std::make_shared<std::vector<std::uint8_t>>(static_cast<std::size_t>(n));
        for (std::int64_t r = 0; r < n; ++r)
          (*labels)[std::size_t(r)] = std::int32_t(r % c), (*mask)[std::size_t(r)] = r % 20 == 0;
        return Case{[cold, labels, mask, n, c] {
                      const std::int64_t at = cold->next();
                      benchmark::DoNotOptimize(engine::softmax_cross_entropy<float>(
                          engine::MatrixView<const float>(n, c, cold->x.data() + at), *labels, *mask, double(n) / 20,
                          engine::MatrixView<float>(n, c, cold->y.data() + at)));
                    },
                    task_of(scheduler::TaskKind::loss, n, c)};
      });
    }
  // Adam over one parameter of n elements.
  for (std::int64_t n : o.quick ? Grid{1 << 14, 1 << 20} : Grid{1 << 14, 1 << 17, 1 << 20, 1 << 22}) {
    add(o, "optimizer", std::to_string(n), [n] {
      struct State {  // Adam keeps a pointer to the parameter: both on the heap, never moved
        engine::Param<float> p;
        std::unique_ptr<engine::Adam<float>> adam;
      };
      auto st = std::make_shared<State>();
      st->p.value.resize(n, 1);
      st->p.grad.resize(n, 1);
      st->p.value.data = random_values(n, 16);
      st->p.grad.data = random_values(n, 17);
      st->adam =
          std::make_unique<engine::Adam<float>>(engine::AdamConfig{}, std::vector<engine::Param<float>*>{&st->p});
      return Case{[st] { st->adam->step(); }, task_of(scheduler::TaskKind::optimizer, n, 1)};
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
        struct Rows {
          std::vector<std::int32_t> list;
          std::vector<std::int64_t> ids;
        };
        auto scattered = [n] {
          auto r = std::make_shared<Rows>();
          r->list.resize(static_cast<std::size_t>(n));
          for (std::int64_t i = 0; i < n; ++i) r->list[std::size_t(i)] = std::int32_t((i * 7919) % (2 * n));
          r->ids.resize(std::size_t(2 * n));
          std::iota(r->ids.begin(), r->ids.end(), 0);
          return r;
        };
        add(o, "pack" + std::to_string(width.element_bits()), label, [n, c, width, scattered] {
          auto r = scattered();
          const std::int64_t in = 2 * n * c, bytes = scheduler::message_bytes(n, c, width);
          const std::int64_t k = cold_copies(4 * in + bytes);
          auto x = std::make_shared<const std::vector<float>>(cold_values(in, k, 18));
          auto out = std::make_shared<std::vector<std::uint8_t>>(std::size_t(bytes * k));
          auto t = task_of(scheduler::TaskKind::pack, n, c);
          t.width = width;
          return Case{[r, x, out, n, c, width, in, bytes, k, epoch = std::int64_t(0)]() mutable {
                        const std::int64_t i = epoch % k;
                        engine::encode_rows({x->data() + i * in, c, r->list.data(), 0, r->ids.data()}, n, c, width,
                                            {1, ++epoch, 0, 0}, out->data() + i * bytes);
                      },
                      t};
        });
        add(o, "unpack" + std::to_string(width.element_bits()), label, [n, c, width, scattered] {
          auto r = scattered();
          const std::int64_t out = 2 * n * c, bytes = scheduler::message_bytes(n, c, width);
          const std::int64_t k = cold_copies(4 * out + bytes);
          const auto x = random_values(out, 19);
          auto msg = std::make_shared<std::vector<std::uint8_t>>(std::size_t(bytes * k));
          engine::encode_rows({x.data(), c, r->list.data(), 0, r->ids.data()}, n, c, width, {1, 1, 0, 0}, msg->data());
          for (std::int64_t i = 1; i < k; ++i) std::copy_n(msg->begin(), bytes, msg->begin() + i * bytes);
          auto y = std::make_shared<std::vector<float>>(std::size_t(out * k));
          auto t = task_of(scheduler::TaskKind::unpack, n, c);
          t.width = width;
          return Case{[r, msg, y, n, c, width, out, bytes, k, j = std::int64_t(0)]() mutable {
                        const std::int64_t i = j++ % k;
                        engine::decode_rows(msg->data() + i * bytes, n, c, width,
                                            {y->data() + i * out, c, r->list.data(), 0, false});
                      },
                      t};
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
      seconds[r.run_name.function_name] = s.seconds;
      if (progress_) progress_(fmt::format("{:<48} {:>12.1f} us", name, 1e6 * s.seconds));
    }
  }
  std::map<std::string, std::vector<simulator::Sample>> samples;
  std::map<std::string, double> seconds;  // by benchmark name

 private:
  void (*progress_)(const std::string&);
};

}  // namespace

void register_microbenchmarks(const MicrobenchOptions& options) {
  if (options.threads < 1) throw Error("calibration threads " + std::to_string(options.threads) + ": must be >= 1");
  if (options.corun < 1) throw Error("calibration corun " + std::to_string(options.corun) + ": must be >= 1");
  if (options.backend == "cuda") {
    if (options.corun != 1) throw Error("calibration corun " + std::to_string(options.corun) + ": CPU benchmarks only");
    return register_cuda_microbenchmarks(options);
  }
  cold_bytes = options.quick ? 0 : kColdBytes;
  g_corun = options.corun;
  if (options.backend != "cpu") throw Error("calibration backend '" + options.backend + "': allowed cpu, cuda");
  register_sparse(options);
  register_real_graphs(options);
  register_real_features(options);
  register_gemm(options);
  register_elementwise(options);
  register_codecs(options);
}

std::vector<std::string> probe_names(const std::map<std::string, double>& seconds) {
  std::map<std::string, std::vector<std::pair<double, std::string>>> by_class;  // (seconds, name)
  for (const auto& [name, s] : seconds) {
    const auto a = name.find('/'), b = name.find('/', a + 1);
    // Synthetic operands only: a real graph's case loads and partitions its dataset first.
    if (b + 1 < name.size() && std::isdigit(static_cast<unsigned char>(name[b + 1])))
      by_class[name.substr(a + 1, b - a - 1)].push_back({s, name});
  }
  std::vector<std::string> out;
  for (auto& [cls, timed] : by_class) {
    std::sort(timed.begin(), timed.end());
    const bool heavy = cls.rfind("spmm", 0) == 0 || cls.rfind("gemm", 0) == 0;
    const std::vector<double> quantiles = heavy ? std::vector<double>{0.5, 0.75, 0.9} : std::vector<double>{0.75};
    std::vector<std::string> picked;
    for (double q : quantiles) {
      const auto& name = timed[std::size_t(q * double(timed.size() - 1) + 0.5)].second;
      if (std::find(picked.begin(), picked.end(), name) == picked.end()) picked.push_back(name);
    }
    out.insert(out.end(), picked.begin(), picked.end());
  }
  return out;
}

Timings run_microbenchmarks(void (*progress)(const std::string&), const std::vector<std::string>& partner,
                            const std::vector<std::string>& only) {
  // Google Benchmark's filter is a regular expression over the run names ("NAME/min_time:...").
  std::string filter = "^calib/";
  if (!only.empty()) {
    filter = "^(";
    for (std::size_t i = 0; i < only.size(); ++i) {
      if (std::find(case_names().begin(), case_names().end(), only[i]) == case_names().end())
        throw Error("calibration benchmark " + only[i] + " is not in this grid (calibrate the profile again)");
      if (i) filter += "|";
      for (char ch : only[i]) {
        if (std::string_view(".[]{}()*+?^$|\\").find(ch) != std::string_view::npos) filter += '\\';
        filter += ch;
      }
    }
    filter += ")/";
  }
  std::unique_ptr<corun::Partners> partners;
  if (g_corun > 1) partners = std::make_unique<corun::Partners>(g_corun - 1, partner);
  Collector collector(progress);
  benchmark::RunSpecifiedBenchmarks(&collector, filter);
  if (partners && progress)
    progress(fmt::format("co-run: {} partner process(es) made {} calls while the benchmarks ran", g_corun - 1,
                         partners->calls()));
  for (const auto& name : only)
    if (!collector.seconds.count(name)) throw Error("calibration benchmark " + name + " did not run");
  return {std::move(collector.samples), std::move(collector.seconds)};
}

int run_corun_partner(const MicrobenchOptions& options, const std::string& spec) {
  register_microbenchmarks(options);
  const int threads = options.threads;
  return corun::follow(spec, [threads](int index) {
    if (index < 0 || std::size_t(index) >= cases().size())
      throw Error("co-run partner: no benchmark case " + std::to_string(index) + " (the leader's grid differs)");
    omp_set_num_threads(threads);
    engine::cpu::set_blas_threads(threads);
    return cases()[std::size_t(index)]().call;
  });
}

}  // namespace adaqp::bench
