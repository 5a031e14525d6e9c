// A node-classification dataset in memory, and the one entry point that loads any dataset spec.
//
// Sizes: N = num_nodes, F = num_features, C = num_classes.
//   adj:       N x N symmetric pattern CSR without self-loops (models add their own).
//   features:  N * F floats, row-major (empty when LoadOptions::features is false).
//   labels:    N ints in [0, C), or -1 for an unlabelled node (never in a split mask).
//   *_mask:    N bytes, 1 = node in that split; the three splits are disjoint.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "graph/csr.hpp"
#include "graph/split.hpp"

namespace adaqp::graph {

struct Dataset {
  std::string name;        // registry name, file stem, or the synthetic spec
  std::string source;      // file / folder it came from, or "synthetic"
  std::string split_rule;  // the split drawn, e.g. "classes:20,30 (seed 0)", "file:0" (graph/split.hpp)
  Csr adj;
  std::int64_t num_nodes = 0;
  std::int64_t num_features = 0;
  int num_classes = 0;
  std::vector<float> features;
  std::vector<std::int32_t> labels;
  std::vector<std::uint8_t> train_mask, val_mask, test_mask;
  int mask_sets = 0;  // sets of split masks the file stores (layout A: S, OGB: 1; 0: none)

  std::int64_t num_directed_edges() const { return adj.nnz(); }
  std::int64_t count(const std::vector<std::uint8_t>& mask) const;
};

struct LoadOptions {
  bool features = true;          // false: graph, labels and splits only (F still reported)
  bool edges = true;             // false (sbm specs and npz files): labels and splits, an empty adjacency
  SplitSpec split;               // --split (graph/split.hpp); default: the dataset's own rule
  std::uint64_t split_seed = 0;  // seed of the random splits (classes, random)
};

// spec is one of:
//   a registered name (`adaqp datasets`), e.g. "cora";
//   a path to an .npz file in layout A or B (see datasets/README.md);
//   a path to an OGB node-property folder (raw/*.csv.gz, split/<name>/*.csv.gz);
//   a synthetic spec "sbm:key=value,..." or "rmat:key=value,..." (graph/synthetic.hpp).
// Throws adaqp::Error naming the spec, file, member or key at fault.
Dataset load_dataset(const std::string& spec, const LoadOptions& options = {});

// Loaders behind load_dataset (exposed for tests).
enum class NpzLayout { automatic, edges_with_masks /* A */, csr_attributes /* B */ };
Dataset load_npz(const std::string& path, NpzLayout layout, const LoadOptions& options);
Dataset load_ogb(const std::string& folder, const LoadOptions& options);

// The npz file behind a dataset spec (a registered file entry, or a path to an .npz), its layout
// resolved and the registry's feature normalisation ("none" for a bare path); nullopt for synthetic
// specs and OGB folders. Throws naming the file when its layout is neither A nor B.
struct NpzSource {
  std::string path;
  NpzLayout layout = NpzLayout::automatic;
  std::string feature_norm = "none";
};
std::optional<NpzSource> npz_source(const std::string& spec);

// Process q of `parts`' share of an npz file's graph, for partitioning a graph no process holds
// whole (graph/distributed_partition.hpp), read by slices (NpzFile::read_rows):
//   src, dst: the stored adjacency's pairs of its slice, not yet symmetrised (self-loops and
//             duplicates kept): layout A the edges [E q / parts, E (q + 1) / parts), layout B the
//             adjacency's rows [lo, hi); endpoints checked against [0, num_nodes), naming the member;
//   features: the rows [lo, hi) dense, before normalisation: (hi - lo) x num_features floats.
// Together the slices of all q give exactly load_npz's graph once symmetrised.
struct NpzSlice {
  std::vector<std::int64_t> src, dst;
  std::vector<float> features;
  std::int64_t num_features = 0;
};
NpzSlice read_npz_slice(const NpzSource& source, std::int64_t num_nodes, std::int64_t lo, std::int64_t hi, int q,
                        int parts);

// Writes d in layout A (datasets/README.md): node_features (N, F) f4, node_labels (N,) i8, edges
// (E, 2) i8 with each undirected pair once (u < v), train/val/test_masks (1, N) bool. Loading the
// file back (load_dataset of its path) gives the same graph, features, labels and split, so other
// frameworks can train on exactly what adaqp trains on (synthetic graphs included). Needs the
// features (LoadOptions::features). Atomic; throws adaqp::Error naming the path.
void save_npz(const Dataset& d, const std::string& path);

// Feature row normalisation: none; sum (each row scaled to sum 1, as Planetoid's GCN does;
// registry name "row"); l2 (each row scaled to unit Euclidean norm). Zero rows are left alone.
enum class FeatureNorm { none, sum, l2 };
FeatureNorm parse_feature_norm(const std::string& name);  // "none" | "row" | "l2"
void normalize_features(Dataset& d, FeatureNorm norm);

}  // namespace adaqp::graph
