// The dataset registry: datasets/registry.yaml, shipped with the project. Each entry names a file
// under the registry's folder, its npz layout, its split rule and what is published about it.
// The folder is $ADAQP_DATA_DIR if set, else the source tree's datasets/ folder.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace adaqp::graph {

struct RegistryEntry {
  std::string name;                          // e.g. "cora"
  std::string file;                          // absolute path of the .npz ("" for a synthetic entry)
  std::string layout;                        // "A" (edges + masks) or "B" (CSR attributes); "" when synthetic
  std::string synthetic;                     // instead of a file: a generator spec (graph/synthetic.hpp)
  std::string split;                         // default split rule (graph/split.hpp), e.g. "file", "classes:20,30"
  std::string feature_norm;                  // "row" or "none"
  std::string source;                        // provenance line
  std::optional<double> published_accuracy;  // fraction, with what it refers to in `published_note`
  std::string published_note;
};

std::string registry_dir();
// Parses the registry; throws adaqp::Error naming registry.yaml and the key on a malformed entry.
std::vector<RegistryEntry> load_registry();
std::optional<RegistryEntry> find_registered(const std::string& name);

}  // namespace adaqp::graph
