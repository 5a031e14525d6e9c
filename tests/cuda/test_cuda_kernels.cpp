// GPU kernels against the CPU reference kernels on the same inputs (ctest label `cuda`).
// Tolerances: element-wise kernels and dropout masks exact; GEMM, SpMM and column sums (another
// summation order) within 1e-5 relative to the largest |value| of the result; loss (device exp /
// log) and Adam (FMA contraction on the CPU) within 1e-6.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>

#include "base/random.hpp"
#include "engine/cpu/blas.hpp"
#include "engine/cpu/kernels.hpp"
#include "engine/cuda/device.hpp"
#include "engine/cuda/kernels.hpp"
#include "engine/loss.hpp"
#include "engine/optimizer.hpp"
#include "graph/dataset.hpp"

using namespace adaqp;
using namespace adaqp::engine;

namespace {
std::vector<float> random_vector(std::size_t n, std::uint64_t seed) {
  CounterRng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = float(rng.normal());
  return v;
}
cuda::DeviceBuffer upload(const std::vector<float>& v) {
  cuda::DeviceBuffer b(v.size() * 4);
  cuda::copy_to_device(b.get(), v.data(), v.size() * 4);
  return b;
}
std::vector<float> download(const cuda::DeviceBuffer& b, std::size_t n) {
  std::vector<float> v(n);
  cuda::synchronize();
  cuda::copy_to_host(v.data(), b.get(), n * 4);
  return v;
}
double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double scale = 1e-30, d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, double(std::fabs(a[i])));
    d = std::max(d, double(std::fabs(a[i] - b[i])));
  }
  return d / scale;
}
}  // namespace

TEST_CASE("cuBLAS GEMM equals the CPU GEMM, every transpose", "[cuda][kernels]") {
  cuda::Handles h;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta, tb);
      const std::int64_t m = 300, n = 70, k = 129;
      const auto a = random_vector(std::size_t(m * k), 1), b = random_vector(std::size_t(k * n), 2);
      auto c = random_vector(std::size_t(m * n), 3);
      auto expected = c;
      const std::int64_t lda = ta ? m : k, ldb = tb ? k : n;
      cpu::gemm(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.5f, expected.data(), n);
      auto da = upload(a), db = upload(b), dc = upload(c);
      cuda::gemm(h, ta, tb, m, n, k, 1.0f, da.as<float>(), lda, db.as<float>(), ldb, 0.5f, dc.as<float>(), n);
      CHECK(max_rel_diff(expected, download(dc, c.size())) < 1e-5);
    }
}

