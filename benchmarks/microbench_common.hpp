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
// "AxBxC" labels of benchmark names.
std::string dims(std::initializer_list<std::int64_t> v);
// Rank 0's GCN operator of a METIS partition of a shipped dataset into `parts` (cached).
const engine::Aggregation& partition_operator(const std::string& dataset, int parts);

}  // namespace adaqp::bench
