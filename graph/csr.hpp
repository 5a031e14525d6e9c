// Compressed sparse row matrices / graphs.
//   offsets: num_rows + 1 entries, 64-bit (graphs beyond 2^31 edges).
//   indices: nnz column ids, 32-bit (node ids < 2^31), sorted within each row.
//   values:  empty (pattern only, e.g. an adjacency) or nnz weights.
// A graph adjacency stores row v = the in-neighbours of v; adaqp keeps graphs symmetric.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace adaqp::graph {

using NodeId = std::int32_t;

struct Csr {
  std::int64_t num_rows = 0;
  std::int64_t num_cols = 0;
  std::vector<std::int64_t> offsets{0};
  std::vector<NodeId> indices;
  std::vector<float> values;

  std::int64_t nnz() const { return std::int64_t(indices.size()); }
  std::int64_t degree(std::int64_t row) const { return offsets[row + 1] - offsets[row]; }
  std::span<const NodeId> row(std::int64_t r) const {
    return {indices.data() + offsets[r], std::size_t(offsets[r + 1] - offsets[r])};
  }
};

// Builds a symmetric pattern graph on n nodes from directed or undirected pairs (src[i], dst[i]):
// adds both directions, drops self-loops and duplicates, sorts each row. Throws adaqp::Error
// (naming `what`) when an id is outside [0, n).
Csr symmetrize(std::int64_t n, std::span<const std::int64_t> src, std::span<const std::int64_t> dst,
               const char* what = "edge list");

// Builds a CSR from (row, col, value) triplets (rows num_rows, cols num_cols), keeping duplicates
// in input order within a row. values may be empty for a pattern.
Csr from_triplets(std::int64_t num_rows, std::int64_t num_cols, std::span<const std::int64_t> rows,
                  std::span<const NodeId> cols, std::span<const float> values);

// Transpose (num_cols x num_rows), values carried along; indices sorted within rows. When source
// is given, (*source)[k] = the position in a's arrays of the transposed matrix's entry k (nnz
// entries): what keeps a transpose's values equal to a's after a's change.
Csr transpose(const Csr& a, std::vector<std::int64_t>* source = nullptr);
// out = (rows [0, rows) of a)^T: a.num_cols x rows, values carried along, indices sorted within
// rows; out's storage is reused (no allocation once it has grown to a's size). Throws
// std::logic_error when rows is outside [0, a.num_rows].
void transpose_rows(const Csr& a, std::int64_t rows, Csr& out);

}  // namespace adaqp::graph
