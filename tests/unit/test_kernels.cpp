// CPU kernels against naive loops, for widths that hit every code path (vector blocks and tails).
#include <omp.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "base/random.hpp"
#include "engine/cpu/kernels.hpp"

using namespace adaqp;
using namespace adaqp::engine;

namespace {
graph::Csr random_csr(std::int64_t rows, std::int64_t cols, double density, std::uint64_t seed) {
  CounterRng rng(seed);
  std::vector<std::int64_t> r;
  std::vector<graph::NodeId> c;
  std::vector<float> v;
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j)
      if (rng.uniform() < density) {
        r.push_back(i);
        c.push_back(graph::NodeId(j));
        v.push_back(float(rng.uniform() * 2 - 1));
      }
  return graph::from_triplets(rows, cols, r, c, v);
}
}  // namespace

TEST_CASE("transpose: entries moved to (column, row) in row order, and where each one came from", "[kernels]") {
  for (auto [rows, cols] : {std::pair<std::int64_t, std::int64_t>{37, 53}, {64, 5}, {1, 9}, {8, 0}}) {
    CAPTURE(rows, cols);
    const auto a = random_csr(rows, cols, 0.2, std::uint64_t(rows * 100 + cols));
    std::vector<std::int64_t> source;
    const auto t = graph::transpose(a, &source);
    REQUIRE(t.num_rows == cols);
    REQUIRE(t.num_cols == rows);
    REQUIRE(t.nnz() == a.nnz());
    REQUIRE(std::int64_t(source.size()) == a.nnz());
    std::vector<int> used(static_cast<std::size_t>(a.nnz()), 0);
    for (std::int64_t j = 0; j < t.num_rows; ++j)
      for (std::int64_t k = t.offsets[std::size_t(j)]; k < t.offsets[std::size_t(j + 1)]; ++k) {
        const std::int64_t s = source[std::size_t(k)];
        ++used[std::size_t(s)];
        // Entry s of a is (row t.indices[k], column j), with the same value.
        const std::int64_t r = t.indices[std::size_t(k)];
        CHECK(a.offsets[std::size_t(r)] <= s);
        CHECK(s < a.offsets[std::size_t(r + 1)]);
        CHECK(a.indices[std::size_t(s)] == j);
        CHECK(t.values[std::size_t(k)] == a.values[std::size_t(s)]);
        if (k > t.offsets[std::size_t(j)]) CHECK(t.indices[std::size_t(k - 1)] < t.indices[std::size_t(k)]);
      }
    CHECK(std::all_of(used.begin(), used.end(), [](int u) { return u == 1; }));  // a permutation
  }
}

TEMPLATE_TEST_CASE("spmm and spmm_transposed equal naive loops", "[kernels]", float, double) {
  const auto a = random_csr(70, 50, 0.1, 11);
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    for (std::int64_t cols : {1, 5, 8, 16, 17, 33, 128, 130, 256}) {
      CAPTURE(threads, cols);
      CounterRng rng{std::uint64_t(cols)};
      std::vector<TestType> b(std::size_t(a.num_cols * cols)), bt(std::size_t(a.num_rows * cols));
      for (auto& x : b) x = TestType(rng.uniform() - 0.5);
      for (auto& x : bt) x = TestType(rng.uniform() - 0.5);
      std::vector<TestType> c(std::size_t(a.num_rows * cols), TestType(1)), want(c.size(), TestType(0));
      for (std::int64_t r = 0; r < a.num_rows; ++r)
        for (std::int64_t k = a.offsets[r]; k < a.offsets[r + 1]; ++k)
          for (std::int64_t j = 0; j < cols; ++j)
            want[r * cols + j] += TestType(a.values[k]) * b[a.indices[k] * cols + j];
      cpu::spmm(a, 0, a.num_rows, b.data(), cols, c.data(), false);
      for (std::size_t i = 0; i < c.size(); ++i) REQUIRE(c[i] == Approx(want[i]).margin(1e-5));
      cpu::spmm(a, 0, a.num_rows, b.data(), cols, c.data(), true);  // accumulate doubles it
      for (std::size_t i = 0; i < c.size(); ++i) REQUIRE(c[i] == Approx(2 * want[i]).margin(1e-5));

      std::vector<TestType> ct(std::size_t(a.num_cols * cols)), want_t(ct.size(), TestType(0));
      for (std::int64_t r = 0; r < a.num_rows; ++r)
        for (std::int64_t k = a.offsets[r]; k < a.offsets[r + 1]; ++k)
          for (std::int64_t j = 0; j < cols; ++j)
            want_t[a.indices[k] * cols + j] += TestType(a.values[k]) * bt[r * cols + j];
      cpu::spmm_transposed(a, bt.data(), cols, ct.data(), false);
      for (std::size_t i = 0; i < ct.size(); ++i) REQUIRE(ct[i] == Approx(want_t[i]).margin(1e-5));

      // The first `prefix` rows of A and B only (halo feature rows after the inner ones).
      const std::int64_t prefix = a.num_rows / 3;
      std::fill(want_t.begin(), want_t.end(), TestType(0));
      for (std::int64_t r = 0; r < prefix; ++r)
        for (std::int64_t k = a.offsets[r]; k < a.offsets[r + 1]; ++k)
          for (std::int64_t j = 0; j < cols; ++j)
            want_t[a.indices[k] * cols + j] += TestType(a.values[k]) * bt[r * cols + j];
      cpu::spmm_transposed(a, bt.data(), cols, ct.data(), false, prefix);
      for (std::size_t i = 0; i < ct.size(); ++i) REQUIRE(ct[i] == Approx(want_t[i]).margin(1e-5));
      REQUIRE_THROWS(cpu::spmm_transposed(a, bt.data(), cols, ct.data(), false, a.num_rows + 1));
    }
  }
}

