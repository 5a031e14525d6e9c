#include "graph/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "base/error.hpp"
#include "base/random.hpp"
#include "graph/npz.hpp"
#include "graph/registry.hpp"
#include "graph/synthetic.hpp"

namespace adaqp::graph {

std::int64_t Dataset::count(const std::vector<std::uint8_t>& mask) const {
  return std::int64_t(std::count(mask.begin(), mask.end(), std::uint8_t(1)));
}

namespace {

void check_labels(const Dataset& d, const std::string& where) {
  if (std::int64_t(d.labels.size()) != d.num_nodes)
    throw Error(where + ": expected " + std::to_string(d.num_nodes) + " labels, found " +
                std::to_string(d.labels.size()));
}

std::vector<std::int32_t> labels_from(const NpyArray& a, std::int64_t n, int* num_classes) {
  a.expect_ndim(1);
  auto raw = a.to_int64();
  if (std::int64_t(raw.size()) != n)
    throw Error(a.where() + ": expected " + std::to_string(n) + " labels, found " + std::to_string(raw.size()));
  std::vector<std::int32_t> labels(n);
  std::int64_t max_label = -1;
  for (std::int64_t i = 0; i < n; ++i) {
    if (raw[i] < -1 || raw[i] > (1 << 30))
      throw Error(a.where() + ": label " + std::to_string(raw[i]) + " of node " + std::to_string(i) +
                  " is out of range");
    labels[i] = std::int32_t(raw[i]);
    max_label = std::max(max_label, raw[i]);
  }
  *num_classes = int(max_label + 1);
  return labels;
}

std::vector<std::uint8_t> mask_row(const NpyArray& a, std::int64_t n, int index) {
  auto m = a.to_bool();
  std::int64_t rows = 1;
  if (a.shape.size() == 2) {
    rows = a.shape[0];
    if (a.shape[1] != n)
      throw Error(a.where() + ": expected shape (S, " + std::to_string(n) + "), found second dimension " +
                  std::to_string(a.shape[1]));
  } else if (a.shape.size() != 1 || a.shape[0] != n) {
    throw Error(a.where() + ": expected shape (S, " + std::to_string(n) + ") or (" + std::to_string(n) + ",)");
  }
  if (index < 0 || index >= rows)
    throw Error(a.where() + ": split index " + std::to_string(index) + " out of range (file has " +
                std::to_string(rows) + " splits)");
  return {m.begin() + std::ptrdiff_t(index) * n, m.begin() + std::ptrdiff_t(index + 1) * n};
}

Csr empty_adjacency(std::int64_t n) {
  Csr g;
  g.num_rows = g.num_cols = n;
  g.offsets.assign(std::size_t(n) + 1, 0);
  return g;
}

// The node count of a square CSR's shape member (layout B's adj_shape).
std::int64_t square_shape(const NpzFile& z, const std::string& member) {
  const auto shape = z.read(member).to_int64();
  if (shape.size() != 2) throw Error(z.path() + ": member '" + member + "': expected 2 entries");
  if (shape[0] != shape[1]) throw Error(z.path() + ": member '" + member + "': adjacency is not square");
  return shape[0];
}

Dataset load_layout_a(const NpzFile& z, const LoadOptions& opt) {
  Dataset d;
  const auto labels = z.read("node_labels");
  labels.expect_ndim(1);
  d.num_nodes = labels.shape[0];
  d.labels = labels_from(labels, d.num_nodes, &d.num_classes);

  if (opt.edges) {
    const auto edges = z.read("edges");
    edges.expect_ndim(2);
    if (edges.shape[1] != 2) throw Error(edges.where() + ": expected shape (E, 2)");
    const auto e = edges.to_int64();
    const std::int64_t m = edges.shape[0];
    std::vector<std::int64_t> src(m), dst(m);
    for (std::int64_t i = 0; i < m; ++i) src[i] = e[2 * i], dst[i] = e[2 * i + 1];
    d.adj = symmetrize(d.num_nodes, src, dst, edges.where().c_str());
  } else {
    d.adj = empty_adjacency(d.num_nodes);
  }

  const auto fh = opt.features ? z.read("node_features") : z.read_header("node_features");
  fh.expect_ndim(2);
  if (fh.shape[0] != d.num_nodes)
    throw Error(fh.where() + ": expected " + std::to_string(d.num_nodes) + " rows, found " +
                std::to_string(fh.shape[0]));
  if (fh.kind != 'f') throw Error(fh.where() + ": expected a float dtype, found '" + fh.descr + "'");
  d.num_features = fh.shape[1];
  if (opt.features) d.features = fh.to_float();

  // The masks of --split file:K, else set 0 (a classes / random split replaces them later).
  const int set = opt.split.kind == SplitSpec::Kind::file ? opt.split.file_index : 0;
  const auto train = z.read("train_masks");
  d.mask_sets = train.shape.size() == 2 ? int(train.shape[0]) : 1;
  d.train_mask = mask_row(train, d.num_nodes, set);
  d.val_mask = mask_row(z.read("val_masks"), d.num_nodes, set);
  d.test_mask = mask_row(z.read("test_masks"), d.num_nodes, set);
  // Unlabelled nodes never count in a split, whatever the file says.
  for (std::int64_t v = 0; v < d.num_nodes; ++v)
    if (d.labels[v] < 0) d.train_mask[v] = d.val_mask[v] = d.test_mask[v] = 0;
  d.split_rule = "file:" + std::to_string(set);
  return d;
}

// Reads a CSR triple (prefix_data, prefix_indices, prefix_indptr, prefix_shape).
struct CsrArrays {
  std::vector<std::int64_t> indptr, indices, shape;
  std::vector<float> data;
};
CsrArrays read_csr(const NpzFile& z, const std::string& prefix, bool with_data) {
  CsrArrays c;
  const auto shape = z.read(prefix + "_shape");
  c.shape = shape.to_int64();
  if (c.shape.size() != 2) throw Error(shape.where() + ": expected 2 entries");
  const auto indptr = z.read(prefix + "_indptr");
  indptr.expect_ndim(1);
  c.indptr = indptr.to_int64();
  if (std::int64_t(c.indptr.size()) != c.shape[0] + 1)
    throw Error(indptr.where() + ": expected " + std::to_string(c.shape[0] + 1) + " entries, found " +
                std::to_string(c.indptr.size()));
  const auto indices = z.read(prefix + "_indices");
  indices.expect_ndim(1);
  c.indices = indices.to_int64();
  if (std::int64_t(c.indices.size()) != c.indptr.back())
    throw Error(indices.where() + ": expected " + std::to_string(c.indptr.back()) + " entries, found " +
                std::to_string(c.indices.size()));
  for (auto col : c.indices)
    if (col < 0 || col >= c.shape[1])
      throw Error(indices.where() + ": column " + std::to_string(col) + " outside [0, " + std::to_string(c.shape[1]) +
                  ")");
  if (with_data) {
    const auto data = z.read(prefix + "_data");
    c.data = data.to_float();
    if (c.data.size() != c.indices.size())
      throw Error(data.where() + ": expected " + std::to_string(c.indices.size()) + " entries, found " +
                  std::to_string(c.data.size()));
  }
  return c;
}

Dataset load_layout_b(const NpzFile& z, const LoadOptions& opt) {
  Dataset d;
  if (opt.edges) {
    const auto adj = read_csr(z, "adj", false);
    if (adj.shape[0] != adj.shape[1]) throw Error(z.path() + ": member 'adj_shape': adjacency is not square");
    d.num_nodes = adj.shape[0];
    std::vector<std::int64_t> src(adj.indices.size());
    for (std::int64_t r = 0; r < d.num_nodes; ++r)
      for (std::int64_t k = adj.indptr[r]; k < adj.indptr[r + 1]; ++k) src[k] = r;
    d.adj = symmetrize(d.num_nodes, src, adj.indices, (z.path() + ": member 'adj_indices'").c_str());
  } else {
    d.num_nodes = square_shape(z, "adj_shape");
    d.adj = empty_adjacency(d.num_nodes);
  }

  d.labels = labels_from(z.read("labels"), d.num_nodes, &d.num_classes);

  if (opt.features) {
    const auto attr = read_csr(z, "attr", true);
    if (attr.shape[0] != d.num_nodes)
      throw Error(z.path() + ": member 'attr_shape': expected " + std::to_string(d.num_nodes) + " rows");
    d.num_features = attr.shape[1];
    d.features.assign(std::size_t(d.num_nodes * d.num_features), 0.0f);
    for (std::int64_t r = 0; r < d.num_nodes; ++r)
      for (std::int64_t k = attr.indptr[r]; k < attr.indptr[r + 1]; ++k)
        d.features[std::size_t(r * d.num_features + attr.indices[k])] += attr.data[k];
  } else {
    const auto shape = z.read("attr_shape").to_int64();
    if (shape.size() != 2) throw Error(z.path() + ": member 'attr_shape': expected 2 entries");
    d.num_features = shape[1];
  }
  per_class_split(d, 20, 30, opt.split_seed);
  return d;
}

}  // namespace

void normalize_features(Dataset& d, FeatureNorm norm) {
  const std::int64_t f = d.num_features;
  if (d.features.empty() || norm == FeatureNorm::none) return;
  for (std::int64_t v = 0; v < d.num_nodes; ++v) {
    float* row = d.features.data() + v * f;
    double s = 0;
    for (std::int64_t j = 0; j < f; ++j) s += norm == FeatureNorm::sum ? double(row[j]) : double(row[j]) * row[j];
    if (norm == FeatureNorm::l2) s = std::sqrt(s);
    if (s != 0)
      for (std::int64_t j = 0; j < f; ++j) row[j] = float(row[j] / s);
  }
}

FeatureNorm parse_feature_norm(const std::string& name) {
  if (name == "none") return FeatureNorm::none;
  if (name == "row") return FeatureNorm::sum;
  if (name == "l2") return FeatureNorm::l2;
  throw Error("feature_norm '" + name + "': unknown (allowed: none, row, l2)");
}

void save_npz(const Dataset& d, const std::string& path) {
  const auto n = std::uint64_t(d.num_nodes);
  if (d.features.size() != n * std::uint64_t(d.num_features))
    throw Error(path + ": dataset " + d.name + " was loaded without its features");
  std::vector<std::int64_t> labels(d.labels.begin(), d.labels.end()), edges;
  for (std::int64_t u = 0; u < d.num_nodes; ++u)
    for (std::int64_t k = d.adj.offsets[std::size_t(u)]; k < d.adj.offsets[std::size_t(u) + 1]; ++k)
      if (const std::int64_t v = d.adj.indices[std::size_t(k)]; u < v) {
        edges.push_back(u);
        edges.push_back(v);
      }
  const auto N = std::int64_t(n), E = std::int64_t(edges.size() / 2);
  write_npz(path, {{"node_features", "<f4", {N, d.num_features}, d.features.data(), d.features.size() * 4},
                   {"node_labels", "<i8", {N}, labels.data(), labels.size() * 8},
                   {"edges", "<i8", {E, 2}, edges.data(), edges.size() * 8},
                   {"train_masks", "|b1", {1, N}, d.train_mask.data(), n},
                   {"val_masks", "|b1", {1, N}, d.val_mask.data(), n},
                   {"test_masks", "|b1", {1, N}, d.test_mask.data(), n}});
}

namespace {
NpzLayout resolve_layout(const NpzFile& z, NpzLayout layout) {
  if (layout != NpzLayout::automatic) return layout;
  if (z.has("edges") || z.has("node_features")) return NpzLayout::edges_with_masks;
  if (z.has("adj_indptr") || z.has("attr_indptr")) return NpzLayout::csr_attributes;
  throw Error(z.path() +
              ": unknown npz layout (expected members 'edges', 'node_features', ... or "
              "'adj_indptr', 'attr_indptr', ...)");
}

// The pairs (r, indices[k]) of a CSR's rows [lo, hi) read by slices; columns checked against
// [0, cols). `prefix`: "adj" or "attr"; values too when `values` is given.
void csr_rows(const NpzFile& z, const std::string& prefix, std::int64_t lo, std::int64_t hi, std::int64_t cols,
              std::vector<std::int64_t>& rows, std::vector<std::int64_t>& columns, std::vector<float>* values) {
  const auto ptr_header = z.read_header(prefix + "_indptr");
  ptr_header.expect_ndim(1);
  const auto ptr = z.read_rows(prefix + "_indptr", lo, hi + 1).to_int64();
  const auto idx = z.read_rows(prefix + "_indices", ptr.front(), ptr.back()).to_int64();
  if (values) *values = z.read_rows(prefix + "_data", ptr.front(), ptr.back()).to_float();
  for (std::int64_t r = lo; r < hi; ++r)
    for (std::int64_t k = ptr[std::size_t(r - lo)]; k < ptr[std::size_t(r - lo) + 1]; ++k) {
      const std::int64_t c = idx[std::size_t(k - ptr.front())];
      if (c < 0 || c >= cols)
        throw Error(z.path() + ": member '" + prefix + "_indices': column " + std::to_string(c) + " outside [0, " +
                    std::to_string(cols) + ")");
      rows.push_back(r);
      columns.push_back(c);
    }
}
}  // namespace

std::optional<NpzSource> npz_source(const std::string& spec) {
  if (spec.starts_with("sbm:") || spec.starts_with("rmat:")) return std::nullopt;
  NpzSource s;
  if (const auto entry = find_registered(spec)) {
    if (!entry->synthetic.empty()) return std::nullopt;
    s.path = entry->file;
    s.layout = entry->layout == "A" ? NpzLayout::edges_with_masks : NpzLayout::csr_attributes;
    s.feature_norm = entry->feature_norm;
    return s;
  }
  if (!std::filesystem::is_regular_file(spec)) return std::nullopt;
  s.path = spec;
  s.layout = resolve_layout(NpzFile(spec), NpzLayout::automatic);
  return s;
}

NpzSlice read_npz_slice(const NpzSource& source, std::int64_t num_nodes, std::int64_t lo, std::int64_t hi, int q,
                        int parts) {
  const NpzFile z(source.path);
  NpzSlice out;
  if (resolve_layout(z, source.layout) == NpzLayout::edges_with_masks) {
    const auto head = z.read_header("edges");
    head.expect_ndim(2);
    if (head.shape[1] != 2) throw Error(head.where() + ": expected shape (E, 2)");
    const std::int64_t m = head.shape[0], first = m * q / parts, last = m * (q + 1) / parts;
    const auto e = z.read_rows("edges", first, last).to_int64();
    for (std::int64_t i = 0; i < last - first; ++i) {
      const std::int64_t u = e[std::size_t(2 * i)], v = e[std::size_t(2 * i + 1)];
      if (u < 0 || u >= num_nodes || v < 0 || v >= num_nodes)
        throw Error(head.where() + ": edge " + std::to_string(first + i) + " (" + std::to_string(u) + ", " +
                    std::to_string(v) + ") names a node outside [0, " + std::to_string(num_nodes) + ")");
      out.src.push_back(u);
      out.dst.push_back(v);
    }
    const auto f = z.read_rows("node_features", lo, hi);
    f.expect_ndim(2);
    if (f.kind != 'f') throw Error(f.where() + ": expected a float dtype, found '" + f.descr + "'");
    out.num_features = f.shape[1];
    out.features = f.to_float();
    return out;
  }
  if (square_shape(z, "adj_shape") != num_nodes)
    throw Error(z.path() + ": member 'adj_shape': expected " + std::to_string(num_nodes) + " nodes");
  csr_rows(z, "adj", lo, hi, num_nodes, out.src, out.dst, nullptr);
  const auto shape = z.read("attr_shape").to_int64();
  if (shape.size() != 2 || shape[0] != num_nodes)
    throw Error(z.path() + ": member 'attr_shape': expected (" + std::to_string(num_nodes) + ", F)");
  out.num_features = shape[1];
  std::vector<std::int64_t> rows, cols;
  std::vector<float> values;
  csr_rows(z, "attr", lo, hi, out.num_features, rows, cols, &values);
  out.features.assign(std::size_t((hi - lo) * out.num_features), 0.0f);
  for (std::size_t k = 0; k < rows.size(); ++k)
    out.features[std::size_t((rows[k] - lo) * out.num_features + cols[k])] += values[k];
  return out;
}

Dataset load_npz(const std::string& path, NpzLayout layout, const LoadOptions& options) {
  NpzFile z(path);
  layout = resolve_layout(z, layout);
  Dataset d = layout == NpzLayout::edges_with_masks ? load_layout_a(z, options) : load_layout_b(z, options);
  d.source = path;
  d.name = std::filesystem::path(path).stem().string();
  check_labels(d, path);
  return d;
}

namespace {

// The dataset of a spec with its own default split (a registered name: the registry's rule).
Dataset load_with_default_split(const std::string& spec, const LoadOptions& options) {
  if (spec.starts_with("sbm:") || spec.starts_with("rmat:")) return make_synthetic(spec, options);
  if (auto entry = find_registered(spec)) {
    Dataset d = !entry->synthetic.empty()
                    ? make_synthetic(entry->synthetic, options)
                    : load_npz(entry->file,
                               entry->layout == "A" ? NpzLayout::edges_with_masks : NpzLayout::csr_attributes, options);
    d.name = entry->name;
    if (options.split.kind == SplitSpec::Kind::dataset_default)
      apply_split(d, parse_split(entry->split, "registry.yaml: " + entry->name + ": split"), options.split_seed,
                  entry->name);
    normalize_features(d, parse_feature_norm(entry->feature_norm));
    return d;
  }
  namespace fs = std::filesystem;
  if (fs::is_directory(spec)) return load_ogb(spec, options);
  if (fs::is_regular_file(spec)) return load_npz(spec, NpzLayout::automatic, options);
  std::string names;
  try {
    for (const auto& e : load_registry()) names += (names.empty() ? "" : ", ") + e.name;
  } catch (const Error&) {
    names = "(registry unreadable)";
  }
  throw Error("--dataset '" + spec + "': not a registered name (" + names +
              "), an existing .npz / OGB folder, or a synthetic spec (sbm:..., rmat:...)");
}

}  // namespace

Dataset load_dataset(const std::string& spec, const LoadOptions& options) {
  Dataset d = load_with_default_split(spec, options);
  apply_split(d, options.split, options.split_seed, spec);
  return d;
}

}  // namespace adaqp::graph
