#include "graph/partition_folder.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/error.hpp"
#include "base/hash.hpp"
#include "graph/npz.hpp"

namespace adaqp::graph {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "adaqp-partitions";

nlohmann::json shape_json(const PartitionShape& s) {
  return {{"num_central", s.num_central}, {"num_marginal", s.num_marginal}, {"halo_rows", s.halo_rows},
          {"send_rows", s.send_rows},     {"nnz_central", s.nnz_central},   {"nnz_marginal", s.nnz_marginal},
          {"nnz_to_halo", s.nnz_to_halo}};
}

template <class T>
void hash_vector(Fnv1a& h, const std::vector<T>& v) {
  h.add(v.data(), v.size() * sizeof(T));
}

// The folder's id: what was partitioned (graph, features, labels, split), how, and the result.
std::string folder_id(const Dataset& d, const DatasetSpec& how, const std::vector<std::int32_t>& owner,
                      PartitionMethod method, std::uint64_t seed, int parts) {
  Fnv1a h;
  const std::string head = std::string(kFormat) + " " + std::to_string(kPartitionFolderVersion) + " " + how.spec + " " +
                           how.split + " " + std::to_string(how.split_seed) + " " + to_string(method) + " " +
                           std::to_string(seed) + " " + std::to_string(parts);
  h.add(head.data(), head.size());
  hash_vector(h, d.adj.offsets);
  hash_vector(h, d.adj.indices);
  hash_vector(h, d.features);
  hash_vector(h, d.labels);
  hash_vector(h, d.train_mask);
  hash_vector(h, d.val_mask);
  hash_vector(h, d.test_mask);
  hash_vector(h, owner);
  return h.hex();
}

template <class T>
NpyOut out(const std::string& member, const char* descr, const std::vector<T>& v,
           std::vector<std::int64_t> shape = {}) {
  if (shape.empty()) shape = {std::int64_t(v.size())};
  return {member, descr, shape, v.data(), v.size() * sizeof(T)};
}

}  // namespace

std::string part_file(int r) {
  return "part-" + std::to_string(r) + ".npz";
}

void write_part_file(const std::string& path, const Shard& s, const std::string& id) {
  const auto& p = s.part;
  const std::int64_t P = p.parts;
  std::vector<std::uint8_t> id_bytes(id.begin(), id.end());
  std::vector<std::int64_t> counts = {p.rank, P, p.num_central, p.num_marginal};
  std::vector<std::int64_t> send_begin{0};
  std::vector<NodeId> send_flat;
  for (const auto& rows : p.send_rows) {
    send_flat.insert(send_flat.end(), rows.begin(), rows.end());
    send_begin.push_back(std::int64_t(send_flat.size()));
  }
  write_npz(path, {out("partition_id", "|u1", id_bytes), out("counts", "<i8", counts),
                   out("inner_global", "<i8", p.inner_global), out("halo_global", "<i8", p.halo_global),
                   out("halo_begin", "<i8", p.halo_begin), out("send_begin", "<i8", send_begin),
                   out("send_rows", "<i4", send_flat), out("adj_offsets", "<i8", p.adj.offsets),
                   out("adj_indices", "<i4", p.adj.indices), out("degree", "<i8", s.degree),
                   out("features", "<f4", s.features, {p.num_local(), s.info.num_features}),
                   out("labels", "<i4", s.labels), out("train_mask", "|b1", s.train_mask),
                   out("val_mask", "|b1", s.val_mask), out("test_mask", "|b1", s.test_mask)});
}

nlohmann::json folder_meta(const std::string& id, const DatasetSpec& how, const DatasetInfo& info,
                           PartitionMethod method, std::uint64_t seed, const std::vector<PartitionShape>& shapes,
                           const std::vector<std::int64_t>& feature_nnz) {
  nlohmann::json meta = {{"format", kFormat},
                         {"version", kPartitionFolderVersion},
                         {"id", id},
                         {"dataset_spec", how.spec},
                         {"split", how.split},
                         {"split_seed", how.split_seed},
                         {"dataset", to_json(info)},
                         {"method", to_string(method)},
                         {"seed", seed},
                         {"parts", shapes.size()},
                         {"stats", to_json(partition_stats(shapes))},
                         {"feature_nnz", feature_nnz}};
  meta["shapes"] = nlohmann::json::array();
  meta["files"] = nlohmann::json::array();
  for (std::size_t r = 0; r < shapes.size(); ++r) {
    meta["shapes"].push_back(shape_json(shapes[r]));
    meta["files"].push_back(part_file(int(r)));
  }
  return meta;
}