TEST_CASE("transpose_rows: the first rows' transpose, into reused storage, rows out of range refused", "[kernels]") {
  const auto a = random_csr(60, 23, 0.25, 17);
  graph::Csr out;
  for (std::int64_t rows : {60, 41, 0, 60}) {  // shrinking and growing again in the same storage
    CAPTURE(rows);
    graph::transpose_rows(a, rows, out);
    graph::Csr head = a;  // a's first `rows` rows, transposed by the tested transpose
    head.num_rows = rows;
    head.offsets.resize(std::size_t(rows + 1));
    head.indices.resize(std::size_t(a.offsets[std::size_t(rows)]));
    head.values.resize(head.indices.size());
    const auto want = graph::transpose(head);
    CHECK(out.num_rows == 23);
    CHECK(out.num_cols == rows);
    CHECK((out.offsets == want.offsets));
    CHECK((out.indices == want.indices));
    CHECK((out.values == want.values));
  }
  CHECK_THROWS_AS(graph::transpose_rows(a, 61, out), std::logic_error);
  CHECK_THROWS_AS(graph::transpose_rows(a, -1, out), std::logic_error);
}

TEST_CASE("dW = X^T G as a gather over X^T's rows is bit for bit the scatter, whole and in row blocks", "[kernels]") {
  // The executor's first-layer weight gradient: spmm over rows [c0, c1) of X[0:inner]^T.
  const auto x = random_csr(700, 90, 0.07, 23);
  const std::int64_t inner = 650, cols = 75;  // rows of X the gradient reads; a tail of 11 lanes
  CounterRng rng{9};
  std::vector<float> g(std::size_t(x.num_rows * cols));
  for (auto& v : g) v = float(rng.uniform() - 0.5);
  graph::Csr xt;
  graph::transpose_rows(x, inner, xt);
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);  // the scatter's sums are in row order with one thread
  std::vector<float> scatter(std::size_t(x.num_cols * cols)), gather(scatter.size(), -7.0f);
  cpu::spmm_transposed(x, g.data(), cols, scatter.data(), false, inner);
  omp_set_num_threads(2);  // the gather's do not depend on the thread count
  for (auto [c0, c1] : {std::pair<std::int64_t, std::int64_t>{0, 31}, {31, 32}, {32, 90}})
    cpu::spmm(xt, c0, c1, g.data(), cols, gather.data(), false);
  omp_set_num_threads(before);
  CHECK((gather == scatter));
}

TEST_CASE("spmm and spmm_transposed call their tick on the caller without changing the sums", "[kernels]") {
  const auto a = random_csr(1000, 1000, 0.01, 5);  // square: B serves both products
  const std::int64_t cols = 24;
  CounterRng rng{7};
  std::vector<float> b(std::size_t(a.num_rows * cols));
  for (auto& x : b) x = float(rng.uniform() - 0.5);
  const int before = omp_get_max_threads();
  for (bool transposed : {false, true})
    for (int threads : {1, 2}) {
      CAPTURE(transposed, threads);
      omp_set_num_threads(threads);
      auto product = [&](std::vector<float>& c, const cpu::RowTick& tick) {
        if (transposed)
          cpu::spmm_transposed(a, b.data(), cols, c.data(), false, -1, tick);
        else
          cpu::spmm(a, 0, a.num_rows, b.data(), cols, c.data(), false, tick);
      };
      std::vector<float> plain(b.size()), ticked(b.size());
      product(plain, {});
      int calls = 0;
      bool off_caller = false;
      product(ticked, {[&] {
                         ++calls;
                         off_caller = off_caller || omp_get_thread_num() != 0;
                       },
                       64});
      CHECK((plain == ticked));  // bit for bit
      if (transposed)            // thread 0's static share: the first ceil(1000 / threads) rows, a call per 64
        CHECK(calls == (1000 + threads - 1) / threads / 64);
      else if (threads == 1)
        CHECK(calls == 1000 / 64);
      else
        CHECK(calls <= 1000 / 64);  // dynamic schedule: thread 0's share is not fixed
      CHECK_FALSE(off_caller);
    }
  omp_set_num_threads(before);
}

