#include "engine/model.hpp"

#include <cmath>

#include "base/error.hpp"
#include "base/random.hpp"
#include "engine/cpu/blas.hpp"
#include "engine/cpu/kernels.hpp"

namespace adaqp::engine {

ModelKind parse_model_kind(const std::string& name) {
  if (name == "gcn") return ModelKind::gcn;
  if (name == "sage") return ModelKind::sage;
  throw Error("--model '" + name + "': unknown model (allowed: gcn, sage)");
}

std::string to_string(ModelKind k) {
  return k == ModelKind::gcn ? "gcn" : "sage";
}

Aggregation make_aggregation(ModelKind kind, const graph::LocalPartition& part,
                             const std::vector<std::int64_t>& column_degree) {
  const auto& a = part.adj;
  Aggregation agg;
  auto& f = agg.fwd;
  f.num_rows = a.num_rows;
  f.num_cols = a.num_cols;
  f.offsets.assign(a.num_rows + 1, 0);
  const bool gcn = kind == ModelKind::gcn;
  f.indices.reserve(a.nnz() + (gcn ? a.num_rows : 0));
  f.values.reserve(f.indices.capacity());
  for (std::int64_t r = 0; r < a.num_rows; ++r) {
    const std::int64_t self_global = part.inner_global[r];
    const double dv = double(column_degree[std::size_t(r)]);
    bool self_done = !gcn;
    for (graph::NodeId c : a.row(r)) {
      if (!self_done && part.global_of_col(c) > self_global) {  // self-loop in global-id order
        f.indices.push_back(graph::NodeId(r));
        f.values.push_back(float(1.0 / (dv + 1.0)));
        self_done = true;
      }
      f.indices.push_back(c);
      const double du = double(column_degree[std::size_t(c)]);
      f.values.push_back(gcn ? float(1.0 / std::sqrt((dv + 1.0) * (du + 1.0))) : float(1.0 / dv));
    }
    if (!self_done) {
      f.indices.push_back(graph::NodeId(r));
      f.values.push_back(float(1.0 / (dv + 1.0)));
    }
    f.offsets[r + 1] = std::int64_t(f.indices.size());
  }
  agg.bwd = graph::transpose(f);
  return agg;
}

namespace {
// 16 random bits per element, four consecutive columns per 64-bit hash of (row key, column / 4).
inline std::uint64_t dropout_row_key(const DropoutKey& key, int layer, std::int64_t global_id) {
  return hash_key({key.seed, std::uint64_t(key.epoch), std::uint64_t(layer), std::uint64_t(global_id)});
}
inline std::uint32_t dropout_threshold(double p) {
  return std::uint32_t(std::lround(p * 65536.0));
}
inline bool dropout_keep(std::uint64_t row_key, std::int64_t col, std::uint32_t threshold) {
  const std::uint64_t bits = mix64(row_key ^ std::uint64_t(col & ~std::int64_t(3)));
  return std::uint32_t((bits >> (16 * (col & 3))) & 0xffffu) >= threshold;
}
}  // namespace

template <class T>
void dropout_forward(const T* x, T* y, std::uint8_t* keep, std::int64_t rows, std::int64_t cols, double p,
                     const DropoutKey& key, int layer, const std::int64_t* global_ids) {
  const std::uint32_t threshold = dropout_threshold(p);
  const T scale = T(1.0 / (1.0 - p));
  const std::int64_t groups = (cols + 3) / 4;
#pragma omp parallel
  {
    std::vector<std::uint64_t> bits(static_cast<std::size_t>(groups));
#pragma omp for schedule(static)
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::uint64_t row_key = dropout_row_key(key, layer, global_ids[r]);
      // Two simple loops the compiler vectorises: hashes of the 4-column groups, then the mask.
      for (std::int64_t g = 0; g < groups; ++g) bits[g] = mix64(row_key ^ std::uint64_t(4 * g));
      const auto* u16 = reinterpret_cast<const HashChunk16*>(bits.data());
      const T* xr = x + r * cols;
      T* yr = y + r * cols;
#pragma omp simd
      for (std::int64_t j = 0; j < cols; ++j) yr[j] = std::uint32_t(u16[j]) >= threshold ? xr[j] * scale : T(0);
      if (keep) {
        std::uint8_t* __restrict kr = keep + r * cols;
#pragma omp simd
        for (std::int64_t j = 0; j < cols; ++j) kr[j] = std::uint32_t(u16[j]) >= threshold;
      }
    }
  }
}

