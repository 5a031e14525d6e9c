#include "graph/csr.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

#include "base/error.hpp"

namespace adaqp::graph {

Csr symmetrize(std::int64_t n, std::span<const std::int64_t> src, std::span<const std::int64_t> dst, const char* what) {
  Csr g;
  g.num_rows = g.num_cols = n;
  std::vector<std::int64_t> count(n + 1, 0);
  for (std::size_t i = 0; i < src.size(); ++i) {
    const std::int64_t u = src[i], v = dst[i];
    if (u < 0 || u >= n || v < 0 || v >= n)
      throw Error(std::string(what) + ": edge " + std::to_string(i) + " (" + std::to_string(u) + ", " +
                  std::to_string(v) + ") names a node outside [0, " + std::to_string(n) + ")");
    if (u == v) continue;
    ++count[u + 1];
    ++count[v + 1];
  }
  std::partial_sum(count.begin(), count.end(), count.begin());
  std::vector<NodeId> adj(count[n]);
  std::vector<std::int64_t> fill(count.begin(), count.end() - 1);
  for (std::size_t i = 0; i < src.size(); ++i) {
    const std::int64_t u = src[i], v = dst[i];
    if (u == v) continue;
    adj[fill[u]++] = NodeId(v);
    adj[fill[v]++] = NodeId(u);
  }
  // Sort and deduplicate each row, compacting in place.
  g.offsets.assign(n + 1, 0);
  std::int64_t out = 0;
  for (std::int64_t r = 0; r < n; ++r) {
    auto b = adj.begin() + count[r], e = adj.begin() + count[r + 1];
    std::sort(b, e);
    auto last = std::unique(b, e);
    for (auto it = b; it != last; ++it) adj[out++] = *it;
    g.offsets[r + 1] = out;
  }
  adj.resize(out);
  adj.shrink_to_fit();
  g.indices = std::move(adj);
  return g;
}

Csr from_triplets(std::int64_t num_rows, std::int64_t num_cols, std::span<const std::int64_t> rows,
                  std::span<const NodeId> cols, std::span<const float> values) {
  Csr a;
  a.num_rows = num_rows;
  a.num_cols = num_cols;
  a.offsets.assign(num_rows + 1, 0);
  for (auto r : rows) ++a.offsets[r + 1];
  std::partial_sum(a.offsets.begin(), a.offsets.end(), a.offsets.begin());
  a.indices.resize(rows.size());
  if (!values.empty()) a.values.resize(rows.size());
  std::vector<std::int64_t> fill(a.offsets.begin(), a.offsets.end() - 1);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto k = fill[rows[i]]++;
    a.indices[k] = cols[i];
    if (!values.empty()) a.values[k] = values[i];
  }
  return a;
}

namespace {
// t = (rows [0, rows) of a)^T; source as transpose's.
void transpose_into(const Csr& a, std::int64_t rows, Csr& t, std::vector<std::int64_t>* source) {
  const std::int64_t nnz = a.offsets[std::size_t(rows)];
  t.num_rows = a.num_cols;
  t.num_cols = rows;
  t.offsets.assign(std::size_t(a.num_cols + 1), 0);
  for (std::int64_t k = 0; k < nnz; ++k) ++t.offsets[std::size_t(a.indices[std::size_t(k)]) + 1];
  std::partial_sum(t.offsets.begin(), t.offsets.end(), t.offsets.begin());
  t.indices.resize(std::size_t(nnz));
  const bool has_values = !a.values.empty();
  t.values.resize(has_values ? std::size_t(nnz) : 0);
  if (source) source->resize(std::size_t(nnz));
  std::vector<std::int64_t> fill(t.offsets.begin(), t.offsets.end() - 1);
  // Rows visited in increasing order, so each transposed row comes out sorted.
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t k = a.offsets[r]; k < a.offsets[r + 1]; ++k) {
      const auto dst = fill[a.indices[k]]++;
      t.indices[dst] = NodeId(r);
      if (has_values) t.values[dst] = a.values[k];
      if (source) (*source)[dst] = k;
    }
  }
}
}  // namespace

Csr transpose(const Csr& a, std::vector<std::int64_t>* source) {
  Csr t;
  transpose_into(a, a.num_rows, t, source);
  return t;
}

void transpose_rows(const Csr& a, std::int64_t rows, Csr& out) {
  if (rows < 0 || rows > a.num_rows)
    throw std::logic_error("transpose_rows: " + std::to_string(rows) + " rows of a " + std::to_string(a.num_rows) +
                           "-row matrix");
  transpose_into(a, rows, out, nullptr);
}

}  // namespace adaqp::graph
