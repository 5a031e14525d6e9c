#include "experiments/manifest.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <regex>
#include <set>
#include <sstream>

#include "base/error.hpp"
#include "base/hash.hpp"
#include "graph/registry.hpp"
#include "graph/split.hpp"
#include "scheduler/adaptive.hpp"

namespace adaqp::experiments {

namespace {

using Check = std::function<std::string(const std::string&)>;  // "" when valid, else what is allowed

Check one_of(std::vector<std::string> allowed) {
  return [allowed](const std::string& v) -> std::string {
    for (const auto& a : allowed)
      if (v == a) return "";
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    return "allowed: " + list;
  };
}

Check integer(long long lo) {
  return [lo](const std::string& v) -> std::string {
    try {
      std::size_t used = 0;
      const long long x = std::stoll(v, &used);
      if (used == v.size() && x >= lo) return "";
    } catch (const std::exception&) {
    }
    return "an integer >= " + std::to_string(lo);
  };
}

Check real(double lo, double hi, bool hi_open, const std::string& text) {
  return [=](const std::string& v) -> std::string {
    try {
      std::size_t used = 0;
      const double x = std::stod(v, &used);
      if (used == v.size() && x >= lo && (hi_open ? x < hi : x <= hi)) return "";
    } catch (const std::exception&) {
    }
    return text;
  };
}

std::string check_dataset(const std::string& v) {
  if (v.find(':') != std::string::npos || v.find('/') != std::string::npos) return "";  // spec or path
  if (graph::find_registered(v)) return "";
  std::string list;
  for (const auto& e : graph::load_registry()) list += (list.empty() ? "" : ", ") + e.name;
  return "a registered dataset (" + list + "), a path or a synthetic spec";
}

std::string check_split(const std::string& v) {
  try {
    graph::parse_split(v);
    return "";
  } catch (const Error&) {
    return "classes:TRAIN,VAL, random:TRAIN,VAL with fractions summing below 1, file or file:K";
  }
}

std::string check_link(const std::string& v) {
  return v == "none" || std::isfinite(link_rate_gbps(v)) ? "" : "none or a rate such as 100mbit, 1gbit";
}

std::string check_profile(const std::string& v) {
  return std::filesystem::exists(v) ? "" : "a calibration profile that exists (see profiles/)";
}

const std::map<std::string, Check>& checks() {
  static const std::map<std::string, Check> c = {
      {"executor", one_of({"engine", "simulator", "both"})},
      {"dataset", check_dataset},
      {"partition", one_of({"metis", "metis-vol", "metis-edges", "random"})},
      {"parts", integer(1)},
      {"model", one_of({"gcn", "sage"})},
      {"layers", integer(1)},
      {"hidden", integer(1)},
      {"dropout", real(0, 1, true, "a number in [0, 1)")},
      {"lr", real(1e-300, 1e300, false, "a number > 0")},
      {"lr_schedule", one_of({"constant", "cosine"})},
      {"weight_decay", real(0, 1e300, false, "a number >= 0")},
      {"mode", one_of({"vanilla", "quant", "overlap", "adaqp"})},
      {"bits", one_of({"1", "2", "4", "8", "16", "fp16", "bf16", "32", "adaptive"})},
      {"widths",
       [](const std::string& v) -> std::string {
         try {
           if (scheduler::widths_name(scheduler::parse_widths(v)) == v) return "";
         } catch (const Error&) {
         }
         return "distinct quantized widths, increasing, comma-separated (e.g. 1,2,4,8)";
       }},
      {"stale", one_of({"false", "true"})},
      {"stale_bound",
       [](const std::string& v) -> std::string {
         if (v == "none" || v == "auto") return "";
         try {
           std::size_t used = 0;
           if (std::stoll(v, &used) >= 1 && used == v.size()) return "";
         } catch (const std::exception&) {
         }
         return "none, auto or an integer >= 1 (epochs)";
       }},
      {"allreduce", one_of({"overlap", "after"})},
      {"stale_momentum", real(0, 1, true, "a number in [0, 1)")},
      {"boundary_rate",
       [](const std::string& v) -> std::string {
         try {
           std::size_t used = 0;
           const double x = std::stod(v, &used);
           if (used == v.size() && x > 0 && x <= 1) return "";
         } catch (const std::exception&) {
         }
         return "a number in (0, 1]";
       }},
      {"lambda", real(0, 1, false, "a number in [0, 1]")},
      {"group_size", integer(1)},
      {"assign_period", integer(1)},
      {"assign_time",
       [](const std::string& v) -> std::string {
         const std::string allowed = "range, compute or a number of seconds > 0";
         return v == "range" || v == "compute" ? "" : real(1e-300, 1e300, false, allowed)(v);
       }},
      {"link", check_link},
      {"seed", integer(0)},
      {"split", check_split},
      {"link_model",
       [](const std::string& v) -> std::string {
         static const std::regex model(R"(^[0-9]+(\.[0-9]+)?:[0-9]+(\.[0-9]+)?$)");
         return v == "probe" || std::regex_match(v, model) ? "" : "probe or ALPHA_US:GBPS (e.g. 50:0.25)";
       }},
      {"split_seed",
       [](const std::string& v) -> std::string {
         return v == "seed" || integer(0)(v).empty() ? "" : "seed or an integer >= 0";
       }},
      {"epochs", integer(1)},
      {"eval_every", integer(1)},
      {"threads", integer(0)},
      {"profile", check_profile},
      {"topology",
       [](const std::string& v) -> std::string {
         static const std::regex nodes(R"(^nodes=[0-9]+x[0-9]+$)");
         return v == "flat" || v == "shared" || std::regex_match(v, nodes) ? "" : "flat, shared or nodes=NxG";
       }},
  };
  return c;
}

std::string scalar_text(const YAML::Node& n) {
  if (!n.IsScalar()) throw std::invalid_argument("not a scalar");
  return n.as<std::string>();
}

// A key's value: one scalar or a non-empty list of scalars.
std::vector<std::string> values_of(const YAML::Node& n, const std::string& path, const std::string& key) {
  std::vector<std::string> out;
  if (n.IsScalar()) {
    out.push_back(n.as<std::string>());
  } else if (n.IsSequence()) {
    if (n.size() == 0) throw Error(path + ": key '" + key + "': empty list (give at least one value)");
    for (const auto& v : n) {
      if (!v.IsScalar()) throw Error(path + ": key '" + key + "': list items must be single values");
      out.push_back(v.as<std::string>());
    }
  } else {
    throw Error(path + ": key '" + key + "': expected a value or a list of values");
  }
  return out;
}

void check_values(const std::string& path, const std::string& key, const std::vector<std::string>& values) {
  const auto& c = checks().at(key);
  for (const auto& v : values)
    if (const std::string allowed = c(v); !allowed.empty())
      throw Error(path + ": key '" + key + "': value '" + v + "' (" + allowed + ")");
}

}  // namespace

const std::map<std::string, std::string>& axis_defaults() {
  static const std::map<std::string, std::string> d = {
      {"executor", "engine"},
      {"dataset", ""},
      {"partition", "metis"},
      {"parts", "1"},
      {"model", "gcn"},
      {"layers", "2"},
      {"hidden", "64"},
      {"dropout", "0.5"},
      {"lr", "0.01"},
      {"lr_schedule", "constant"},
      {"weight_decay", "5e-4"},
      {"mode", "vanilla"},
      {"bits", ""},
      {"lambda", "0.5"},
      {"group_size", "100"},
      {"assign_period", "50"},
      {"link", "none"},
      {"seed", "0"},
      {"epochs", "200"},
      {"eval_every", "1"},
      {"threads", "0"},
      {"profile", "profiles/this-machine.yaml"},
      {"topology", "flat"},
      {"stale", "false"},
      {"stale_momentum", "0"},
      {"boundary_rate", "1"},
      {"split", ""},
      {"split_seed", "0"},
      {"link_model", "probe"},
      {"assign_time", "range"},
      {"widths", "2,4,8"},
      {"stale_bound", "none"},
      {"allreduce", "overlap"},
  };
  return d;
}

Manifest load_manifest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the manifest");
  std::stringstream text;
  text << in.rdbuf();
  YAML::Node root;
  try {
    root = YAML::Load(text.str());
  } catch (const YAML::Exception& e) {
    throw Error(path + ": not valid YAML (line " + std::to_string(e.mark.line + 1) + ")");
  }
  if (!root.IsMap()) throw Error(path + ": a manifest is a YAML map of keys");
  Manifest m;
  m.path = path;
  m.hash = fnv1a_hex(text.str());
  for (const auto& kv : root) {
    const auto key = kv.first.as<std::string>();
    if (key == "name" || key == "description") {
      try {
        (key == "name" ? m.name : m.description) = scalar_text(kv.second);
      } catch (const std::exception&) {
        throw Error(path + ": key '" + key + "': expected text");
      }
      continue;
    }
    if (key == "exclude") {
      if (!kv.second.IsSequence()) throw Error(path + ": key 'exclude': expected a list of {key: values} maps");
      for (const auto& entry : kv.second) {
        if (!entry.IsMap() || entry.size() == 0)
          throw Error(path + ": key 'exclude': every entry is a non-empty map of axis keys to values");
        std::map<std::string, std::vector<std::string>> e;
        for (const auto& ekv : entry) {
          const auto ek = ekv.first.as<std::string>();
          if (!checks().count(ek)) throw Error(path + ": key 'exclude': unknown axis key '" + ek + "'");
          e[ek] = values_of(ekv.second, path, "exclude." + ek);
          check_values(path, ek, e[ek]);
        }
        m.exclude.push_back(e);
      }
      continue;
    }
    if (!checks().count(key)) {
      std::string list = "name, description, exclude";
      for (const auto& [k, d] : axis_defaults()) list += ", " + k;
      throw Error(path + ": unknown key '" + key + "' (allowed: " + list + ")");
    }
    m.axes[key] = values_of(kv.second, path, key);
    check_values(path, key, m.axes[key]);
  }
  if (m.name.empty()) throw Error(path + ": key 'name' is required");
  if (!m.axes.count("dataset")) throw Error(path + ": key 'dataset' is required");
  // Partition models (dataset shape:...) and topologies exist only in the simulator: every point
  // the engine runs (after the excludes) must have a real dataset and the flat topology.
  for (const auto& p : expand(m)) {
    if (p.values.at("executor") == "simulator") continue;
    const std::string& d = p.values.at("dataset");
    if (d.rfind("shape:", 0) == 0)
      throw Error(
          path + ": key 'dataset': value '" + d +
          "' is a partition model, simulator only (executor: simulator, or exclude it from the engine's points)");
    if (p.values.at("topology") != "flat")
      throw Error(path + ": key 'topology': value '" + p.values.at("topology") +
                  "': the engine runs on this machine; topologies are for executor: simulator (exclude them from "
                  "the engine's points)");
  }
  return m;
}