void dropout_sparse(const graph::Csr& x, double p, const DropoutKey& key, int layer, const std::int64_t* global_ids,
                    graph::Csr& y, std::vector<std::uint8_t>& kept) {
  const std::uint32_t threshold = dropout_threshold(p);
  const float scale = float(1.0 / (1.0 - p));
  y.num_rows = x.num_rows;
  y.num_cols = x.num_cols;
  y.offsets.assign(std::size_t(x.num_rows + 1), 0);
  kept.resize(x.indices.size());
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < x.num_rows; ++r) {
    const std::uint64_t row_key = dropout_row_key(key, layer, global_ids[r]);
    std::int64_t count = 0;
    const auto* __restrict idx = x.indices.data();
    std::uint8_t* __restrict kr = kept.data();
#pragma omp simd reduction(+ : count)
    for (std::int64_t k = x.offsets[r]; k < x.offsets[r + 1]; ++k) {
      const std::uint8_t keep = dropout_keep(row_key, idx[k], threshold);
      kr[k] = keep;
      count += keep;
    }
    y.offsets[r + 1] = count;
  }
  for (std::int64_t r = 0; r < x.num_rows; ++r) y.offsets[r + 1] += y.offsets[r];
  y.indices.resize(std::size_t(y.offsets.back()));  // within capacity after the first call
  y.values.resize(std::size_t(y.offsets.back()));
  // The compaction writes every entry at the row's cursor and advances it past kept ones: no branch
  // on the random mask. The cursor's bound check (false only after a row's last kept entry) keeps
  // each row inside its own range, which another thread may be filling.
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < x.num_rows; ++r) {
    std::int64_t o = y.offsets[r];
    const std::int64_t end = y.offsets[r + 1];
    for (std::int64_t k = x.offsets[r]; k < x.offsets[r + 1]; ++k) {
      if (o < end) {
        y.indices[std::size_t(o)] = x.indices[std::size_t(k)];
        y.values[std::size_t(o)] = x.values[std::size_t(k)] * scale;
      }
      o += kept[std::size_t(k)];
    }
  }
}

graph::Csr dropout_sparse(const graph::Csr& x, double p, const DropoutKey& key, int layer,
                          const std::int64_t* global_ids) {
  graph::Csr y;
  std::vector<std::uint8_t> kept;
  dropout_sparse(x, p, key, layer, global_ids, y, kept);
  return y;
}

template <class T>
Features<T> make_features(const float* x, std::int64_t cols, const std::vector<std::int64_t>& row_ids,
                          double max_density) {
  Features<T> f;
  const std::int64_t n = std::int64_t(row_ids.size());
  std::int64_t nnz = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const float* row = x + row_ids[i] * cols;
    for (std::int64_t j = 0; j < cols; ++j) nnz += row[j] != 0.0f;
  }
  if (n * cols > 0 && double(nnz) <= max_density * double(n * cols)) {
    auto& s = f.sparse;
    s.num_rows = n;
    s.num_cols = cols;
    s.offsets.assign(n + 1, 0);
    s.indices.reserve(nnz);
    s.values.reserve(nnz);
    for (std::int64_t i = 0; i < n; ++i) {
      const float* row = x + row_ids[i] * cols;
      for (std::int64_t j = 0; j < cols; ++j)
        if (row[j] != 0.0f) {
          s.indices.push_back(graph::NodeId(j));
          s.values.push_back(row[j]);
        }
      s.offsets[i + 1] = std::int64_t(s.indices.size());
    }
    return f;
  }
  f.dense.resize(n, cols);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < cols; ++j) f.dense(i, j) = T(x[row_ids[i] * cols + j]);
  return f;
}