std::string temporary_folder(const std::string& dir, long pid) {
  return fs::path(dir).lexically_normal().string() + ".tmp-" + std::to_string(pid);
}

void commit_folder(const std::string& tmp, const std::string& dir, const nlohmann::json& meta) {
  {
    std::ofstream f(fs::path(tmp) / "meta.json");
    f << meta.dump(1) << '\n';
    if (!f) throw Error((fs::path(tmp) / "meta.json").string() + ": write failed");
  }
  std::error_code ec;
  fs::rename(tmp, fs::path(dir).lexically_normal(), ec);
  if (ec) throw Error(dir + ": cannot rename " + tmp + " to it (" + ec.message() + ")");
}

nlohmann::json to_json(const DatasetInfo& i) {
  return {{"name", i.name},
          {"source", i.source},
          {"nodes", i.num_nodes},
          {"directed_edges", i.num_directed_edges},
          {"features", i.num_features},
          {"classes", i.num_classes},
          {"split", i.split_rule},
          {"train", i.n_train},
          {"val", i.n_val},
          {"test", i.n_test}};
}

nlohmann::json to_json(const PartitionStats& s) {
  return {{"parts", s.parts},
          {"nodes", s.num_nodes},
          {"directed_edges", s.num_directed_edges},
          {"edge_cut", s.edge_cut},
          {"comm_volume_rows", s.comm_volume_rows},
          {"halo_rows", s.halo_rows},
          {"inner", s.inner},
          {"halo", s.halo},
          {"marginal", s.marginal},
          {"local_edges", s.local_edges},
          {"marginal_fraction", s.marginal_fraction},
          {"node_imbalance", s.node_imbalance},
          {"edge_imbalance", s.edge_imbalance}};
}

void require_new_folder(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) throw Error(dir + ": exists; remove it or choose another --out");
}

