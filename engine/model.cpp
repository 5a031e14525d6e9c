#include "engine/model.hpp"

#include <cmath>

#include "engine/cpu/blas.hpp"
#include "engine/cpu/kernels.hpp"
#include "graph/error.hpp"
#include "graph/random.hpp"

namespace adaqp::engine {

ModelKind parse_model_kind(const std::string& name) {
  if (name == "gcn") return ModelKind::gcn;
  if (name == "sage") return ModelKind::sage;
  throw Error("--model '" + name + "': unknown model (allowed: gcn, sage)");
}

std::string to_string(ModelKind k) { return k == ModelKind::gcn ? "gcn" : "sage"; }

Aggregation make_aggregation(ModelKind kind, const graph::LocalPartition& part,
                             const std::vector<std::int64_t>& global_degree) {
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
    const double dv = double(global_degree[part.inner_global[r]]);
    bool self_done = !gcn;
    for (graph::NodeId c : a.row(r)) {
      if (!self_done && c > r) {  // keep the row sorted: the self-loop goes before larger columns
        f.indices.push_back(graph::NodeId(r));
        f.values.push_back(float(1.0 / (dv + 1.0)));
        self_done = true;
      }
      f.indices.push_back(c);
      const double du = double(global_degree[part.global_of_col(c)]);
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

template <class T>
void dropout_forward(const T* x, T* y, std::uint8_t* keep, std::int64_t rows, std::int64_t cols, double p,
                     const DropoutKey& key, int layer, const std::int64_t* global_ids) {
  // 16 random bits per element, four elements per 64-bit hash.
  const auto threshold = std::uint32_t(std::lround(p * 65536.0));
  const T scale = T(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::uint64_t row_key =
        hash_key({key.seed, std::uint64_t(key.epoch), std::uint64_t(layer), std::uint64_t(global_ids[r])});
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    std::uint8_t* kr = keep + r * cols;
    for (std::int64_t j0 = 0; j0 < cols; j0 += 4) {
      const std::uint64_t bits = mix64(row_key ^ std::uint64_t(j0));
      for (std::int64_t j = j0; j < std::min(cols, j0 + 4); ++j) {
        const auto u = std::uint32_t((bits >> (16 * (j - j0))) & 0xffffu);
        kr[j] = u >= threshold;
        yr[j] = kr[j] ? xr[j] * scale : T(0);
      }
    }
  }
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
    if (config.kind == ModelKind::sage) glorot(L.w_self, pre + "w_self", dims_[l], dims_[l + 1], std::uint64_t(2 * l + 1));
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
const Matrix<T>& Model<T>::forward(const Aggregation& agg, const Matrix<T>& x, const DropoutKey* dropout,
                                   const std::vector<std::int64_t>& global_ids) {
  const std::int64_t n = agg.fwd.num_rows;
  const bool sage = config_.kind == ModelKind::sage;
  const Matrix<T>* h = &x;
  for (int l = 0; l < config_.layers; ++l) {
    auto& L = layers_[l];
    const std::int64_t in = dims_[l], out = dims_[l + 1];
    L.input.resize(n, in);
    if (dropout && config_.dropout > 0) {
      L.keep.resize(std::size_t(n * in));
      dropout_forward(h->data.data(), L.input.data.data(), L.keep.data(), n, in, config_.dropout, *dropout, l,
                      global_ids.data());
    } else {
      L.keep.clear();
      L.input.data = h->data;
    }
    L.output.resize(n, out);
    if (transform_first(l)) {
      // mid = X W (aggregation input rows; the P = 1 case has no halo rows)
      L.mid.resize(agg.fwd.num_cols, out);
      cpu::gemm(false, false, n, out, in, T(1), L.input.data.data(), in, L.w_neigh.value.data.data(), out, T(0),
                L.mid.data.data(), out);
      cpu::spmm(agg.fwd, 0, n, L.mid.data.data(), out, L.output.data.data(), false);
    } else {
      L.mid.resize(n, in);
      cpu::spmm(agg.fwd, 0, n, L.input.data.data(), in, L.mid.data.data(), false);
      cpu::gemm(false, false, n, out, in, T(1), L.mid.data.data(), in, L.w_neigh.value.data.data(), out, T(0),
                L.output.data.data(), out);
    }
    if (sage)
      cpu::gemm(false, false, n, out, in, T(1), L.input.data.data(), in, L.w_self.value.data.data(), out, T(1),
                L.output.data.data(), out);
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
    if (need_dx) dx.resize(n, in);
    if (transform_first(l)) {
      // dmid = A^T dY ; dW = X^T dmid ; dX = dmid W^T
      dmid.resize(agg.bwd.num_rows, out);
      cpu::spmm(agg.bwd, 0, agg.bwd.num_rows, dy.data.data(), out, dmid.data.data(), false);
      cpu::gemm(true, false, in, out, n, T(1), L.input.data.data(), in, dmid.data.data(), out, T(0),
                L.w_neigh.grad.data.data(), out);
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
      cpu::gemm(true, false, in, out, n, T(1), L.input.data.data(), in, dy.data.data(), out, T(0),
                L.w_self.grad.data.data(), out);
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
template void dropout_forward<float>(const float*, float*, std::uint8_t*, std::int64_t, std::int64_t, double,
                                     const DropoutKey&, int, const std::int64_t*);
template void dropout_forward<double>(const double*, double*, std::uint8_t*, std::int64_t, std::int64_t, double,
                                      const DropoutKey&, int, const std::int64_t*);

}  // namespace adaqp::engine