TEST_CASE("SpMM (cuSPARSE, row groups, the faster) equals the CPU SpMM on row blocks and transposed",
          "[cuda][kernels]") {
  auto g = graph::load_dataset("sbm:nodes=2000,classes=4,degree=12,seed=3,features=8").adj;
  g.values.resize(g.indices.size());
  for (std::size_t i = 0; i < g.values.size(); ++i) g.values[i] = 0.1f + float(i % 7) * 0.05f;
  // Widths: every row-group shape (1, 2, 4, ... 32 lanes; 1, 2, 4, 8 chunks per lane; column
  // tiles) with 16-byte chunks (multiples of 4) and single floats (3, 1030).
  for (auto impl : {cuda::SpmmImpl::cusparse, cuda::SpmmImpl::row_groups, cuda::SpmmImpl::fastest}) {
    cuda::set_spmm_impl(impl);
    cuda::Handles h;
    cuda::DeviceCsr dg(g), dt(g, true);
    for (std::int64_t cols : {1, 3, 8, 16, 64, 100, 256, 512, 1000, 1030, 4100}) {
      CAPTURE(cuda::spmm_impl_name(impl), cols);
      const auto b = random_vector(std::size_t(g.num_cols * cols), 5);
      const auto c0 = random_vector(std::size_t(g.num_rows * cols), 6);
      auto db = upload(b);
      for (auto [lo, hi] : {std::pair<std::int64_t, std::int64_t>{0, 2000}, {0, 777}, {777, 2000}})
        for (bool acc : {false, true}) {
          CAPTURE(lo, hi, acc);
          auto expected = c0;
          cpu::spmm(g, lo, hi, b.data(), cols, expected.data(), acc);
          auto dc = upload(c0);
          cuda::spmm(h, dg, lo, hi, db.as<float>(), cols, dc.as<float>(), acc);
          CHECK(max_rel_diff(expected, download(dc, c0.size())) < 1e-5);
        }
      {  // B one float off 16-byte alignment: single-float chunks at any width
        std::vector<float> shifted(b.size() + 1, 7.0f);
        std::copy(b.begin(), b.end(), shifted.begin() + 1);
        auto ds = upload(shifted);
        auto expected = c0;
        cpu::spmm(g, 0, 2000, b.data(), cols, expected.data(), true);
        auto dc = upload(c0);
        cuda::spmm(h, dg, 0, 2000, ds.as<float>() + 1, cols, dc.as<float>(), true);
        CHECK(max_rel_diff(expected, download(dc, c0.size())) < 1e-5);
      }
      auto expected = c0;
      cpu::spmm_transposed(g, b.data(), cols, expected.data(), true);
      for (cuda::DeviceCsr* m : {&dg, &dt}) {  // cuSPARSE's transposed product, then the kept transpose
        CAPTURE(m == &dt);
        auto dc = upload(c0);
        cuda::spmm_transposed(h, *m, db.as<float>(), cols, dc.as<float>(), true);
        CHECK(max_rel_diff(expected, download(dc, c0.size())) < 1e-5);
      }
      for (std::int64_t prefix : {std::int64_t(0), std::int64_t(777)}) {  // the first rows only
        CAPTURE(prefix);
        auto want = c0;
        cpu::spmm_transposed(g, b.data(), cols, want.data(), false, prefix);
        auto dp = upload(c0);
        cuda::spmm_transposed(h, dt, db.as<float>(), cols, dp.as<float>(), false, prefix);
        CHECK(max_rel_diff(want, download(dp, c0.size())) < 1e-5);
      }
      // Output row blocks in order (a weight gradient made in blocks): with the kept transpose each
      // call makes its rows; with cuSPARSE's product the first call makes them all. Either way the
      // blocks together are the whole product, for all rows and for a prefix.
      for (std::int64_t prefix : {std::int64_t(-1), std::int64_t(777)})
        for (cuda::DeviceCsr* m : {&dg, &dt}) {
          CAPTURE(prefix, m == &dt);
          auto want = c0;
          cpu::spmm_transposed(g, b.data(), cols, want.data(), false, prefix);
          auto dp = upload(c0);
          const std::int64_t cuts[] = {0, 1, 500, g.num_cols};
          for (int k = 0; k < 3; ++k)
            cuda::spmm_transposed(h, *m, db.as<float>(), cols, dp.as<float>(), false, prefix, cuts[k], cuts[k + 1]);
          CHECK(max_rel_diff(want, download(dp, c0.size())) < 1e-5);
        }
    }
  }
  cuda::set_spmm_impl(cuda::SpmmImpl::fastest);
}

TEST_CASE("a kept transpose follows writes to the values", "[cuda][kernels]") {
  auto g = graph::load_dataset("sbm:nodes=500,classes=3,degree=8,seed=4,features=4").adj;
  g.values.assign(g.indices.size(), 1.0f);
  cuda::Handles h;
  cuda::DeviceCsr dt(g, true);
  const std::int64_t cols = 20;
  const auto b = random_vector(std::size_t(g.num_rows * cols), 7);
  auto db = upload(b);
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    // New values on the host and through mutable_values(), as sparse dropout writes them.
    for (std::size_t i = 0; i < g.values.size(); ++i)
      g.values[i] = float((i * 13 + std::size_t(round) * 5) % 11) - 5.0f;
    cuda::copy_to_device(dt.mutable_values(), g.values.data(), g.values.size() * 4);
    std::vector<float> expected(std::size_t(g.num_cols * cols));
    cpu::spmm_transposed(g, b.data(), cols, expected.data(), false);
    cuda::DeviceBuffer dc(expected.size() * 4);
    cuda::spmm_transposed(h, dt, db.as<float>(), cols, dc.as<float>(), false);
    CHECK(max_rel_diff(expected, download(dc, expected.size())) < 1e-5);
  }
}