template <class T>
Model<T>::Model(const ModelConfig& config, std::int64_t in_features, int num_classes, std::uint64_t seed)
    : config_(config) {
  if (config.layers < 1) throw Error("--layers " + std::to_string(config.layers) + ": must be >= 1");
  if (config.hidden < 1) throw Error("--hidden " + std::to_string(config.hidden) + ": must be >= 1");
  if (!(config.dropout >= 0 && config.dropout < 1))
    throw Error("--dropout " + std::to_string(config.dropout) + ": must be in [0, 1)");
  dims_.push_back(in_features);
  for (int l = 0; l + 1 < config.layers; ++l) dims_.push_back(config.hidden);
  dims_.push_back(num_classes);
  layers_.resize(config.layers);
  auto glorot = [&](Param<T>& p, const std::string& name, std::int64_t in, std::int64_t out, std::uint64_t salt) {
    p.name = name;
    p.value.resize(in, out);
    p.grad.resize(in, out);
    const double bound = std::sqrt(6.0 / double(in + out));
    CounterRng rng(hash_key({seed, 0x1417ULL, salt}));
    for (auto& w : p.value.data) w = T((2.0 * rng.uniform() - 1.0) * bound);
  };
  for (int l = 0; l < config.layers; ++l) {
    auto& L = layers_[l];
    const std::string pre = "layer" + std::to_string(l) + ".";
    glorot(L.w_neigh, pre + (config.kind == ModelKind::sage ? "w_neigh" : "weight"), dims_[l], dims_[l + 1],
           std::uint64_t(2 * l));
    if (config.kind == ModelKind::sage)
      glorot(L.w_self, pre + "w_self", dims_[l], dims_[l + 1], std::uint64_t(2 * l + 1));
    L.bias.name = pre + "bias";
    L.bias.value.resize(1, dims_[l + 1]);
    L.bias.grad.resize(1, dims_[l + 1]);
  }
}

template <class T>
std::vector<Param<T>*> Model<T>::params() {
  std::vector<Param<T>*> out;
  for (auto& L : layers_) {
    out.push_back(&L.w_neigh);
    if (config_.kind == ModelKind::sage) out.push_back(&L.w_self);
    out.push_back(&L.bias);
  }
  return out;
}

template <class T>
const Matrix<T>& Model<T>::forward(const Aggregation& agg, const Features<T>& x, const DropoutKey* dropout,
                                   const std::vector<std::int64_t>& global_ids) {
  const std::int64_t n = agg.fwd.num_rows;
  const bool sage = config_.kind == ModelKind::sage;
  const bool drop = dropout && config_.dropout > 0;
  if (x.is_sparse() && !accepts_sparse_input())
    throw Error("internal: sparse features given to an aggregate-first first layer");
  const Matrix<T>* h = &x.dense;
  for (int l = 0; l < config_.layers; ++l) {
    auto& L = layers_[l];
    const std::int64_t in = dims_[l], out = dims_[l + 1];
    const bool sparse = l == 0 && x.is_sparse();
    // X W for a dense or sparse (dropped-out) input X; result n x out, beta selects overwrite/add.
    auto times = [&](const Param<T>& w, T* result, bool add) {
      if (sparse)
        cpu::spmm(L.sparse_input, 0, n, w.value.data.data(), out, result, add);
      else
        cpu::gemm(false, false, n, out, in, T(1), L.input.data.data(), in, w.value.data.data(), out, add ? T(1) : T(0),
                  result, out);
    };
    if (sparse) {
      L.sparse_input = drop ? dropout_sparse(x.sparse, config_.dropout, *dropout, l, global_ids.data()) : x.sparse;
    } else {
      L.input.resize(n, in);
      // The first layer never needs its dropout mask (no gradient flows to the features).
      L.keep.resize(drop && l > 0 ? std::size_t(n * in) : 0);
      if (drop)
        dropout_forward(h->data.data(), L.input.data.data(), l > 0 ? L.keep.data() : nullptr, n, in, config_.dropout,
                        *dropout, l, global_ids.data());
      else
        L.input.data = h->data;
    }
    L.output.resize(n, out);
    if (transform_first(l)) {
      // mid = X W (aggregation input rows; the P = 1 case has no halo rows)
      L.mid.resize(agg.fwd.num_cols, out);
      times(L.w_neigh, L.mid.data.data(), false);
      cpu::spmm(agg.fwd, 0, n, L.mid.data.data(), out, L.output.data.data(), false);
    } else {
      L.mid.resize(n, in);
      cpu::spmm(agg.fwd, 0, n, L.input.data.data(), in, L.mid.data.data(), false);
      cpu::gemm(false, false, n, out, in, T(1), L.mid.data.data(), in, L.w_neigh.value.data.data(), out, T(0),
                L.output.data.data(), out);
    }
    if (sage) times(L.w_self, L.output.data.data(), true);
    cpu::add_bias(L.output.data.data(), L.bias.value.data.data(), n, out);
    if (l + 1 < config_.layers) cpu::relu_forward(L.output.data.data(), n * out);
    h = &L.output;
  }
  return layers_.back().output;
}