TEST_CASE("spmm_transposed in output row blocks: each block bit for bit the whole product's rows, others untouched",
          "[kernels]") {
  const auto a = random_csr(900, 50, 0.08, 11);
  const std::int64_t cols = 136;  // 8 vectors of 16, one of 16 (fp32) and a scalar tail of 8
  CounterRng rng{3};
  std::vector<float> b(std::size_t(a.num_rows * cols));
  for (auto& x : b) x = float(rng.uniform() - 0.5);
  const int before = omp_get_max_threads();
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    omp_set_num_threads(threads);
    std::vector<float> whole(std::size_t(a.num_cols * cols)), blocks(whole.size(), -7.0f);
    cpu::spmm_transposed(a, b.data(), cols, whole.data(), false, 850);
    const std::vector<std::int64_t> cuts = {0, 1, 17, 32, 50};
    for (std::size_t k = 0; k + 1 < cuts.size(); ++k) {
      cpu::spmm_transposed(a, b.data(), cols, blocks.data(), false, 850, {}, cuts[k], cuts[k + 1]);
      // rows past this block are still untouched
      CHECK(std::all_of(blocks.begin() + cuts[k + 1] * cols, blocks.end(), [](float x) { return x == -7.0f; }));
    }
    CHECK((whole == blocks));  // bit for bit
  }
  omp_set_num_threads(before);
  std::vector<float> c(std::size_t(a.num_cols * cols));
  REQUIRE_THROWS(cpu::spmm_transposed(a, b.data(), cols, c.data(), false, -1, {}, 10, 51));
  REQUIRE_THROWS(cpu::spmm_transposed(a, b.data(), cols, c.data(), false, -1, {}, 20, 10));
}

TEST_CASE("row range spmm leaves other rows alone", "[kernels]") {
  const auto a = random_csr(10, 10, 0.5, 3);
  std::vector<float> b(10 * 4, 1.0f), c(10 * 4, -7.0f);
  cpu::spmm(a, 3, 6, b.data(), 4, c.data(), false);
  for (std::int64_t r = 0; r < 10; ++r)
    for (int j = 0; j < 4; ++j) {
      if (r < 3 || r >= 6)
        REQUIRE(c[r * 4 + j] == -7.0f);
      else
        REQUIRE(c[r * 4 + j] != -7.0f);
    }
}

TEST_CASE("column sums and relu", "[kernels]") {
  std::vector<double> g(3000 * 3);
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = double(i % 3) + 1;
  std::vector<double> s(3);
  cpu::column_sums(g.data(), 3000, 3, s.data(), false);
  CHECK(s == std::vector<double>{3000, 6000, 9000});
  std::vector<float> y = {-1, 0, 2}, gr = {5, 5, 5};
  cpu::relu_forward(y.data(), 3);
  CHECK(y == std::vector<float>{0, 0, 2});
  cpu::relu_backward(y.data(), gr.data(), 3);
  CHECK(gr == std::vector<float>{0, 0, 5});
}

TEMPLATE_TEST_CASE("dropout_backward: kept entries scaled, dropped ones +0 bit for bit", "[kernels]", float, double) {
  // Includes negative, infinite and NaN gradients where the mask drops them: the result is +0
  // (as the select keep ? g * scale : 0), never -0 or NaN.
  CounterRng rng(7);
  const std::int64_t n = 1037;  // vector blocks and a tail
  std::vector<TestType> g(static_cast<std::size_t>(n));
  std::vector<std::uint8_t> keep(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    g[std::size_t(i)] = TestType(rng.uniform() * 4 - 2);
    keep[std::size_t(i)] = std::uint8_t(rng.uniform() < 0.5 ? 0 : 1 + i % 3);  // any nonzero byte keeps
  }
  g[3] = -std::numeric_limits<TestType>::infinity();
  g[4] = std::numeric_limits<TestType>::quiet_NaN();
  keep[3] = keep[4] = 0;
  std::vector<TestType> out(static_cast<std::size_t>(n), TestType(9));
  cpu::dropout_backward(g.data(), keep.data(), TestType(2), n, out.data());
  int dropped = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto k = std::size_t(i);
    if (keep[k]) {
      REQUIRE(out[k] == g[k] * TestType(2));
    } else {
      ++dropped;
      REQUIRE(out[k] == TestType(0));
      REQUIRE_FALSE(std::signbit(out[k]));
    }
  }
  CHECK(dropped > n / 3);
}