TEST_CASE("element-wise kernels and dropout equal the CPU's", "[cuda][kernels]") {
  const std::int64_t rows = 513, cols = 37, n = rows * cols;
  const auto x = random_vector(std::size_t(n), 8), bias = random_vector(std::size_t(cols), 9);
  {
    auto y = x;
    cpu::relu_forward(y.data(), n);
    auto d = upload(x);
    cuda::relu_forward(d.as<float>(), n);
    CHECK(download(d, x.size()) == y);
    auto g = random_vector(std::size_t(n), 10), g_cpu = g;
    cpu::relu_backward(y.data(), g_cpu.data(), n);
    auto dy = upload(y), dg = upload(g);
    cuda::relu_backward(dy.as<float>(), dg.as<float>(), n);
    CHECK(download(dg, g.size()) == g_cpu);
  }
  for (bool relu : {false, true}) {
    CAPTURE(relu);
    auto y = x;
    cpu::add_bias(y.data(), bias.data(), rows, cols);
    if (relu) cpu::relu_forward(y.data(), n);
    auto d = upload(x), db = upload(bias);
    cuda::bias_act(d.as<float>(), db.as<float>(), rows, cols, relu);
    CHECK(download(d, x.size()) == y);
  }
  {
    std::vector<float> sums(std::size_t(cols), 1.0f), sums_gpu_init = sums;
    cpu::column_sums(x.data(), rows, cols, sums.data(), true);
    auto dx = upload(x), ds = upload(sums_gpu_init);
    cuda::column_sums(dx.as<float>(), rows, cols, ds.as<float>(), true);
    CHECK(max_rel_diff(sums, download(ds, sums.size())) < 1e-5);
  }
  for (double p : {0.1, 0.5}) {
    CAPTURE(p);
    std::vector<std::int64_t> ids(static_cast<std::size_t>(rows));
    std::iota(ids.begin(), ids.end(), 1000);
    std::vector<float> y(x.size());
    std::vector<std::uint8_t> keep(x.size());
    const DropoutKey key{3, 11};
    dropout_forward(x.data(), y.data(), keep.data(), rows, cols, p, key, 2, ids.data());
    auto dx = upload(x);
    cuda::DeviceBuffer dy(x.size() * 4), dk(x.size()), dids(ids.size() * 8);
    cuda::copy_to_device(dids.get(), ids.data(), ids.size() * 8);
    cuda::dropout_forward(dx.as<float>(), dy.as<float>(), dk.as<std::uint8_t>(), rows, cols, p, key, 2,
                          dids.as<std::int64_t>());
    CHECK(download(dy, y.size()) == y);
    std::vector<std::uint8_t> keep_gpu(keep.size());
    cuda::copy_to_host(keep_gpu.data(), dk.get(), keep.size());
    CHECK(keep_gpu == keep);
    std::vector<float> back(x.size());
    cpu::dropout_backward(x.data(), keep.data(), float(1 / (1 - p)), n, back.data());
    cuda::DeviceBuffer dback(x.size() * 4);
    cuda::dropout_backward(dx.as<float>(), dk.as<std::uint8_t>(), float(1 / (1 - p)), n, dback.as<float>());
    CHECK(download(dback, back.size()) == back);
  }
}

TEST_CASE("column sums over many chunks of rows (two and three levels) equal the CPU's", "[cuda][kernels]") {
  // 1024-row chunks: 2500 rows take two levels, 1M + 5 rows three; 70 columns span three
  // 32-column tiles, the last one partial.
  for (auto [rows, cols] : {std::pair<std::int64_t, std::int64_t>{2500, 70}, {(1 << 20) + 5, 3}, {0, 5}}) {
    CAPTURE(rows, cols);
    const auto x = random_vector(std::size_t(rows * cols), 21);
    for (bool acc : {false, true}) {
      CAPTURE(acc);
      const auto init = random_vector(std::size_t(cols), 22);
      auto sums = init;
      cpu::column_sums(x.data(), rows, cols, sums.data(), acc);
      auto dx = upload(x), ds = upload(init);
      cuda::column_sums(dx.as<float>(), rows, cols, ds.as<float>(), acc);
      CHECK(max_rel_diff(sums, download(ds, sums.size())) < 1e-5);
    }
  }
}

