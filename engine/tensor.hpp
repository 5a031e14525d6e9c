// Dense row-major matrices owned by value. rows x cols elements, element (r, c) at data[r*cols + c].
#pragma once
#include <cstdint>
#include <vector>

namespace adaqp::engine {

template <class T>
struct Matrix {
  std::int64_t rows = 0, cols = 0;
  std::vector<T> data;

  Matrix() = default;
  Matrix(std::int64_t r, std::int64_t c) : rows(r), cols(c), data(std::size_t(r * c), T(0)) {}
  void resize(std::int64_t r, std::int64_t c) {
    rows = r;
    cols = c;
    data.assign(std::size_t(r * c), T(0));
  }
  T* row(std::int64_t r) { return data.data() + r * cols; }
  const T* row(std::int64_t r) const { return data.data() + r * cols; }
  T& operator()(std::int64_t r, std::int64_t c) { return data[std::size_t(r * cols + c)]; }
  const T& operator()(std::int64_t r, std::int64_t c) const { return data[std::size_t(r * cols + c)]; }
};

}  // namespace adaqp::engine
