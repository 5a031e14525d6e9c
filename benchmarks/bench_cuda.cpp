// GPU kernel throughput (Google Benchmark, manual time from CUDA events), next to the device's
// copy bandwidth measured the same way:
//   encode/W, decode/W   quantize+pack and unpack+dequantize of 100k message rows at width W;
//   spmm/DATASET/IMPL    the GCN operator of a whole graph (two shipped ones, and a 300k-node
//                        SBM with 14M directed edges whose dense operands outgrow the L2 cache)
//                        times a dense block (and its transpose), by cuSPARSE and by the
//                        row-group kernel (engine/cuda/kernels.hpp: SpmmImpl; the engine takes
//                        the faster per product);
//   gemm/SHAPE           the GCN 3 x 256 layer products on Amazon Computers' row count: X W (nn),
//                        X^T G (tn), G W^T (nt), cuBLAS fp32.
// Counters: GB/s = bytes that must move at least (each operand read once, the result written
// once: for SpMM the CSR arrays, the dense operand and the result; for GEMM the three matrices;
// for codecs the rows read and the message written, or the reverse) / time; copy_fraction = that
// over the device-to-device copy's GB/s (the codec target of issue 8 is >= 0.6); GFLOP/s = 2
// multiply-adds per non-zero and column (SpMM) or 2 m n k (GEMM) / time.
// Without a usable device it prints why and exits 0.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <numeric>
#include <vector>

#include "base/random.hpp"
#include "engine/cuda/codec.hpp"
#include "engine/cuda/device.hpp"
#include "engine/cuda/kernels.hpp"
#include "scheduler/wire_format.hpp"
#include "simulator/calibration/microbench_common.hpp"

using namespace adaqp;
using namespace adaqp::engine;