TEST_CASE("sparse-feature dropout keeps exactly the CPU's entries", "[cuda][kernels]") {
  // A random sparse matrix (about 10% non-zeros) with global ids that are not 0..rows-1.
  const std::int64_t rows = 700, cols = 301;
  graph::Csr x;
  x.num_rows = rows;
  x.num_cols = cols;
  CounterRng rng(44);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c)
      if (rng.uniform() < 0.1) {
        x.indices.push_back(graph::NodeId(c));
        x.values.push_back(float(rng.normal()));
      }
    x.offsets.push_back(std::int64_t(x.indices.size()));
  }
  std::vector<std::int64_t> ids(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) ids[std::size_t(r)] = 5000 + 3 * r;
  cuda::DeviceBuffer dids(ids.size() * 8);
  cuda::copy_to_device(dids.get(), ids.data(), ids.size() * 8);
  cuda::DeviceCsr dx(x), dy(x);
  for (double p : {0.1, 0.5}) {
    CAPTURE(p);
    const DropoutKey key{9, 4};
    const graph::Csr kept = dropout_sparse(x, p, key, 0, ids.data());
    cuda::dropout_sparse_values(dx, dy, p, key, 0, dids.as<std::int64_t>());
    std::vector<float> got(std::size_t(x.nnz()));
    cuda::copy_to_host(got.data(), dy.values(), got.size() * 4);
    // Row by row: the non-zero entries of the device copy are exactly the CPU's kept entries.
    std::int64_t mismatched = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
      std::int64_t k2 = kept.offsets[std::size_t(r)];
      for (std::int64_t k = x.offsets[std::size_t(r)]; k < x.offsets[std::size_t(r) + 1]; ++k) {
        if (got[std::size_t(k)] == 0.0f) continue;
        const bool same = k2 < kept.offsets[std::size_t(r) + 1] &&
                          kept.indices[std::size_t(k2)] == x.indices[std::size_t(k)] &&
                          kept.values[std::size_t(k2)] == got[std::size_t(k)];
        mismatched += !same;
        ++k2;
      }
      mismatched += k2 != kept.offsets[std::size_t(r) + 1];
    }
    CHECK(mismatched == 0);
    CHECK(kept.nnz() > 0);
    CHECK(kept.nnz() < x.nnz());
  }
}

