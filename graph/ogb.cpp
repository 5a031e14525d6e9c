// OGB raw node-property layout: FOLDER/raw/{edge,node-feat,node-label[,num-node-list]}.csv.gz and
// FOLDER/split/<name>/{train,valid,test}.csv.gz (one split folder; the first by name if several).
#include <zlib.h>

#include <charconv>
#include <cmath>
#include <filesystem>
#include <functional>
#include <string_view>

#include "base/error.hpp"
#include "graph/dataset.hpp"

namespace adaqp::graph {
namespace {

namespace fs = std::filesystem;

// Calls fn(line, line_number) for every non-empty line of a gzip (or plain) text file.
void for_each_line(const std::string& path, const std::function<void(std::string_view, std::int64_t)>& fn) {
  if (!fs::exists(path)) throw Error(path + ": file is missing");
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw Error(path + ": cannot open file");
  std::string carry;
  std::vector<char> buf(1 << 20);
  std::int64_t line_no = 0;
  auto emit = [&](std::string_view s) {
    ++line_no;
    if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
    if (!s.empty()) fn(s, line_no);
  };
  try {
    for (;;) {
      const int n = gzread(f, buf.data(), unsigned(buf.size()));
      if (n < 0) {
        int errnum = 0;
        throw Error(path + ": corrupt or truncated gzip (" + gzerror(f, &errnum) + ")");
      }
      if (n == 0) break;
      std::string_view chunk(buf.data(), std::size_t(n));
      std::size_t start = 0;
      for (std::size_t nl; (nl = chunk.find('\n', start)) != std::string_view::npos; start = nl + 1) {
        if (carry.empty()) {
          emit(chunk.substr(start, nl - start));
        } else {
          carry.append(chunk.substr(start, nl - start));
          emit(carry);
          carry.clear();
        }
      }
      carry.append(chunk.substr(start));
    }
    if (!carry.empty()) emit(carry);
  } catch (...) {
    gzclose(f);
    throw;
  }
  gzclose(f);
}

template <class T>
T parse_number(std::string_view s, const std::string& path, std::int64_t line) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  T v{};
  if constexpr (std::is_integral_v<T>) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && p == s.data() + s.size()) return v;
    double d = 0;  // labels are sometimes written as floats ("3.0") or "nan"
    auto [p2, ec2] = std::from_chars(s.data(), s.data() + s.size(), d);
    if (ec2 == std::errc() && p2 == s.data() + s.size()) return std::isnan(d) ? T(-1) : T(d);
    if (s == "nan" || s == "NaN") return T(-1);
  } else {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && p == s.data() + s.size()) return v;
  }
  throw Error(path + ":" + std::to_string(line) + ": cannot parse '" + std::string(s) + "' as a number");
}

template <class T>
void split_fields(std::string_view line, const std::string& path, std::int64_t line_no, std::vector<T>& out) {
  std::size_t start = 0;
  for (;;) {
    const auto comma = line.find(',', start);
    out.push_back(parse_number<T>(line.substr(start, comma - start), path, line_no));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
}

std::vector<std::uint8_t> read_split(const std::string& path, std::int64_t n) {
  std::vector<std::uint8_t> mask(n, 0);
  for_each_line(path, [&](std::string_view s, std::int64_t line) {
    const auto v = parse_number<std::int64_t>(s, path, line);
    if (v < 0 || v >= n)
      throw Error(path + ":" + std::to_string(line) + ": node " + std::to_string(v) + " outside [0, " +
                  std::to_string(n) + ")");
    mask[v] = 1;
  });
  return mask;
}

}  // namespace