template <class T>
void Model<T>::backward(const Aggregation& agg, const Matrix<T>& d_logits) {
  const std::int64_t n = agg.fwd.num_rows;
  const bool sage = config_.kind == ModelKind::sage;
  Matrix<T> dy = d_logits, dx, dmid;
  for (int l = config_.layers - 1; l >= 0; --l) {
    auto& L = layers_[l];
    const std::int64_t in = dims_[l], out = dims_[l + 1];
    if (l + 1 < config_.layers) cpu::relu_backward(L.output.data.data(), dy.data.data(), n * out);
    cpu::column_sums(dy.data.data(), n, out, L.bias.grad.data.data(), false);
    const bool need_dx = l > 0;
    // grad = X^T g (in x out) for this layer's dense or sparse input X.
    auto input_t_times = [&](const Layer& L, const T* g, T* grad) {
      if (l == 0 && L.sparse_input.num_rows > 0 && L.input.rows == 0)
        cpu::spmm_transposed(L.sparse_input, g, out, grad, false);
      else
        cpu::gemm(true, false, in, out, n, T(1), L.input.data.data(), in, g, out, T(0), grad, out);
    };
    if (need_dx) dx.resize(n, in);
    if (transform_first(l)) {
      // dmid = A^T dY ; dW = X^T dmid ; dX = dmid W^T
      dmid.resize(agg.bwd.num_rows, out);
      cpu::spmm(agg.bwd, 0, agg.bwd.num_rows, dy.data.data(), out, dmid.data.data(), false);
      input_t_times(L, dmid.data.data(), L.w_neigh.grad.data.data());
      if (need_dx)
        cpu::gemm(false, true, n, in, out, T(1), dmid.data.data(), out, L.w_neigh.value.data.data(), out, T(0),
                  dx.data.data(), in);
    } else {
      // dW = mid^T dY ; dmid = dY W^T ; dX = A^T dmid
      cpu::gemm(true, false, in, out, n, T(1), L.mid.data.data(), in, dy.data.data(), out, T(0),
                L.w_neigh.grad.data.data(), out);
      if (need_dx) {
        dmid.resize(n, in);
        cpu::gemm(false, true, n, in, out, T(1), dy.data.data(), out, L.w_neigh.value.data.data(), out, T(0),
                  dmid.data.data(), in);
        cpu::spmm(agg.bwd, 0, n, dmid.data.data(), in, dx.data.data(), false);
      }
    }
    if (sage) {
      input_t_times(L, dy.data.data(), L.w_self.grad.data.data());
      if (need_dx)
        cpu::gemm(false, true, n, in, out, T(1), dy.data.data(), out, L.w_self.value.data.data(), out, T(1),
                  dx.data.data(), in);
    }
    if (need_dx) {
      if (!L.keep.empty()) {
        const T scale = T(1.0 / (1.0 - config_.dropout));
        T* g = dx.data.data();
        const std::uint8_t* k = L.keep.data();
#pragma omp parallel for simd schedule(static)
        for (std::int64_t i = 0; i < n * in; ++i) g[i] = k[i] ? g[i] * scale : T(0);
      }
      std::swap(dy, dx);
    }
  }
}

template class Model<float>;
template class Model<double>;
template Features<float> make_features<float>(const float*, std::int64_t, const std::vector<std::int64_t>&, double);
template Features<double> make_features<double>(const float*, std::int64_t, const std::vector<std::int64_t>&, double);
template void dropout_forward<float>(const float*, float*, std::uint8_t*, std::int64_t, std::int64_t, double,
                                     const DropoutKey&, int, const std::int64_t*);
template void dropout_forward<double>(const double*, double*, std::uint8_t*, std::int64_t, std::int64_t, double,
                                      const DropoutKey&, int, const std::int64_t*);

}  // namespace adaqp::engine
