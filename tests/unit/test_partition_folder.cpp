// Partition folders: what a rank reads back equals the shard cut in memory, field by field; bad
// folders fail with one error naming the file.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "base/error.hpp"
#include "graph/dataset.hpp"
#include "graph/partition_folder.hpp"

using namespace adaqp::graph;
namespace fs = std::filesystem;

namespace {

struct Folder {
  fs::path root = fs::temp_directory_path() / ("adaqp-pf-" + std::to_string(::getpid()));
  Folder() { fs::remove_all(root); }
  ~Folder() { fs::remove_all(root); }
  std::string dir(const std::string& name) const { return (root / name).string(); }
};

void require_same(const Shard& a, const Shard& b) {
  CHECK(a.part.rank == b.part.rank);
  CHECK(a.part.parts == b.part.parts);
  CHECK(a.part.num_central == b.part.num_central);
  CHECK(a.part.num_marginal == b.part.num_marginal);
  CHECK(a.part.inner_global == b.part.inner_global);
  CHECK(a.part.halo_global == b.part.halo_global);
  CHECK(a.part.halo_begin == b.part.halo_begin);
  CHECK(a.part.send_rows == b.part.send_rows);
  CHECK(a.part.adj.num_rows == b.part.adj.num_rows);
  CHECK(a.part.adj.num_cols == b.part.adj.num_cols);
  CHECK(a.part.adj.offsets == b.part.adj.offsets);
  CHECK(a.part.adj.indices == b.part.adj.indices);
  CHECK(a.degree == b.degree);
  CHECK(a.features == b.features);
  CHECK(a.labels == b.labels);
  CHECK(a.train_mask == b.train_mask);
  CHECK(a.val_mask == b.val_mask);
  CHECK(a.test_mask == b.test_mask);
  CHECK(a.feature_nnz == b.feature_nnz);
  REQUIRE(a.shapes.size() == b.shapes.size());
  for (std::size_t r = 0; r < a.shapes.size(); ++r) {
    CHECK(a.shapes[r].halo_rows == b.shapes[r].halo_rows);
    CHECK(a.shapes[r].send_rows == b.shapes[r].send_rows);
    CHECK(a.shapes[r].nnz_to_halo == b.shapes[r].nnz_to_halo);
  }
  CHECK(a.info.name == b.info.name);
  CHECK(a.info.num_nodes == b.info.num_nodes);
  CHECK(a.info.n_train == b.info.n_train);
  CHECK(a.info.split_rule == b.info.split_rule);
}

}  // namespace

TEST_CASE("partition folder: every part read back equals the shard cut in memory", "[partition][folder]") {
  Folder f;
  LoadOptions opt;
  opt.split = parse_split("random:0.6,0.2");
  opt.split_seed = 3;
  const auto d = load_dataset("sbm:nodes=900,classes=3,degree=8,seed=4,features=12", opt);
  for (int P : {1, 3}) {
    const auto owner = partition_graph(d.adj, P, PartitionMethod::metis_cut, 0);
    const auto parts = build_partitions(d.adj, owner, P);
    const std::string dir = f.dir("p" + std::to_string(P));
    const auto meta =
        write_partition_folder(dir, d, {"sbm", "random:0.6,0.2", 3}, owner, parts, PartitionMethod::metis_cut, 0);
    CHECK(meta["stats"]["edge_imbalance"].get<double>() == partition_stats(parts).edge_imbalance);
    const auto nnz = feature_nnz_by_part(d, owner, P);
    for (int r = 0; r < P; ++r) {
      INFO("P = " << P << ", rank " << r);
      const Shard read = read_shard(dir, r, P);
      require_same(read, make_shard(d, parts, nnz, r, PartitionMethod::metis_cut, 0));
      CHECK(read.partition_id == meta["id"].get<std::string>());
      CHECK(read.folder == dir);
    }
    const auto m = read_partition_meta(dir);
    CHECK(m.how.split == "random:0.6,0.2");
    CHECK(m.how.split_seed == 3);
    CHECK(m.parts == P);
    // An existing folder is never overwritten, and no temporary folder is left behind.
    CHECK_THROWS_WITH(write_partition_folder(dir, d, {"sbm", "", 0}, owner, parts, PartitionMethod::metis_cut, 0),
                      Catch::Contains("exists"));
  }
  for (const auto& e : fs::directory_iterator(f.root))
    CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);
}

TEST_CASE("partition folder: bad folders fail naming the file", "[partition][folder]") {
  Folder f;
  const auto d = load_dataset("sbm:nodes=400,classes=2,degree=6,seed=1,features=8");
  const auto owner = partition_graph(d.adj, 2, PartitionMethod::metis_cut, 0);
  const auto parts = build_partitions(d.adj, owner, 2);
  const std::string dir = f.dir("ok");
  write_partition_folder(dir, d, {"sbm", "", 0}, owner, parts, PartitionMethod::metis_cut, 0);
  CHECK_THROWS_WITH(read_shard(dir, 0, 3), Catch::Contains("partitioned into 2 parts, but 3 rank(s) run"));
  CHECK_THROWS_WITH(read_shard(f.dir("none"), 0, 2), Catch::Contains("no such partition folder"));
  // Another partitioning's part (other seed of the random partitioner) in place of part 1.
  const auto other_owner = partition_graph(d.adj, 2, PartitionMethod::random, 9);
  const std::string other = f.dir("other");
  write_partition_folder(other, d, {"sbm", "", 0}, other_owner, build_partitions(d.adj, other_owner, 2),
                         PartitionMethod::random, 9);
  fs::copy_file(other + "/part-1.npz", dir + "/part-1.npz", fs::copy_options::overwrite_existing);
  CHECK_THROWS_WITH(read_shard(dir, 1, 2), Catch::Contains("part-1.npz: belongs to another partitioning"));
  CHECK_NOTHROW(read_shard(dir, 0, 2));
  // Truncated and missing parts.
  fs::resize_file(dir + "/part-0.npz", fs::file_size(dir + "/part-0.npz") / 2);
  CHECK_THROWS_WITH(read_shard(dir, 0, 2), Catch::Contains("part-0.npz"));
  fs::remove(dir + "/part-0.npz");
  CHECK_THROWS_WITH(read_shard(dir, 0, 2), Catch::Contains("part-0.npz: part 0 is missing"));
  // meta.json: truncated, and of another version.
  { std::ofstream(other + "/meta.json") << "{\"format\": \"adaqp-partitions\", \"vers"; }
  CHECK_THROWS_WITH(read_partition_meta(other), Catch::Contains("meta.json: not valid JSON"));
  { std::ofstream(other + "/meta.json") << "{\"format\": \"adaqp-partitions\", \"version\": 99}"; }
  CHECK_THROWS_WITH(read_partition_meta(other), Catch::Contains("version 99"));
}
