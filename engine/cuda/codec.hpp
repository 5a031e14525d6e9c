// GPU message codecs: the wire format of scheduler/wire_format.hpp and the random stream of
// engine/codec.hpp, bit for bit, so CPU and GPU ranks interoperate and every GPU message equals
// the CPU reference's (tests/cuda). All data pointers are device pointers; `stream` is a
// cudaStream_t (null: the default stream). Rows are as in engine/codec.hpp: source row r is
// src.data + index(r) * src.ld with index(r) = src.list ? src.list[r] : src.first + r (the list and
// global_ids arrays in device memory too).
//
// Kernels: one thread block per message row (any feature width: threads stride over the row),
// min / max / finiteness by a block reduction, then each thread codes groups of 4 consecutive
// columns, the group that one 64-bit hash draws the 4 rounding offsets for, and writes their packed
// bytes (8 bits: 4 bytes, 4 bits: 2, 2 bits: 1), so no two threads share an output byte.
// Compiled without fused multiply-add (--fmad=false), as the CPU codecs are (-ffp-contract=off).
#pragma once
#include <cstdint>

#include "engine/codec.hpp"

namespace adaqp::engine::cuda {

// Encodes into out (scheduler::message_bytes(rows, cols, width) device bytes). Waits for the stream
// and throws adaqp::Error, with the CPU codec's message, on a NaN / infinite / out-of-range value.
void encode_rows(const RowSource& src, std::int64_t rows, std::int64_t cols, scheduler::Width width,
                 const QuantKey& key, std::uint8_t* out, void* stream = nullptr);
// Decodes into dst (overwrite or add); asynchronous on the stream.
void decode_rows(const std::uint8_t* in, std::int64_t rows, std::int64_t cols, scheduler::Width width,
                 const RowTarget& dst, void* stream = nullptr);

}  // namespace adaqp::engine::cuda
