// Compute cost model: each compute task of a plan belongs to one cost class, whose time is a
// linear function of the task's size fields (scheduler/plan.hpp), with coefficients from a
// calibration profile (simulator/profile.hpp). The classes and their features are defined here
// once; the microbenchmarks (simulator/calibration/microbench.hpp) produce samples of the same features.
//
// clang-format off
// | class | tasks | features (units) |
// |---|---|---|
// | gemm_nn, gemm_tn, gemm_nt | gemm without / with transposed A / with transposed B | calls, m·n·k (multiply-adds), m·n + m·k + n·k (elements touched) |
// | spmm | spmm (forward matrix or its transpose) | calls, rows·cols, nnz, nnz·cols split over the operand's working set (inner·cols·4 bytes) |
// | spmm_features | spmm_features (sparse X times W) | calls, rows·cols, nnz, nnz·cols split over W's working set |
// | spmm_features_t | spmm_features_t (X^T times G, a gather over rows of X^T) | calls, rows·cols, nnz, nnz·cols split over G's working set (inner·cols·4 bytes) |
// | dropout | dense dropout | calls, elements split over the working set (8 bytes each) |
// | dropout_sparse | dropout of sparse input features, then (training) the transpose dW gathers over | calls, nnz |
// | copy | dropout with p = 0 (evaluation input copy) | calls, elements split |
// | bias_act, act_backward, bias_grad, dropout_backward | same name | calls, elements split |
// | pack{32,16,8,4,2,1}, unpack{32,16,8,4,2,1} | pack / unpack at that width | calls, elements split |
// | loss | loss | calls, elements (rows·classes) |
// | optimizer | optimizer | calls, parameter elements |
// clang-format on
//
// A sparse product's nnz term is its per-nonzero cost whatever the width (index and value loads,
// loop overhead); without it a fit charges that cost to narrow products' nnz·cols, which then
// over-prices wide ones (Amazon Computers' X·W by 27% on an AMD EPYC host).
//
// "Split over the working set": a count x becomes three features x·w_cached, x·w_l3, x·w_memory
// with the weights of working_set_weights (the same work costs more once its data leaves the
// caches); each gets its own coefficient.
//
// Send / receive posting costs Profile::post_s; the all-reduce is a network operation
// (simulator/network.hpp).
#pragma once
#include <array>
#include <string>
#include <vector>

#include "scheduler/plan.hpp"
#include "simulator/profile.hpp"

namespace adaqp::simulator {

struct CostClass {
  std::string name;
  std::vector<std::string> features;
};

const std::vector<CostClass>& cost_classes();
const CostClass* find_cost_class(const std::string& name);  // null when unknown
const CostClass& cost_class(const std::string& name);       // throws adaqp::Error when unknown

// Weights (summing to 1) of a working set of `bytes` on three levels: cached (<= 256 KiB), L3
// (4 MiB) and memory (>= 64 MiB), linear in log2(bytes) between neighbouring levels.
std::array<double, 3> working_set_weights(double bytes);

// Compute seconds of one task: 0 for send / recv / allreduce (see network.hpp). A pack / unpack
// with a mixed layout is the sum of its groups (each group one call of its width's class).
// Throws adaqp::Error naming the class when the profile lacks it.
double compute_seconds(const scheduler::Task& t, const Profile& profile);

// The class and features of a task with one width (not mixed): {name, features}. Empty name for
// tasks that are not compute (send, recv, allreduce).
std::pair<std::string, std::vector<double>> task_features(const scheduler::Task& t);
// The widths whose pack / unpack costs a profile holds, as classes "pack32", "pack16", "pack8",
// "pack4", "pack2" (by element bits: bf16 messages are costed as fp16's, same bytes and work).
inline constexpr scheduler::Width kCalibratedWidths[] = {scheduler::Width::fp32(),   scheduler::Width::fp16(),
                                                         scheduler::Width::quant(8), scheduler::Width::quant(4),
                                                         scheduler::Width::quant(2), scheduler::Width::quant(1)};

}  // namespace adaqp::simulator
