#include "graph/split.hpp"

#include <charconv>
#include <cmath>
#include <vector>

#include "base/error.hpp"
#include "base/random.hpp"
#include "graph/dataset.hpp"

namespace adaqp::graph {

namespace {

[[noreturn]] void bad(const std::string& where, const std::string& text, const std::string& why) {
  throw Error(where + " '" + text + "': " + why +
              " (allowed: classes:TRAIN,VAL per class, random:TRAIN,VAL as fractions, file or file:K)");
}

// "a,b" -> two numbers (integers when `integers`); false when malformed.
bool two_numbers(const std::string& s, bool integers, double& a, double& b) {
  const auto comma = s.find(',');
  if (comma == std::string::npos || s.find(',', comma + 1) != std::string::npos) return false;
  auto number = [&](std::string_view t, double& out) {
    if (t.empty()) return false;
    if (integers) {
      long long v = 0;
      const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
      out = double(v);
      return r.ec == std::errc() && r.ptr == t.data() + t.size();
    }
    const auto r = std::from_chars(t.data(), t.data() + t.size(), out);
    return r.ec == std::errc() && r.ptr == t.data() + t.size() && std::isfinite(out);
  };
  const std::string_view v(s);
  return number(v.substr(0, comma), a) && number(v.substr(comma + 1), b);
}

std::string shortest(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

void clear_masks(Dataset& d) {
  d.train_mask.assign(std::size_t(d.num_nodes), 0);
  d.val_mask.assign(std::size_t(d.num_nodes), 0);
  d.test_mask.assign(std::size_t(d.num_nodes), 0);
}

// Fisher-Yates with a counter-based stream: the order depends only on (nodes, key).
void shuffle(std::vector<std::int64_t>& nodes, std::uint64_t key) {
  CounterRng rng(key);
  for (std::size_t i = nodes.size(); i > 1; --i) std::swap(nodes[i - 1], nodes[rng.below(i)]);
}

}  // namespace

SplitSpec parse_split(const std::string& text, const std::string& where) {
  SplitSpec s;
  if (text.empty() || text == "default") return s;
  const auto colon = text.find(':');
  const std::string form = text.substr(0, colon), args = colon == std::string::npos ? "" : text.substr(colon + 1);
  double a = 0, b = 0;
  if (form == "classes") {
    s.kind = SplitSpec::Kind::classes;
    if (!two_numbers(args, true, a, b)) bad(where, text, "expected classes:TRAIN,VAL with two whole numbers");
    if (a < 1 || b < 0 || a > 1e9 || b > 1e9) bad(where, text, "needs TRAIN >= 1 and VAL >= 0 nodes per class");
    s.train_per_class = int(a);
    s.val_per_class = int(b);
  } else if (form == "random") {
    s.kind = SplitSpec::Kind::random;
    if (!two_numbers(args, false, a, b)) bad(where, text, "expected random:TRAIN,VAL with two fractions");
    if (!(a > 0 && b > 0)) bad(where, text, "fractions must be > 0");
    if (!(a + b < 1)) bad(where, text, "fractions sum to " + shortest(a + b) + ", leaving no test nodes (need < 1)");
    s.train_fraction = a;
    s.val_fraction = b;
  } else if (form == "file") {
    s.kind = SplitSpec::Kind::file;
    if (colon != std::string::npos) {
      long long k = -1;
      const auto r = std::from_chars(args.data(), args.data() + args.size(), k);
      if (args.empty() || r.ec != std::errc() || r.ptr != args.data() + args.size() || k < 0 || k > 1000000)
        bad(where, text, "expected file or file:K with K a mask set index >= 0");
      s.file_index = int(k);
    }
  } else {
    bad(where, text, "unknown form '" + form + "'");
  }
  return s;
}

std::string to_string(const SplitSpec& s) {
  switch (s.kind) {
    case SplitSpec::Kind::dataset_default:
      return "";
    case SplitSpec::Kind::classes:
      return "classes:" + std::to_string(s.train_per_class) + "," + std::to_string(s.val_per_class);
    case SplitSpec::Kind::random:
      return "random:" + shortest(s.train_fraction) + "," + shortest(s.val_fraction);
    case SplitSpec::Kind::file:
      return "file:" + std::to_string(s.file_index);
  }
  return "";
}

void per_class_split(Dataset& d, int train_per_class, int val_per_class, std::uint64_t seed, bool strict) {
  clear_masks(d);
  std::vector<std::vector<std::int64_t>> by_class(std::size_t(d.num_classes));
  for (std::int64_t v = 0; v < d.num_nodes; ++v)
    if (d.labels[v] >= 0) by_class[std::size_t(d.labels[v])].push_back(v);
  const std::size_t need = std::size_t(train_per_class) + std::size_t(val_per_class);
  for (int c = 0; c < d.num_classes; ++c) {
    auto& nodes = by_class[std::size_t(c)];
    if (strict && nodes.size() < need)
      throw Error(d.name + ": --split classes:" + std::to_string(train_per_class) + "," +
                  std::to_string(val_per_class) + ": class " + std::to_string(c) + " has " +
                  std::to_string(nodes.size()) + " labelled nodes, fewer than the " + std::to_string(need) + " asked");
    shuffle(nodes, hash_key({seed, 0x5b117ULL, std::uint64_t(c)}));
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (i < std::size_t(train_per_class))
        d.train_mask[nodes[i]] = 1;
      else if (i < need)
        d.val_mask[nodes[i]] = 1;
      else
        d.test_mask[nodes[i]] = 1;
    }
  }
  d.split_rule = "classes:" + std::to_string(train_per_class) + "," + std::to_string(val_per_class) + " (seed " +
                 std::to_string(seed) + ")";
}

void random_split(Dataset& d, double train_fraction, double val_fraction, std::uint64_t seed) {
  clear_masks(d);
  std::vector<std::int64_t> nodes;
  for (std::int64_t v = 0; v < d.num_nodes; ++v)
    if (d.labels[v] >= 0) nodes.push_back(v);
  const auto n = std::int64_t(nodes.size());
  const auto n_train = std::int64_t(std::floor(train_fraction * double(n)));
  const auto n_val = std::int64_t(std::floor(val_fraction * double(n)));
  const std::string spec = "random:" + shortest(train_fraction) + "," + shortest(val_fraction);
  if (n_train < 1 || n_val < 1 || n_train + n_val >= n)
    throw Error(d.name + ": --split " + spec + ": " + std::to_string(n) + " labelled nodes give " +
                std::to_string(n_train) + " train / " + std::to_string(n_val) + " validation / " +
                std::to_string(n - n_train - n_val) + " test; every part needs at least one");
  shuffle(nodes, hash_key({seed, 0x7a4d0ULL}));
  for (std::int64_t i = 0; i < n; ++i) {
    auto& mask = i < n_train ? d.train_mask : i < n_train + n_val ? d.val_mask : d.test_mask;
    mask[std::size_t(nodes[std::size_t(i)])] = 1;
  }
  d.split_rule = spec + " (seed " + std::to_string(seed) + ")";
}

void apply_split(Dataset& d, const SplitSpec& s, std::uint64_t seed, const std::string& where) {
  switch (s.kind) {
    case SplitSpec::Kind::dataset_default:
      return;
    case SplitSpec::Kind::classes:
      per_class_split(d, s.train_per_class, s.val_per_class, seed, true);
      return;
    case SplitSpec::Kind::random:
      random_split(d, s.train_fraction, s.val_fraction, seed);
      return;
    case SplitSpec::Kind::file:
      if (d.mask_sets == 0)
        throw Error(where + ": --split " + to_string(s) +
                    ": the dataset stores no split masks (use classes:TRAIN,VAL or random:TRAIN,VAL)");
      if (s.file_index >= d.mask_sets)  // loaders read set K and fail first; kept as the rule
        throw Error(where + ": --split " + to_string(s) + ": the dataset stores " + std::to_string(d.mask_sets) +
                    " mask set(s)");
      return;
  }
}

}  // namespace adaqp::graph
