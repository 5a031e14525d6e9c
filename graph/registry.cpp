#include "graph/registry.hpp"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>

#include "adaqp/build_info.hpp"
#include "base/error.hpp"
#include "graph/split.hpp"

namespace adaqp::graph {

std::string registry_dir() {
  if (const char* env = std::getenv("ADAQP_DATA_DIR"); env && *env) return env;
  return std::string(build::kSourceDir) + "/datasets";
}

std::vector<RegistryEntry> load_registry() {
  const std::string path = registry_dir() + "/registry.yaml";
  if (!std::filesystem::exists(path))
    throw Error(path + ": dataset registry not found (set ADAQP_DATA_DIR to the datasets folder)");
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw Error(path + ": " + e.what());
  }
  const auto list = root["datasets"];
  if (!list || !list.IsSequence()) throw Error(path + ": key 'datasets' must be a list");
  std::vector<RegistryEntry> out;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto n = list[i];
    auto get = [&](const char* key, bool required) -> std::string {
      if (!n[key]) {
        if (required) throw Error(path + ": datasets[" + std::to_string(i) + "]: missing key '" + key + "'");
        return "";
      }
      return n[key].as<std::string>();
    };
    RegistryEntry e;
    e.name = get("name", true);
    e.synthetic = get("synthetic", false);
    if (e.synthetic.empty()) {
      e.file = registry_dir() + "/" + get("file", true);
      e.layout = get("layout", true);
    } else if (n["file"] || n["layout"]) {
      throw Error(path + ": " + e.name + ": give 'synthetic' or 'file' and 'layout', not both");
    }
    e.split = get("split", true);
    e.feature_norm = get("feature_norm", true);
    e.source = get("source", true);
    e.published_note = get("published_note", false);
    if (n["published_accuracy"]) e.published_accuracy = n["published_accuracy"].as<double>();
    if (e.synthetic.empty() && e.layout != "A" && e.layout != "B")
      throw Error(path + ": " + e.name + ": layout '" + e.layout + "' (allowed: A, B)");
    parse_split(e.split, path + ": " + e.name + ": split");  // throws on a malformed rule
    if (e.feature_norm != "row" && e.feature_norm != "none" && e.feature_norm != "l2")
      throw Error(path + ": " + e.name + ": feature_norm '" + e.feature_norm + "' (allowed: row, l2, none)");
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<RegistryEntry> find_registered(const std::string& name) {
  for (auto& e : load_registry())
    if (e.name == name) return e;
  return std::nullopt;
}

}  // namespace adaqp::graph