nlohmann::json write_partition_folder(const std::string& dir, const Dataset& d, const DatasetSpec& how,
                                      const std::vector<std::int32_t>& owner, const std::vector<LocalPartition>& parts,
                                      PartitionMethod method, std::uint64_t seed) {
  if (d.features.empty()) throw std::logic_error("write_partition_folder: the dataset was loaded without features");
  require_new_folder(dir);
  std::error_code ec;
  const std::string tmp = temporary_folder(dir, long(::getpid()));
  fs::remove_all(tmp, ec);
  if (!fs::create_directories(tmp, ec) || ec) throw Error(tmp + ": cannot create folder (" + ec.message() + ")");
  try {
    const int P = int(parts.size());
    const std::string id = folder_id(d, how, owner, method, seed, P);
    const auto nnz = feature_nnz_by_part(d, owner, P);
    std::vector<PartitionShape> shapes;
    for (int r = 0; r < P; ++r) {
      const Shard s = make_shard(d, parts, nnz, r, method, seed);
      write_part_file((fs::path(tmp) / part_file(r)).string(), s, id);
      shapes.push_back(s.shapes[std::size_t(r)]);
    }
    const auto meta = folder_meta(id, how, info_of(d), method, seed, shapes, nnz);
    commit_folder(tmp, dir, meta);
    return meta;
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

namespace {

// Typed access to meta.json with errors naming the file and key.
struct MetaReader {
  std::string file;
  const nlohmann::json& j;
  const nlohmann::json& at(const std::string& key) const {
    if (!j.contains(key)) throw Error(file + ": key '" + key + "' missing");
    return j.at(key);
  }
  template <class T>
  T get(const std::string& key) const {
    try {
      return at(key).get<T>();
    } catch (const nlohmann::json::exception&) {
      throw Error(file + ": key '" + key + "' has the wrong type");
    }
  }
};

}  // namespace

PartitionMeta read_partition_meta(const std::string& dir) {
  const std::string file = (fs::path(dir) / "meta.json").string();
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(dir + ": no such partition folder (write one with adaqp partition --out)");
  std::ifstream in(file);
  if (!in) throw Error(file + ": cannot open (not a partition folder? write one with adaqp partition --out)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    throw Error(file + ": not valid JSON (truncated?)");
  }
  const MetaReader m{file, j};
  if (m.get<std::string>("format") != kFormat) throw Error(file + ": key 'format' is not '" + kFormat + "'");
  if (m.get<int>("version") != kPartitionFolderVersion)
    throw Error(file + ": version " + std::to_string(m.get<int>("version")) + ", this build reads version " +
                std::to_string(kPartitionFolderVersion));
  PartitionMeta meta;
  meta.dir = dir;
  meta.id = m.get<std::string>("id");
  meta.how = {m.get<std::string>("dataset_spec"), m.get<std::string>("split"), m.get<std::uint64_t>("split_seed")};
  const MetaReader ds{file + " (dataset)", m.at("dataset")};
  meta.info.name = ds.get<std::string>("name");
  meta.info.source = ds.get<std::string>("source");
  meta.info.split_rule = ds.get<std::string>("split");
  meta.info.num_nodes = ds.get<std::int64_t>("nodes");
  meta.info.num_directed_edges = ds.get<std::int64_t>("directed_edges");
  meta.info.num_features = ds.get<std::int64_t>("features");
  meta.info.num_classes = ds.get<int>("classes");
  meta.info.n_train = ds.get<std::int64_t>("train");
  meta.info.n_val = ds.get<std::int64_t>("val");
  meta.info.n_test = ds.get<std::int64_t>("test");
  try {
    meta.method = parse_partition_method(m.get<std::string>("method"));
  } catch (const Error& e) {
    throw Error(file + ": key 'method': " + e.what());
  }
  meta.seed = m.get<std::uint64_t>("seed");
  meta.parts = m.get<int>("parts");
  meta.stats = m.at("stats");
  meta.feature_nnz = m.get<std::vector<std::int64_t>>("feature_nnz");
  meta.files = m.get<std::vector<std::string>>("files");
  const auto& shapes = m.at("shapes");
  const std::size_t P = std::size_t(std::max(meta.parts, 0));
  if (meta.parts < 1 || !shapes.is_array() || shapes.size() != P || meta.feature_nnz.size() != P ||
      meta.files.size() != P)
    throw Error(file + ": 'shapes', 'feature_nnz' and 'files' must have 'parts' (" + std::to_string(meta.parts) +
                ") entries");
  for (std::size_t r = 0; r < P; ++r) {
    const MetaReader sh{file + " (shapes[" + std::to_string(r) + "])", shapes[r]};
    PartitionShape s;
    s.rank = int(r);
    s.parts = meta.parts;
    s.num_central = sh.get<std::int64_t>("num_central");
    s.num_marginal = sh.get<std::int64_t>("num_marginal");
    s.halo_rows = sh.get<std::vector<std::int64_t>>("halo_rows");
    s.send_rows = sh.get<std::vector<std::int64_t>>("send_rows");
    s.nnz_central = sh.get<std::int64_t>("nnz_central");
    s.nnz_marginal = sh.get<std::int64_t>("nnz_marginal");
    s.nnz_to_halo = sh.get<std::int64_t>("nnz_to_halo");
    if (s.halo_rows.size() != P || s.send_rows.size() != P)
      throw Error(sh.file + ": 'halo_rows' and 'send_rows' must have 'parts' entries");
    meta.shapes.push_back(std::move(s));
  }
  return meta;
}

namespace {

// A member of a part file with its element count checked.
NpyArray member(const NpzFile& f, const std::string& name, std::int64_t count) {
  NpyArray a = f.read(name);
  if (count >= 0 && a.count() != count)
    throw Error(a.where() + ": " + std::to_string(a.count()) + " elements, expected " + std::to_string(count));
  return a;
}

std::vector<NodeId> to_node_ids(const NpyArray& a, std::int64_t limit) {
  std::vector<NodeId> out;
  out.reserve(std::size_t(a.count()));
  for (auto v : a.to_int64()) {
    if (v < 0 || v >= limit)
      throw Error(a.where() + ": id " + std::to_string(v) + " outside [0, " + std::to_string(limit) + ")");
    out.push_back(NodeId(v));
  }
  return out;
}

bool same_shape(const PartitionShape& a, const PartitionShape& b) {
  return a.num_central == b.num_central && a.num_marginal == b.num_marginal && a.halo_rows == b.halo_rows &&
         a.send_rows == b.send_rows && a.nnz_central == b.nnz_central && a.nnz_marginal == b.nnz_marginal &&
         a.nnz_to_halo == b.nnz_to_halo;
}

}  // namespace

Shard read_shard(const std::string& dir, int rank, int ranks) {
  const PartitionMeta meta = read_partition_meta(dir);
  if (meta.parts != ranks)
    throw Error(dir + ": partitioned into " + std::to_string(meta.parts) + " parts, but " + std::to_string(ranks) +
                " rank(s) run; start mpirun -np " + std::to_string(meta.parts) + " (or partition again with --parts " +
                std::to_string(ranks) + ")");
  const std::string path = (fs::path(dir) / meta.files[std::size_t(rank)]).string();
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path + ": part " + std::to_string(rank) + " is missing");
  const NpzFile f(path);
  const auto id = f.read("partition_id").to_int64();
  const std::string file_id(id.begin(), id.end());
  if (file_id != meta.id)
    throw Error(path + ": belongs to another partitioning (id " + file_id + ", meta.json has " + meta.id + ")");
  const auto counts = member(f, "counts", 4).to_int64();
  if (counts[0] != rank || counts[1] != meta.parts)
    throw Error(path + ": holds part " + std::to_string(counts[0]) + " of " + std::to_string(counts[1]) +
                ", expected " + std::to_string(rank) + " of " + std::to_string(meta.parts));
  Shard s;
  s.info = meta.info;
  s.method = meta.method;
  s.partition_seed = meta.seed;
  s.folder = dir;
  s.partition_id = meta.id;
  s.shapes = meta.shapes;
  s.feature_nnz = meta.feature_nnz;
  auto& p = s.part;
  p.rank = rank;
  p.parts = meta.parts;
  p.num_central = counts[2];
  p.num_marginal = counts[3];
  const std::int64_t P = meta.parts, n_inner = p.num_inner(), N = meta.info.num_nodes;
  p.inner_global = member(f, "inner_global", n_inner).to_int64();
  p.halo_global = member(f, "halo_global", -1).to_int64();
  p.halo_begin = member(f, "halo_begin", P + 1).to_int64();
  for (const auto* ids : {&p.inner_global, &p.halo_global})
    for (auto v : *ids)
      if (v < 0 || v >= N)
        throw Error(path + ": global id " + std::to_string(v) + " outside the graph's " + std::to_string(N) + " nodes");
  if (p.halo_begin.front() != 0 || p.halo_begin.back() != p.num_halo() ||
      !std::is_sorted(p.halo_begin.begin(), p.halo_begin.end()))
    throw Error(path + ": member 'halo_begin' does not partition the halo rows");
  const auto send_begin = member(f, "send_begin", P + 1).to_int64();
  const auto send_flat = to_node_ids(f.read("send_rows"), n_inner);
  if (send_begin.front() != 0 || send_begin.back() != std::int64_t(send_flat.size()) ||
      !std::is_sorted(send_begin.begin(), send_begin.end()))
    throw Error(path + ": member 'send_begin' does not partition 'send_rows'");
  for (std::int64_t q = 0; q < P; ++q)
    p.send_rows.emplace_back(send_flat.begin() + send_begin[std::size_t(q)],
                             send_flat.begin() + send_begin[std::size_t(q) + 1]);
  p.adj.num_rows = n_inner;
  p.adj.num_cols = p.num_local();
  p.adj.offsets = member(f, "adj_offsets", n_inner + 1).to_int64();
  p.adj.indices = to_node_ids(f.read("adj_indices"), p.num_local());
  if (p.adj.offsets.front() != 0 || p.adj.offsets.back() != p.adj.nnz() ||
      !std::is_sorted(p.adj.offsets.begin(), p.adj.offsets.end()))
    throw Error(path + ": member 'adj_offsets' does not index 'adj_indices'");
  if (!same_shape(shape_of(p), meta.shapes[std::size_t(rank)]))
    throw Error(path + ": its sizes differ from meta.json's shapes[" + std::to_string(rank) + "]");
  s.degree = member(f, "degree", p.num_local()).to_int64();
  const NpyArray features = member(f, "features", p.num_local() * meta.info.num_features);
  if (features.kind != 'f' || features.item_bytes != 4) throw Error(features.where() + ": expected float32 (<f4)");
  s.features = features.to_float();
  const auto labels = member(f, "labels", n_inner).to_int64();
  s.labels.assign(labels.begin(), labels.end());
  for (auto l : labels)
    if (l < -1 || l >= meta.info.num_classes)
      throw Error(path + ": label " + std::to_string(l) + " outside [-1, classes)");
  s.train_mask = member(f, "train_mask", n_inner).to_bool();
  s.val_mask = member(f, "val_mask", n_inner).to_bool();
  s.test_mask = member(f, "test_mask", n_inner).to_bool();
  return s;
}

}  // namespace adaqp::graph
