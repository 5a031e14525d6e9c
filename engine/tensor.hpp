// Dense row-major matrices: Matrix owns its rows x cols elements by value, MatrixView points at
// ones stored elsewhere (an executor's arena: scheduler/memory_plan.hpp). Element (r, c) at
// data[r*cols + c].
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

// rows x cols elements at data, owned by someone else; T may be const.
template <class T>
struct MatrixView {
  std::int64_t rows = 0, cols = 0;
  T* data = nullptr;

  MatrixView() = default;
  MatrixView(std::int64_t r, std::int64_t c, T* d) : rows(r), cols(c), data(d) {}
  template <class U>
  MatrixView(const MatrixView<U>& o) : rows(o.rows), cols(o.cols), data(o.data) {}  // adds const
  T* row(std::int64_t r) const { return data + r * cols; }
  T& operator()(std::int64_t r, std::int64_t c) const { return data[r * cols + c]; }
};
template <class T>
MatrixView<T> view(Matrix<T>& m) {
  return {m.rows, m.cols, m.data.data()};
}
template <class T>
MatrixView<const T> view(const Matrix<T>& m) {
  return {m.rows, m.cols, m.data.data()};
}

}  // namespace adaqp::engine
