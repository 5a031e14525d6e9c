// CPU kernels against naive loops, for widths that hit every code path (vector blocks and tails).
#include <catch2/catch.hpp>
#include <omp.h>

#include "engine/cpu/kernels.hpp"
#include "graph/random.hpp"

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
          for (std::int64_t j = 0; j < cols; ++j) want[r * cols + j] += TestType(a.values[k]) * b[a.indices[k] * cols + j];
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

TEST_CASE("row range spmm leaves other rows alone", "[kernels]") {
  const auto a = random_csr(10, 10, 0.5, 3);
  std::vector<float> b(10 * 4, 1.0f), c(10 * 4, -7.0f);
  cpu::spmm(a, 3, 6, b.data(), 4, c.data(), false);
  for (std::int64_t r = 0; r < 10; ++r)
    for (int j = 0; j < 4; ++j) {
      if (r < 3 || r >= 6) REQUIRE(c[r * 4 + j] == -7.0f);
      else REQUIRE(c[r * 4 + j] != -7.0f);
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