double link_rate_gbps(const std::string& link) {
  static const std::regex rate(R"(^([0-9]+(\.[0-9]+)?)(kbit|mbit|gbit)$)");
  std::smatch m;
  if (!std::regex_match(link, m, rate)) return std::numeric_limits<double>::quiet_NaN();
  const double scale = m[3] == "kbit" ? 1e-6 : m[3] == "mbit" ? 1e-3 : 1.0;
  return std::stod(m[1]) * scale;
}

std::vector<Point> expand(const Manifest& m) {
  static const std::set<std::string> kLaterKeys = {"stale",       "stale_momentum", "boundary_rate", "split",
                                                   "split_seed",  "link_model",     "assign_time",   "widths",
                                                   "stale_bound", "allreduce",      "lr_schedule"};
  std::vector<std::pair<std::string, std::vector<std::string>>> axes;
  for (const auto& [key, def] : axis_defaults()) {
    const auto it = m.axes.find(key);
    axes.push_back({key, it != m.axes.end() ? it->second : std::vector<std::string>{def}});
  }
  std::vector<Point> out;
  std::set<std::string> seen;
  std::vector<std::size_t> idx(axes.size(), 0);
  while (true) {
    Point p;
    for (std::size_t a = 0; a < axes.size(); ++a) p.values[axes[a].first] = axes[a].second[idx[a]];
    auto& bits = p.values["bits"];
    const std::string& mode = p.values["mode"];
    const bool fp32_mode = mode == "vanilla" || mode == "overlap";
    if (bits.empty()) bits = fp32_mode ? "32" : "8";
    bool keep = !(fp32_mode && bits != "32");  // vanilla / overlap exchange fp32 only
    // Peer strategies only where they combine (scheduler/peers.hpp): stale pipelining with the
    // non-overlapped modes, not with sampling; momentum only with staleness; sampling not with adaptive.
    const bool stale = p.values["stale"] == "true", sampled = std::stod(p.values["boundary_rate"]) < 1;
    if (stale && (mode == "overlap" || mode == "adaqp")) keep = false;
    if (stale && sampled) keep = false;
    if (!stale && std::stod(p.values["stale_momentum"]) > 0) keep = false;
    if (!stale && p.values["stale_bound"] != "none") keep = false;
    if (sampled && bits == "adaptive") keep = false;
    if (bits != "adaptive" && p.values["widths"] != axis_defaults().at("widths")) keep = false;  // adaptive only
    for (const auto& e : m.exclude) {
      bool all = true;
      for (const auto& [k, vs] : e) all = all && std::find(vs.begin(), vs.end(), p.values[k]) != vs.end();
      if (all) keep = false;
    }
    if (keep) {
      std::string key;  // keys added later stay out at their defaults, so older sweeps keep their ids
      for (const auto& [k, v] : p.values)
        if (!(kLaterKeys.count(k) && v == axis_defaults().at(k))) key += k + "=" + v + ";";
      if (seen.insert(key).second) {
        std::string ds = p.values["dataset"];
        for (auto& c : ds)
          if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '_';
        if (ds.size() > 24) ds.resize(24);  // the hash keeps ids unique
        std::string peers;
        if (stale) peers = "-stale" + (p.values["stale_momentum"] != "0" ? "m" + p.values["stale_momentum"] : "");
        if (sampled) peers = "-bns" + p.values["boundary_rate"];
        p.id = ds + "-" + mode + "-" + bits + peers + "-p" + p.values["parts"] + "-" + p.values["link"] + "-s" +
               p.values["seed"] + "-" + fnv1a_hex(key).substr(0, 8);
        out.push_back(std::move(p));
      }
    }
    // next index (last axis fastest)
    std::size_t a = axes.size();
    while (a > 0) {
      --a;
      if (++idx[a] < axes[a].second.size()) break;
      idx[a] = 0;
      if (a == 0) return out;
    }
    if (axes.empty()) return out;
  }
}

}  // namespace adaqp::experiments