namespace {
constexpr std::int64_t kRows = 100000;

double g_copy_gbps = 0;

struct Data {
  std::int64_t cols;
  cuda::DeviceBuffer x, ids, msg, y;
  explicit Data(std::int64_t c) : cols(c) {
    std::vector<float> hx(static_cast<std::size_t>(kRows * c));
    CounterRng rng(7);
    for (auto& v : hx) v = float(rng.normal());
    std::vector<std::int64_t> hid(static_cast<std::size_t>(kRows));
    std::iota(hid.begin(), hid.end(), 0);
    x = cuda::DeviceBuffer(hx.size() * 4);
    cuda::copy_to_device(x.get(), hx.data(), hx.size() * 4);
    ids = cuda::DeviceBuffer(hid.size() * 8);
    cuda::copy_to_device(ids.get(), hid.data(), hid.size() * 8);
    msg = cuda::DeviceBuffer(std::size_t(scheduler::message_bytes(kRows, c, scheduler::Width::fp32())));
    y = cuda::DeviceBuffer(hx.size() * 4);
  }
};

void BM_copy(benchmark::State& st) {
  const std::size_t bytes = std::size_t(kRows) * std::size_t(st.range(0)) * 4;
  cuda::DeviceBuffer a(bytes), b(bytes);
  cuda::EventTimer t;
  for (auto _ : st) {
    t.start();
    cuda::copy_on_device(b.get(), a.get(), bytes);
    st.SetIterationTime(t.stop());
  }
  st.counters["GB/s"] = benchmark::Counter(double(2 * bytes), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_codec(benchmark::State& st, bool encode) {
  const std::int64_t cols = st.range(0);
  const auto bits = scheduler::Width::from_code(int(st.range(1)));  // Args carry the width's code
  Data d(cols);
  const RowSource src{d.x.as<float>(), cols, nullptr, 0, d.ids.as<std::int64_t>()};
  const RowTarget dst{d.y.as<float>(), cols, nullptr, 0, false};
  cuda::encode_rows(src, kRows, cols, bits, {1, 1, 0, 0}, d.msg.as<std::uint8_t>());
  cuda::EventTimer t;
  double seconds = 0;
  for (auto _ : st) {
    t.start();
    if (encode)
      cuda::encode_rows(src, kRows, cols, bits, {1, 1, 0, 0}, d.msg.as<std::uint8_t>());
    else
      cuda::decode_rows(d.msg.as<std::uint8_t>(), kRows, cols, bits, dst);
    const double s = t.stop();
    seconds += s;
    st.SetIterationTime(s);
  }
  const double bytes = double(kRows * cols * 4 + scheduler::message_bytes(kRows, cols, bits));
  st.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
  if (g_copy_gbps > 0 && seconds > 0)
    st.counters["copy_fraction"] = bytes * double(st.iterations()) / seconds / 1e9 / g_copy_gbps;
}
// Sets GB/s, copy_fraction and GFLOP/s from the bytes and flops of one call.
void set_rates(benchmark::State& st, double bytes, double flops, double seconds) {
  st.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["GFLOP/s"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  if (g_copy_gbps > 0 && seconds > 0)
    st.counters["copy_fraction"] = bytes * double(st.iterations()) / seconds / 1e9 / g_copy_gbps;
}

void BM_spmm(benchmark::State& st, const std::string& dataset, bool transpose, cuda::SpmmImpl impl) {
  const std::int64_t cols = st.range(0);
  cuda::set_spmm_impl(impl);
  const auto& op = bench::partition_operator(dataset, 1);
  const graph::Csr& host = transpose ? op.bwd : op.fwd;
  cuda::DeviceCsr a(host);
  const auto hb = bench::random_values(host.num_cols * cols, 3);
  cuda::DeviceBuffer b(hb.size() * 4), c(std::size_t(host.num_rows * cols) * 4);
  cuda::copy_to_device(b.get(), hb.data(), hb.size() * 4);
  cuda::Handles h;
  cuda::spmm(h, a, 0, host.num_rows, b.as<float>(), cols, c.as<float>(), false);  // workspace, row blocks
  cuda::EventTimer t;
  double seconds = 0;
  for (auto _ : st) {
    t.start();
    cuda::spmm(h, a, 0, host.num_rows, b.as<float>(), cols, c.as<float>(), false);
    const double s = t.stop();
    seconds += s;
    st.SetIterationTime(s);
  }
  const double nnz = double(host.nnz());
  const double bytes =
      4.0 * (double(host.num_rows + 1) + 2 * nnz) + 4.0 * double(cols) * double(host.num_cols + host.num_rows);
  set_rates(st, bytes, 2.0 * nnz * double(cols), seconds);
}

void BM_gemm(benchmark::State& st, bool ta, bool tb) {
  const std::int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  const auto ha = bench::random_values(m * k, 4), hb = bench::random_values(k * n, 5);
  cuda::DeviceBuffer a(ha.size() * 4), b(hb.size() * 4), c(std::size_t(m * n) * 4);
  cuda::copy_to_device(a.get(), ha.data(), ha.size() * 4);
  cuda::copy_to_device(b.get(), hb.data(), hb.size() * 4);
  const std::int64_t lda = ta ? m : k, ldb = tb ? k : n;
  cuda::Handles h;
  auto call = [&] {
    cuda::gemm(h, ta, tb, m, n, k, 1.0f, a.as<float>(), lda, b.as<float>(), ldb, 0.0f, c.as<float>(), n);
  };
  call();
  cuda::EventTimer t;
  double seconds = 0;
  for (auto _ : st) {
    t.start();
    call();
    const double s = t.stop();
    seconds += s;
    st.SetIterationTime(s);
  }
  set_rates(st, 4.0 * double(m * k + k * n + m * n), 2.0 * double(m) * double(n) * double(k), seconds);
}
}  // namespace

int main(int argc, char** argv) {
  const auto info = cuda::device_info();
  if (!info.available) {
    std::printf("bench_cuda: skipped: no usable CUDA device (%s)\n", info.reason.c_str());
    return 0;
  }
  {  // the reference bandwidth first
    const std::size_t bytes = std::size_t(kRows) * 256 * 4;
    cuda::DeviceBuffer a(bytes), b(bytes);
    cuda::EventTimer t;
    cuda::copy_on_device(b.get(), a.get(), bytes);
    double best = 1e30;
    for (int i = 0; i < 20; ++i) {
      t.start();
      cuda::copy_on_device(b.get(), a.get(), bytes);
      best = std::min(best, t.stop());
    }
    g_copy_gbps = 2.0 * double(bytes) / best / 1e9;
    std::printf("%s: device copy %.0f GB/s (read + write)\n", info.name.c_str(), g_copy_gbps);
  }
  benchmark::RegisterBenchmark("copy", BM_copy)->Arg(256)->UseManualTime();
  for (bool enc : {true, false})
    for (scheduler::Width bits : {scheduler::Width::quant(2), scheduler::Width::quant(4), scheduler::Width::quant(8),
                                  scheduler::Width::fp16(), scheduler::Width::bf16(), scheduler::Width::fp32()})
      for (int cols : {64, 256, 1024})
        benchmark::RegisterBenchmark(((enc ? "encode/" : "decode/") + scheduler::width_name(bits)).c_str(),
                                     [enc](benchmark::State& st) { BM_codec(st, enc); })
            ->Args({cols, bits.code()})
            ->UseManualTime();
  for (const std::string d : {"amazon-computers", "coauthor-physics", "sbm:nodes=300000,classes=16,degree=48,seed=1"})
    for (bool transpose : {false, true})
      for (auto impl : {cuda::SpmmImpl::cusparse, cuda::SpmmImpl::row_groups})
        benchmark::RegisterBenchmark(
            ("spmm/" + d + "/" + cuda::spmm_impl_name(impl) + (transpose ? "/transposed" : "")).c_str(),
            [d, transpose, impl](benchmark::State& st) { BM_spmm(st, d, transpose, impl); })
            ->Arg(16)
            ->Arg(64)
            ->Arg(256)
            ->UseManualTime();
  // Amazon Computers: 13,752 rows, 767 features, hidden 256.
  benchmark::RegisterBenchmark("gemm/nn", [](benchmark::State& st) { BM_gemm(st, false, false); })
      ->Args({13752, 256, 767})
      ->Args({13752, 256, 256})
      ->UseManualTime();
  benchmark::RegisterBenchmark("gemm/tn", [](benchmark::State& st) { BM_gemm(st, true, false); })
      ->Args({767, 256, 13752})
      ->Args({256, 256, 13752})
      ->UseManualTime();
  benchmark::RegisterBenchmark("gemm/nt", [](benchmark::State& st) { BM_gemm(st, false, true); })
      ->Args({13752, 256, 256})
      ->UseManualTime();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
