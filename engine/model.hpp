// GCN and GraphSAGE models with hand-written forward and backward passes on one part's rows.
//
// Row spaces: a part has n_inner rows it owns and n_local = n_inner + n_halo aggregation inputs
// (LocalPartition column order). A single process is the P = 1 case (no halo).
// Layer l maps dims[l] -> dims[l+1] (dims = [F, hidden x (layers-1), C]); hidden layers end in
// ReLU; every layer's input goes through dropout first (training only).
//
// Per layer the sparse aggregation runs on min(in, out) columns: transform-first (X W, then
// aggregate) when out <= in, aggregate-first otherwise (Layer::transform_first).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.hpp"
#include "graph/csr.hpp"
#include "graph/partition.hpp"

namespace adaqp::engine {

enum class ModelKind { gcn, sage };
ModelKind parse_model_kind(const std::string& name);  // "gcn" | "sage"
std::string to_string(ModelKind k);

struct ModelConfig {
  ModelKind kind = ModelKind::gcn;
  int layers = 2;
  int hidden = 64;
  double dropout = 0.5;  // probability of zeroing an element, in [0, 1)
};

// The aggregation operator of one part: fwd is n_inner x n_local with values,
//   GCN:  D~^-1/2 (A + I) D~^-1/2 with global degrees (d~ = deg + 1),
//   SAGE: D^-1 A (mean over in-neighbours; a node without neighbours aggregates to 0);
// bwd = transpose(fwd) (n_local x n_inner), for gradients of the aggregation input.
// column_degree: the global in-degree of every local column (n_local entries;
// graph::column_degrees), so a rank needs no more of the graph than its part.
struct Aggregation {
  graph::Csr fwd, bwd;
};
Aggregation make_aggregation(ModelKind kind, const graph::LocalPartition& part,
                             const std::vector<std::int64_t>& column_degree);

// Input features of a part's rows: its inner rows, followed by its halo rows (in halo order) when
// the plans read halo features (scheduler::Plan::halo_features); dense, or CSR (rows x F, with
// values) when sparse.
// A sparse input lets the first layer run X W and X^T dY as sparse-dense products (only used
// when the first layer is transform-first; see Model::accepts_sparse_input).
template <class T>
struct Features {
  Matrix<T> dense;
  graph::Csr sparse;
  bool is_sparse() const { return dense.rows == 0 && sparse.num_rows > 0; }
  std::int64_t rows() const { return is_sparse() ? sparse.num_rows : dense.rows; }
};
// Copies rows `row_ids` (n x F source, row-major) into Features: CSR when the fraction of
// non-zeros is at most max_density, dense otherwise.
template <class T>
Features<T> make_features(const float* x, std::int64_t cols, const std::vector<std::int64_t>& row_ids,
                          double max_density);

// Dropout key: the mask of element (node, column) depends only on (seed, epoch, layer, global node
// id, column), so any partitioning reproduces the single-process mask.
struct DropoutKey {
  std::uint64_t seed = 0;
  std::int64_t epoch = 0;
};

template <class T>
struct Param {
  std::string name;
  Matrix<T> value, grad;  // same shape
};

template <class T>
class Model {
 public:
  // Glorot-uniform weights and zero biases, seeded.
  Model(const ModelConfig& config, std::int64_t in_features, int num_classes, std::uint64_t seed);

  // x: n_inner x dims[0] rows of this part (inner order). Returns logits n_inner x C.
  // dropout == nullptr: evaluation (no dropout). global_ids: inner local id -> global id.
  const Matrix<T>& forward(const Aggregation& agg, const Features<T>& x, const DropoutKey* dropout,
                           const std::vector<std::int64_t>& global_ids);
  // d_logits: n_inner x C gradient of the loss. Overwrites every parameter's grad.
  void backward(const Aggregation& agg, const Matrix<T>& d_logits);

  std::vector<Param<T>*> params();
  const ModelConfig& config() const { return config_; }
  const std::vector<std::int64_t>& dims() const { return dims_; }
  bool transform_first(int layer) const { return dims_[layer + 1] <= dims_[layer]; }
  // Sparse features are used as such only by a transform-first first layer; make_features'
  // caller passes max_density = 0 (always dense) otherwise.
  bool accepts_sparse_input() const { return transform_first(0); }

 private:
  struct Layer {
    Param<T> w_neigh, w_self, bias;  // w_self only for SAGE
    Matrix<T> input;                 // dropped-out input (n_inner x in), dense
    graph::Csr sparse_input;         // dropped-out input, first layer with sparse features
    std::vector<std::uint8_t> keep;  // dropout mask of `input` (empty when no dropout)
    Matrix<T> mid;                   // transform-first: X W_neigh (n_local x out); else A X (n_inner x in)
    Matrix<T> output;                // n_inner x out, after ReLU for hidden layers
  };
  ModelConfig config_;
  std::vector<std::int64_t> dims_;
  std::vector<Layer> layers_;
};

// Dropout of a CSR (values kept and scaled, dropped entries removed), same mask as the dense
// version: entry (r, c) is kept iff dense element (r, c) would be.
graph::Csr dropout_sparse(const graph::Csr& x, double p, const DropoutKey& key, int layer,
                          const std::int64_t* global_ids);
// The same into y, reusing its storage and `kept` (the per-entry mask) across calls: no allocation
// once they have grown (the executor drops the same features every epoch).
void dropout_sparse(const graph::Csr& x, double p, const DropoutKey& key, int layer, const std::int64_t* global_ids,
                    graph::Csr& y, std::vector<std::uint8_t>& kept);

// Applies dropout to rows x cols (row r is global node global_ids[r]) with probability p for
// layer `layer`; writes the kept/scaled values to y and the 0/1 mask to keep.
template <class T>
void dropout_forward(const T* x, T* y, std::uint8_t* keep, std::int64_t rows, std::int64_t cols, double p,
                     const DropoutKey& key, int layer, const std::int64_t* global_ids);

}  // namespace adaqp::engine