Dataset load_ogb(const std::string& folder, const LoadOptions& options) {
  const fs::path root(folder);
  Dataset d;
  d.name = root.filename().string();
  if (d.name.empty()) d.name = root.parent_path().filename().string();
  d.source = folder;

  const std::string label_path = (root / "raw" / "node-label.csv.gz").string();
  std::vector<std::int64_t> labels;
  for_each_line(label_path, [&](std::string_view s, std::int64_t line) {
    labels.push_back(parse_number<std::int64_t>(s, label_path, line));
  });
  d.num_nodes = std::int64_t(labels.size());
  const std::string count_path = (root / "raw" / "num-node-list.csv.gz").string();
  if (fs::exists(count_path)) {
    std::int64_t declared = -1;
    for_each_line(count_path, [&](std::string_view s, std::int64_t line) {
      declared = parse_number<std::int64_t>(s, count_path, line);
    });
    if (declared != d.num_nodes)
      throw Error(label_path + ": " + std::to_string(d.num_nodes) + " labels, but num-node-list.csv.gz says " +
                  std::to_string(declared) + " nodes");
  }
  d.labels.resize(d.num_nodes);
  std::int64_t max_label = -1;
  for (std::int64_t v = 0; v < d.num_nodes; ++v) {
    d.labels[v] = std::int32_t(labels[v] < 0 ? -1 : labels[v]);
    max_label = std::max(max_label, labels[v]);
  }
  d.num_classes = int(max_label + 1);

  const std::string edge_path = (root / "raw" / "edge.csv.gz").string();
  std::vector<std::int64_t> src, dst, pair;
  for_each_line(edge_path, [&](std::string_view s, std::int64_t line) {
    pair.clear();
    split_fields(s, edge_path, line, pair);
    if (pair.size() != 2)
      throw Error(edge_path + ":" + std::to_string(line) + ": expected 2 fields, found " + std::to_string(pair.size()));
    src.push_back(pair[0]);
    dst.push_back(pair[1]);
  });
  d.adj = symmetrize(d.num_nodes, src, dst, edge_path.c_str());

  const std::string feat_path = (root / "raw" / "node-feat.csv.gz").string();
  std::int64_t rows = 0;
  std::vector<float> row;
  for_each_line(feat_path, [&](std::string_view s, std::int64_t line) {
    if (!options.features && rows > 0) return;  // only F is needed: parse the first row alone
    row.clear();
    split_fields(s, feat_path, line, row);
    if (rows == 0) d.num_features = std::int64_t(row.size());
    if (std::int64_t(row.size()) != d.num_features)
      throw Error(feat_path + ":" + std::to_string(line) + ": expected " + std::to_string(d.num_features) +
                  " features, found " + std::to_string(row.size()));
    if (options.features) d.features.insert(d.features.end(), row.begin(), row.end());
    ++rows;
  });
  if (rows != d.num_nodes && options.features)
    throw Error(feat_path + ": expected " + std::to_string(d.num_nodes) + " rows, found " + std::to_string(rows));

  const fs::path split_root = root / "split";
  if (!fs::is_directory(split_root)) throw Error((split_root).string() + ": split folder is missing");
  std::vector<fs::path> splits;
  for (const auto& e : fs::directory_iterator(split_root))
    if (e.is_directory()) splits.push_back(e.path());
  if (splits.empty()) throw Error(split_root.string() + ": no split folder inside");
  std::sort(splits.begin(), splits.end());
  // --split file:K takes the K-th split folder by name; every other rule starts from the first.
  const std::size_t k = options.split.kind == SplitSpec::Kind::file ? std::size_t(options.split.file_index) : 0;
  if (k >= splits.size())
    throw Error(split_root.string() + ": --split file:" + std::to_string(k) + ": " + std::to_string(splits.size()) +
                " split folder(s) inside");
  d.mask_sets = int(splits.size());
  d.train_mask = read_split((splits[k] / "train.csv.gz").string(), d.num_nodes);
  d.val_mask = read_split((splits[k] / "valid.csv.gz").string(), d.num_nodes);
  d.test_mask = read_split((splits[k] / "test.csv.gz").string(), d.num_nodes);
  for (std::int64_t v = 0; v < d.num_nodes; ++v)
    if (d.labels[v] < 0) d.train_mask[v] = d.val_mask[v] = d.test_mask[v] = 0;
  d.split_rule = "file:" + std::to_string(k) + " (" + splits[k].filename().string() + ")";
  return d;
}

}  // namespace adaqp::graph
