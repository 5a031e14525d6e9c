// GPU codecs against the CPU reference (ctest label `cuda`): the same bytes for the same rows and
// random stream at every width, through row lists, any feature width; decoding (overwrite and add)
// equal to the CPU's; non-finite input reported with the CPU's message. Without a usable CUDA
// device the program prints why and exits 77, which ctest reports as skipped.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>

#include "base/error.hpp"
#include "base/random.hpp"
#include "engine/codec.hpp"
#include "engine/cuda/codec.hpp"
#include "engine/cuda/device.hpp"
#include "scheduler/wire_format.hpp"

using namespace adaqp;
using namespace adaqp::engine;

namespace {
template <class T>
cuda::DeviceBuffer upload(const std::vector<T>& v) {
  cuda::DeviceBuffer b(v.size() * sizeof(T));
  cuda::copy_to_device(b.get(), v.data(), v.size() * sizeof(T));
  return b;
}
template <class T>
std::vector<T> download(const cuda::DeviceBuffer& b, std::size_t n) {
  std::vector<T> v(n);
  cuda::copy_to_host(v.data(), b.get(), n * sizeof(T));
  return v;
}
}  // namespace

TEST_CASE("GPU encode equals the CPU reference byte for byte", "[cuda][codec]") {
  using scheduler::Width;
  for (Width bits : {Width::quant(1), Width::quant(2), Width::quant(4), Width::quant(8), Width::fp16(), Width::bf16(),
                     Width::fp32()})
    for (std::int64_t cols : {1, 3, 4, 5, 17, 64, 255, 256, 1000, 4099}) {
      CAPTURE(bits, cols);
      const std::int64_t rows = 97, src_rows = 150;
      CounterRng rng(std::uint64_t(cols) * 31 + std::uint64_t(bits.code() + 100));
      std::vector<float> x(std::size_t(src_rows * cols));
      for (auto& v : x) v = float(rng.normal() * 2.0 - 0.5);
      for (std::int64_t j = 0; j < cols; ++j) x[std::size_t(7 * cols + j)] = 1.25f;  // a constant row
      std::vector<std::int32_t> list(static_cast<std::size_t>(rows));
      for (std::int64_t r = 0; r < rows; ++r) list[std::size_t(r)] = std::int32_t((r * 37) % src_rows);
      list[3] = 7;
      std::vector<std::int64_t> ids(static_cast<std::size_t>(src_rows));
      std::iota(ids.begin(), ids.end(), 5000);
      const QuantKey key{9, 4, 2, 1};
      const auto bytes = std::size_t(scheduler::message_bytes(rows, cols, bits));
      std::vector<std::uint8_t> cpu(bytes);
      reference::encode_rows({x.data(), cols, list.data(), 0, ids.data()}, rows, cols, bits, key, cpu.data());
      auto dx = upload(x);
      auto dlist = upload(list);
      auto dids = upload(ids);
      cuda::DeviceBuffer dout(bytes);
      cuda::encode_rows({dx.as<float>(), cols, dlist.as<std::int32_t>(), 0, dids.as<std::int64_t>()}, rows, cols, bits,
                        key, dout.as<std::uint8_t>());
      REQUIRE(download<std::uint8_t>(dout, bytes) == cpu);
      // Decoding the CPU's message on the GPU, overwrite and add through a row list.
      std::vector<float> y(std::size_t(src_rows * cols), 0.5f), y_cpu = y;
      reference::decode_rows(cpu.data(), rows, cols, bits, {y_cpu.data(), cols, list.data(), 0, true});
      auto dy = upload(y);
      auto din = upload(cpu);
      cuda::decode_rows(din.as<std::uint8_t>(), rows, cols, bits,
                        {dy.as<float>(), cols, dlist.as<std::int32_t>(), 0, true});
      cuda::synchronize();
      const auto y_gpu = download<float>(dy, y.size());
      REQUIRE(std::memcmp(y_gpu.data(), y_cpu.data(), y.size() * sizeof(float)) == 0);
    }
}

TEST_CASE("GPU encode reports non-finite input like the CPU", "[cuda][codec]") {
  std::vector<float> x = {1.0f, 2.0f, NAN, 4.0f, 5.0f, 6.0f};
  std::vector<std::int64_t> ids = {40, 41};
  auto dx = upload(x);
  auto dids = upload(ids);
  cuda::DeviceBuffer out(std::size_t(scheduler::message_bytes(2, 3, scheduler::Width::quant(4))));
  CHECK_THROWS_WITH(cuda::encode_rows({dx.as<float>(), 3, nullptr, 0, dids.as<std::int64_t>()}, 2, 3,
                                      scheduler::Width::quant(4), {1, 1, 0, 0}, out.as<std::uint8_t>()),
                    Catch::Contains("node 40, column 2"));
}

int main(int argc, char** argv) {
  const auto info = cuda::device_info();
  if (!info.available && info.no_device) {
    std::printf("skipped: no device (%s)\n", info.reason.c_str());
    return 77;
  }
  if (!info.available) {  // a device that cannot be used is a failure, not a skip
    std::printf("CUDA device unusable: %s\n", info.reason.c_str());
    return 1;
  }
  std::printf("CUDA device: %s (sm_%d%d, %d SMs, %.1f GiB)\n", info.name.c_str(), info.major, info.minor, info.sm_count,
              info.memory_gib);
  return Catch::Session().run(argc, argv);
}
