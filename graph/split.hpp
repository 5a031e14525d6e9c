// Split protocols: how a dataset's labelled nodes are divided into train / validation / test
// masks (`--split`, the registry's `split`, manifests' `split` axis). Unlabelled nodes (label -1)
// are never in a mask. Every rule is deterministic in (dataset, spec, split seed), so every rank
// of a run draws the same masks on its own.
//
//   classes:T,V   per class, T training and V validation nodes drawn at random, the rest of the
//                 class is test (Shchur et al.'s 20 / 30 protocol is classes:20,30).
//   random:A,B    fractions of all labelled nodes: the first floor(A n) nodes of a random
//                 permutation train, the next floor(B n) validation, the rest test
//                 (0 < A, 0 < B, A + B < 1).
//   file[:K]      the K-th set of masks stored in the dataset file (layout A npz files with S sets:
//                 K < S; OGB folders have one, K = 0).
//   (empty)       the dataset's default: the registry's `split` for registered names, else the
//                 file's masks 0 (layout A, OGB), classes:20,30 (layout B), or the synthetic
//                 generator's own per-class counts.
#pragma once
#include <cstdint>
#include <string>

namespace adaqp::graph {

struct Dataset;

struct SplitSpec {
  enum class Kind { dataset_default, classes, random, file };
  Kind kind = Kind::dataset_default;
  int train_per_class = 0, val_per_class = 0;   // classes
  double train_fraction = 0, val_fraction = 0;  // random
  int file_index = 0;                           // file
  bool operator==(const SplitSpec&) const = default;
};

// Parses a spec; `where` names its origin in the error ("--split", "registry.yaml: cora: split").
// Throws adaqp::Error with one line naming the spec and what is wrong.
SplitSpec parse_split(const std::string& text, const std::string& where = "--split");
// Canonical text of a spec ("classes:20,30", "random:0.6,0.2", "file:3"); "" for the default.
std::string to_string(const SplitSpec& s);

// Draws the masks of a classes:T,V split. strict: a class with fewer than T + V labelled nodes is
// an error (a spec the user asked for); otherwise such a class gives what it has, train first.
// Sets d.split_rule to "classes:T,V (seed S)".
void per_class_split(Dataset& d, int train_per_class, int val_per_class, std::uint64_t seed, bool strict = false);
// Draws the masks of a random:A,B split; sets d.split_rule to "random:A,B (seed S)". Throws
// adaqp::Error when a part would be empty.
void random_split(Dataset& d, double train_fraction, double val_fraction, std::uint64_t seed);

// Applies a spec to a loaded dataset: classes / random draw new masks (strict), file checks that the
// loader read the masks it names (the loader reads set K), the default leaves the loader's.
// `where` names the dataset in errors.
void apply_split(Dataset& d, const SplitSpec& s, std::uint64_t seed, const std::string& where);

}  // namespace adaqp::graph
