// Inputs and bookkeeping shared by the CPU (microbench.cpp) and GPU (microbench_cuda.cpp)
// calibration microbenchmarks, so both time the same shapes and report the same features.
#pragma once
#include <benchmark/benchmark.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "engine/model.hpp"
#include "graph/csr.hpp"
#include "scheduler/plan.hpp"

namespace adaqp::bench {

using Grid = std::vector<std::int64_t>;

// rows x cols CSR with about per_row distinct random columns per row, values 1 / degree.
graph::Csr random_csr(std::int64_t rows, std::int64_t cols, std::int64_t per_row, std::uint64_t seed);
// n values uniform in [-1, 1), seeded.
std::vector<float> random_values(std::int64_t n, std::uint64_t seed);
// The task one benchmarked call is (sizes only).
scheduler::Task task_of(scheduler::TaskKind kind, std::int64_t rows, std::int64_t cols, std::int64_t inner = 0,
                        std::int64_t nnz = 0);
// The features of the call, computed by the simulator's own definition (simulator::task_features)
// and reported as user counters f0, f1, ...
void set_features(benchmark::State& st, const scheduler::Task& t);
// The GEMM patterns of a training step (cost classes gemm_nn, gemm_tn, gemm_nt): X W, X^T G,
// G W^T. gemm_mnk gives a pattern's m, n, k for `rows` rows, a width f and a width c:
// nn m = rows, k = f, n = c;  tn m = f, k = rows, n = c;  nt m = rows, k = c, n = f.
struct GemmPattern {
  const char* cls;
  bool ta, tb;
};
inline constexpr GemmPattern kGemmPatterns[] = {
    {"gemm_nn", false, false}, {"gemm_tn", true, false}, {"gemm_nt", false, true}};
struct Mnk {
  std::int64_t m, n, k;
};
inline Mnk gemm_mnk(const GemmPattern& s, std::int64_t rows, std::int64_t f, std::int64_t c) {
  return {s.ta ? f : rows, s.tb ? f : c, s.ta ? rows : (s.tb ? c : f)};
}
// "AxBxC" labels of benchmark names.
std::string dims(std::initializer_list<std::int64_t> v);
// Rank 0's GCN operator of a METIS partition of a shipped dataset into `parts` (cached).
const engine::Aggregation& partition_operator(const std::string& dataset, int parts);

}  // namespace adaqp::bench