TEST_CASE("loss, accuracy count and Adam equal the CPU's", "[cuda][kernels]") {
  const std::int64_t rows = 1000, cols = 10;
  Matrix<float> logits(rows, cols);
  logits.data = random_vector(std::size_t(rows * cols), 21);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(rows));
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r)
    labels[std::size_t(r)] = std::int32_t(r % cols), mask[std::size_t(r)] = r % 3 == 0;
  labels[3] = -1;
  Matrix<float> grad;
  const double loss = softmax_cross_entropy(logits, labels, mask, 400.0, &grad);
  const auto correct = count_correct(logits, labels, mask);
  auto dz = upload(logits.data);
  cuda::DeviceBuffer dl(labels.size() * 4), dm(mask.size()), dg(logits.data.size() * 4);
  cuda::copy_to_device(dl.get(), labels.data(), labels.size() * 4);
  cuda::copy_to_device(dm.get(), mask.data(), mask.size());
  const double gpu_loss = cuda::softmax_cross_entropy(dz.as<float>(), rows, cols, dl.as<std::int32_t>(),
                                                      dm.as<std::uint8_t>(), 400.0, dg.as<float>());
  CHECK(gpu_loss == Approx(loss).epsilon(1e-6));
  CHECK(max_rel_diff(grad.data, download(dg, grad.data.size())) < 1e-6);
  CHECK(cuda::count_correct(dz.as<float>(), rows, cols, dl.as<std::int32_t>(), dm.as<std::uint8_t>()) == correct);

  // Adam: three steps on a parameter, the same as engine/optimizer.hpp's.
  Param<float> p{"w", Matrix<float>(40, 25), Matrix<float>(40, 25)};
  p.value.data = random_vector(p.value.data.size(), 30);
  AdamConfig ac;
  ac.lr = 0.05;
  Adam<float> adam(ac, {&p});
  const std::size_t n = p.value.data.size();
  auto dw = upload(p.value.data);
  cuda::DeviceBuffer dgrad(n * 4), dmom(n * 8), dvar(n * 8);
  const std::vector<double> zeros(n, 0.0);
  cuda::copy_to_device(dmom.get(), zeros.data(), n * 8);
  cuda::copy_to_device(dvar.get(), zeros.data(), n * 8);
  for (long step = 1; step <= 3; ++step) {
    p.grad.data = random_vector(n, 40 + std::uint64_t(step));
    cuda::copy_to_device(dgrad.get(), p.grad.data.data(), n * 4);
    adam.step();
    cuda::adam_step(dw.as<float>(), dgrad.as<float>(), dmom.as<double>(), dvar.as<double>(), std::int64_t(n), ac, step);
  }
  // The CPU build may fuse multiply-adds (-march=native), the GPU one does not: 1e-6 relative.
  CHECK(max_rel_diff(p.value.data, download(dw, n)) < 1e-6);
}

TEST_CASE("row moves of the executor: copy_rows (list, range, zero fill, add) and blend_rows", "[cuda][kernels]") {
  const std::int64_t rows = 37, cols = 19, dst_rows = 80, ld = cols;
  const auto src = random_vector(std::size_t(50 * cols), 21), m = random_vector(std::size_t(rows * cols), 22);
  const auto base = random_vector(std::size_t(dst_rows * ld), 23);
  std::vector<std::int32_t> list(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) list[std::size_t(r)] = std::int32_t((r * 13 + 5) % dst_rows);  // distinct
  cuda::DeviceBuffer dlist(list.size() * 4);
  cuda::copy_to_device(dlist.get(), list.data(), list.size() * 4);
  const auto dsrc = upload(src), dm = upload(m);
  for (int variant = 0; variant < 6; ++variant) {
    CAPTURE(variant);
    const bool use_list = variant % 2 == 0, accumulate = variant >= 2 && variant < 4, zero = variant >= 4;
    const std::int64_t first = 11, src_first = 7;
    auto expected = base;
    for (std::int64_t r = 0; r < rows; ++r) {
      float* y = expected.data() + (use_list ? list[std::size_t(r)] : first + r) * ld;
      for (std::int64_t j = 0; j < cols; ++j) {
        const float a = src[std::size_t((src_first + r) * cols + j)];
        y[j] = zero ? 0.0f : accumulate ? y[j] + a : a;
      }
    }
    auto d = upload(base);
    cuda::copy_rows(d.as<float>(), ld, use_list ? dlist.as<std::int32_t>() : nullptr, first,
                    zero ? nullptr : dsrc.as<float>(), cols, src_first, rows, cols, accumulate);
    CHECK(download(d, base.size()) == expected);
  }
  for (bool accumulate : {false, true}) {
    CAPTURE(accumulate);
    const float s = 0.75f, f = 2.5f;
    auto expected = base;
    for (std::int64_t r = 0; r < rows; ++r) {
      float* y = expected.data() + list[std::size_t(r)] * ld;
      for (std::int64_t j = 0; j < cols; ++j) {
        volatile float fm = f * m[std::size_t(r * cols + j)];  // no contraction: the kernel's rounding
        volatile float sy = s * y[j];
        y[j] = accumulate ? y[j] + fm : sy + fm;
      }
    }
    auto d = upload(base);
    cuda::blend_rows(d.as<float>(), ld, dlist.as<std::int32_t>(), dm.as<float>(), rows, cols, s, f, accumulate);
    CHECK(download(d, base.size()) == expected);
  }
}
