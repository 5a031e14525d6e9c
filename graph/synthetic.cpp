#include "graph/synthetic.hpp"

#include <algorithm>
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/rmat_graph_generator.hpp>
#include <boost/random/linear_congruential.hpp>
#include <cmath>
#include <map>
#include <set>

#include "base/error.hpp"
#include "base/random.hpp"

namespace adaqp::graph {
namespace {

using Params = std::map<std::string, double>;

Params parse_spec(const std::string& spec, const Params& defaults, const std::set<std::string>& required) {
  const auto colon = spec.find(':');
  Params p = defaults;
  std::set<std::string> seen;
  std::string allowed;
  for (const auto& [k, v] : defaults) allowed += (allowed.empty() ? "" : ", ") + k;
  std::size_t start = colon + 1;
  while (start < spec.size()) {
    auto comma = spec.find(',', start);
    if (comma == std::string::npos) comma = spec.size();
    const std::string item = spec.substr(start, comma - start);
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw Error("--dataset '" + spec + "': '" + item + "' is not key=value");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (!defaults.count(key))
      throw Error("--dataset '" + spec + "': unknown key '" + key + "' (allowed: " + allowed + ")");
    try {
      std::size_t used = 0;
      p[key] = std::stod(value, &used);
      if (used != value.size()) throw std::invalid_argument(value);
    } catch (const std::exception&) {
      throw Error("--dataset '" + spec + "': key '" + key + "' has non-numeric value '" + value + "'");
    }
    seen.insert(key);
    start = comma + 1;
  }
  for (const auto& r : required)
    if (!seen.count(r)) throw Error("--dataset '" + spec + "': key '" + r + "' is required");
  return p;
}

void require(bool ok, const std::string& spec, const std::string& key, const std::string& allowed) {
  if (!ok) throw Error("--dataset '" + spec + "': key '" + key + "' must be " + allowed);
}

std::int64_t as_int(const Params& p, const char* key) {
  return std::int64_t(p.at(key));
}

void fill_gaussian_features(Dataset& d, std::uint64_t seed, const std::vector<float>* class_means, double noise) {
  const std::int64_t f = d.num_features;
  d.features.resize(std::size_t(d.num_nodes * f));
#pragma omp parallel for schedule(static)
  for (std::int64_t v = 0; v < d.num_nodes; ++v) {
    CounterRng rng(hash_key({seed, 0xfea7ULL, std::uint64_t(v)}));
    float* row = d.features.data() + v * f;
    const float* mu = class_means ? class_means->data() + std::int64_t(d.labels[v]) * f : nullptr;
    for (std::int64_t j = 0; j < f; ++j) row[j] = float((mu ? mu[j] : 0.0) + noise * rng.normal());
  }
}

}  // namespace

SbmGenerator::SbmGenerator(const std::string& spec) : spec_(spec) {
  const Params p = parse_spec(spec,
                              {{"nodes", 0},
                               {"classes", 0},
                               {"degree", 0},
                               {"seed", 0},
                               {"intra", 0.8},
                               {"features", 64},
                               {"noise", 1.0},
                               {"train", 20},
                               {"val", 30},
                               {"tail", 0}},
                              {"nodes", "classes", "degree"});
  nodes_ = as_int(p, "nodes");
  classes_ = int(as_int(p, "classes"));
  features_ = as_int(p, "features");
  const std::int64_t degree = as_int(p, "degree");
  seed_ = std::uint64_t(as_int(p, "seed"));
  intra_ = p.at("intra");
  noise_ = p.at("noise");
  const double tail = p.at("tail");
  train_ = int(as_int(p, "train"));
  val_ = int(as_int(p, "val"));
  require(nodes_ >= 2 && nodes_ < (std::int64_t(1) << 31), spec, "nodes", "in [2, 2^31)");
  require(classes_ >= 1 && classes_ <= nodes_, spec, "classes", "in [1, nodes]");
  require(degree >= 1 && degree < nodes_, spec, "degree", "in [1, nodes)");
  require(intra_ >= 0 && intra_ <= 1, spec, "intra", "in [0, 1]");
  require(features_ >= 1, spec, "features", ">= 1");
  require(noise_ >= 0, spec, "noise", ">= 0");
  require(tail == 0 || tail > 1, spec, "tail", "0 (off) or > 1");
  weighted_ = tail > 0;

  labels_.resize(std::size_t(nodes_));
  members_.resize(std::size_t(classes_));
  for (std::int64_t v = 0; v < nodes_; ++v) {
    labels_[std::size_t(v)] = std::int32_t(to_range(hash_key({seed_, 0xc1a55ULL, std::uint64_t(v)}), classes_));
    members_[std::size_t(labels_[std::size_t(v)])].push_back(v);
  }
  const std::int64_t half = std::max<std::int64_t>(1, degree / 2);
  // Node weights (1 without a tail), endpoints drawn per node, and per class the cumulative weight
  // of its members (endpoints are picked by weight).
  std::vector<double> weight(std::size_t(nodes_), 1.0);
  if (weighted_)
    for (std::int64_t v = 0; v < nodes_; ++v) {
      CounterRng rng(hash_key({seed_, 0x7a11ULL, std::uint64_t(v)}));
      weight[std::size_t(v)] = std::pow(1.0 - rng.uniform(), -1.0 / tail);  // u in (0, 1]
    }
  double mean_weight = 0;
  for (double w : weight) mean_weight += w / double(nodes_);
  first_.assign(std::size_t(nodes_) + 1, 0);
  for (std::int64_t v = 0; v < nodes_; ++v)
    first_[std::size_t(v) + 1] =
        first_[std::size_t(v)] +
        (weighted_ ? std::max<std::int64_t>(1, std::llround(double(half) * weight[std::size_t(v)] / mean_weight))
                   : half);
  if (weighted_) {
    cumulative_.resize(std::size_t(classes_));
    for (int c = 0; c < classes_; ++c) {
      double sum = 0;
      for (auto v : members_[std::size_t(c)]) cumulative_[std::size_t(c)].push_back(sum += weight[std::size_t(v)]);
    }
  }
}

void SbmGenerator::draws(std::int64_t lo, std::int64_t hi, std::vector<std::int64_t>& src,
                         std::vector<std::int64_t>& dst) const {
  const std::int64_t base = std::int64_t(src.size()) - first_[std::size_t(lo)];
  src.resize(src.size() + std::size_t(first_[std::size_t(hi)] - first_[std::size_t(lo)]));
  dst.resize(src.size());
#pragma omp parallel for schedule(dynamic, 1024)
  for (std::int64_t v = lo; v < hi; ++v) {
    CounterRng rng(hash_key({seed_, 0xed6eULL, std::uint64_t(v)}));
    const int c = labels_[std::size_t(v)];
    for (std::int64_t k = first_[std::size_t(v)]; k < first_[std::size_t(v) + 1]; ++k) {
      int target = c;
      if (classes_ > 1 && rng.uniform() >= intra_) {
        target = int(rng.below(std::uint64_t(classes_ - 1)));
        if (target >= c) ++target;
      }
      const auto& pool = members_[std::size_t(target)];
      std::int64_t u = v;
      if (!pool.empty() && weighted_) {
        const auto& cum = cumulative_[std::size_t(target)];
        const auto at = std::upper_bound(cum.begin(), cum.end(), rng.uniform() * cum.back()) - cum.begin();
        u = pool[std::size_t(std::min<std::ptrdiff_t>(at, std::ptrdiff_t(pool.size()) - 1))];
      } else if (!pool.empty()) {
        u = pool[rng.below(pool.size())];
      }
      src[std::size_t(base + k)] = v;
      dst[std::size_t(base + k)] = u;
    }
  }
}

std::vector<float> SbmGenerator::features(std::int64_t lo, std::int64_t hi) const {
  std::vector<float> means(std::size_t(classes_ * features_));
  CounterRng mean_rng(hash_key({seed_, 0x3ea7ULL}));
  for (auto& m : means) m = float(mean_rng.normal());
  std::vector<float> out(std::size_t((hi - lo) * features_));
  const std::int64_t f = features_;
#pragma omp parallel for schedule(static)
  for (std::int64_t v = lo; v < hi; ++v) {
    CounterRng rng(hash_key({seed_, 0xfea7ULL, std::uint64_t(v)}));
    float* row = out.data() + (v - lo) * f;
    const float* mu = means.data() + std::int64_t(labels_[std::size_t(v)]) * f;
    for (std::int64_t j = 0; j < f; ++j) row[j] = float(mu[j] + noise_ * rng.normal());
  }
  return out;
}

namespace {

Dataset make_sbm(const std::string& spec, const LoadOptions& opt) {
  const SbmGenerator g(spec);
  Dataset d;
  d.name = spec;
  d.source = "synthetic";
  d.num_nodes = g.nodes();
  d.num_classes = g.classes();
  d.num_features = g.num_features();
  d.labels = g.labels();
  if (opt.edges) {
    std::vector<std::int64_t> src, dst;
    g.draws(0, g.nodes(), src, dst);
    d.adj = symmetrize(d.num_nodes, src, dst, spec.c_str());
  } else {
    d.adj.num_rows = d.adj.num_cols = d.num_nodes;
    d.adj.offsets.assign(std::size_t(d.num_nodes) + 1, 0);
  }
  if (opt.features) d.features = g.features(0, g.nodes());
  per_class_split(d, g.train_per_class(), g.val_per_class(), g.seed() ^ opt.split_seed);
  return d;
}

Dataset make_rmat(const std::string& spec, const LoadOptions& opt) {
  const Params p = parse_spec(spec,
                              {{"scale", 0},
                               {"degree", 0},
                               {"seed", 0},
                               {"a", 0.57},
                               {"b", 0.19},
                               {"c", 0.19},
                               {"features", 32},
                               {"classes", 8}},
                              {"scale", "degree"});
  Dataset d;
  d.name = spec;
  d.source = "synthetic";
  const std::int64_t scale = as_int(p, "scale"), degree = as_int(p, "degree");
  const double a = p.at("a"), b = p.at("b"), c = p.at("c");
  require(scale >= 1 && scale <= 30, spec, "scale", "in [1, 30]");
  require(degree >= 1, spec, "degree", ">= 1");
  require(a > 0 && b >= 0 && c >= 0 && a + b + c < 1, spec, "a", "with b, c: a > 0, b, c >= 0, a + b + c < 1");
  d.num_nodes = std::int64_t(1) << scale;
  d.num_classes = int(as_int(p, "classes"));
  d.num_features = as_int(p, "features");
  require(d.num_classes >= 1, spec, "classes", ">= 1");
  require(d.num_features >= 1, spec, "features", ">= 1");

  using G = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS>;
  using Rmat = boost::rmat_iterator<boost::minstd_rand, G>;
  boost::minstd_rand gen(std::uint32_t(mix64(std::uint64_t(as_int(p, "seed"))) % 2147483646u) + 1u);
  const std::uint64_t m = std::uint64_t(d.num_nodes) * std::uint64_t(degree) / 2;
  std::vector<std::int64_t> src, dst;
  src.reserve(m);
  dst.reserve(m);
  for (Rmat it(gen, std::uint64_t(d.num_nodes), m, a, b, c, 1.0 - a - b - c, true), end; it != end; ++it) {
    src.push_back(std::int64_t(it->first));
    dst.push_back(std::int64_t(it->second));
  }
  d.adj = symmetrize(d.num_nodes, src, dst, spec.c_str());
  const auto seed = std::uint64_t(as_int(p, "seed"));
  d.labels.resize(d.num_nodes);
  for (std::int64_t v = 0; v < d.num_nodes; ++v)
    d.labels[v] = std::int32_t(to_range(hash_key({seed, 0xc1a55ULL, std::uint64_t(v)}), d.num_classes));
  if (opt.features) fill_gaussian_features(d, seed, nullptr, 1.0);
  per_class_split(d, 20, 30, seed ^ opt.split_seed);
  return d;
}

}  // namespace

Dataset make_synthetic(const std::string& spec, const LoadOptions& options) {
  if (spec.starts_with("sbm:")) return make_sbm(spec, options);
  if (spec.starts_with("rmat:")) return make_rmat(spec, options);
  throw Error("--dataset '" + spec + "': unknown synthetic generator (allowed: sbm, rmat)");
}

}  // namespace adaqp::graph
