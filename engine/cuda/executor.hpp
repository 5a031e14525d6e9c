// The GPU backend: executors of plans (scheduler/plan.hpp) on one CUDA device, the counterpart of
// the CPU's PlanExecutor (engine/executor.hpp), which is the reference it is tested against.
//
// What lives on the device for a whole run (made once per rank by the backend): parameter values
// and gradients (each kind in one contiguous allocation, in Model::params() order), Adam moments
// (double), the input features (dense, or CSR with a dropped copy of the same pattern, masked on the device),
// the aggregation operator and its transpose (CSR), labels and the training mask, the global ids
// of local rows (dropout masks and quantization keys), every send list, and the stale stores of
// pipelining. Every buffer a plan declares is device memory owned by its executor; message
// slots are device memory plus a pinned host copy (the staging area of the MPI transport).
//
// Streams: kernels run in list order on one compute stream; received messages go to the device
// on a second (comm) stream, and the compute stream waits for that copy through an event, so
// central rows computed while a message is in flight overlap the transfer. Sends leave once their
// pack has finished (the host waits for it, then posts the send).
//
// Times of a step (StepTimes): total_s is host wall time of the whole plan (the device is idle
// at its end); compute_s, quant_s and reduce_s are device time between CUDA events around each
// task; comm_s is host time blocked on the transport, which can overlap device compute.
//
// Devices: rank r of a host uses device r mod (devices visible), so several ranks may share one
// GPU (their messages then go through host memory and MPI).
#pragma once
#include "engine/executor.hpp"

namespace adaqp::engine::cuda {

// Adds "cuda" to the backends of engine::make_backend. Making it throws adaqp::Error (one line,
// the runtime's reason) when this process sees no usable CUDA device.
void register_backend();

}  // namespace adaqp::engine::cuda
