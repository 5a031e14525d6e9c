// OGB raw layout reader (on a fixture written here) and the synthetic generators.
#include <zlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "base/error.hpp"
#include "graph/dataset.hpp"
#include "tests/npz_writer.hpp"

using namespace adaqp;
using namespace adaqp::graph;
namespace fs = std::filesystem;

namespace {
void write_gz(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, text.data(), unsigned(text.size()));
  gzclose(f);
}
}  // namespace

TEST_CASE("OGB raw node-property folder loads", "[ogb]") {
  const fs::path root = testing::temp_dir("ogb") + "/ogbn-tiny";
  // 5 nodes, a directed path 0-1-2-3 plus 3->0 duplicate of 0->3 and a self-loop on 4.
  write_gz(root / "raw/edge.csv.gz", "0,1\n1,2\n2,3\n0,3\n3,0\n4,4\n");
  write_gz(root / "raw/node-feat.csv.gz", "0.5,1\n1.5,2\n2.5,3\n3.5,4\n4.5,5\n");
  write_gz(root / "raw/node-label.csv.gz", "0\n1\n2\n1.0\nnan\n");
  write_gz(root / "raw/num-node-list.csv.gz", "5\n");
  write_gz(root / "split/by_id/train.csv.gz", "0\n1\n");
  write_gz(root / "split/by_id/valid.csv.gz", "2\n");
  write_gz(root / "split/by_id/test.csv.gz", "3\n4\n");
  const Dataset d = load_dataset(root.string());
  CHECK(d.num_nodes == 5);
  CHECK(d.num_features == 2);
  CHECK(d.num_classes == 3);
  CHECK(d.num_directed_edges() == 8);  // {0-1, 1-2, 2-3, 0-3} both ways; self-loop dropped
  CHECK(d.features[3 * 2 + 0] == 3.5f);
  CHECK(d.labels[3] == 1);
  CHECK(d.labels[4] == -1);
  CHECK(d.count(d.train_mask) == 2);
  CHECK(d.count(d.val_mask) == 1);
  CHECK(d.count(d.test_mask) == 1);  // node 4 is unlabelled
  CHECK(d.split_rule == "file:0 (by_id)");

  write_gz(root / "raw/node-feat.csv.gz", "0.5,1\n1.5\n2.5,3\n3.5,4\n4.5,5\n");
  try {
    load_dataset(root.string());
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("node-feat.csv.gz:2") != std::string::npos);
  }
  fs::remove(root / "split/by_id/valid.csv.gz");
  write_gz(root / "raw/node-feat.csv.gz", "0.5,1\n1.5,2\n2.5,3\n3.5,4\n4.5,5\n");
  CHECK_THROWS_WITH(load_dataset(root.string()), Catch::Contains("valid.csv.gz") && Catch::Contains("missing"));
  fs::remove_all(root.parent_path());
}

TEST_CASE("SBM is deterministic, learnable-shaped and validated", "[synthetic]") {
  const std::string spec = "sbm:nodes=2000,classes=4,degree=10,seed=3,features=8";
  const Dataset a = load_dataset(spec), b = load_dataset(spec);
  const Dataset c = load_dataset("sbm:nodes=2000,classes=4,degree=10,seed=4,features=8");
  CHECK(a.adj.indices == b.adj.indices);
  CHECK(a.features == b.features);
  CHECK(a.labels == b.labels);
  CHECK(a.adj.indices != c.adj.indices);
  CHECK(a.num_nodes == 2000);
  CHECK(a.num_classes == 4);
  // Mean degree close to the requested one (duplicates and self-loops removed).
  CHECK(double(a.num_directed_edges()) / 2000.0 == Approx(10.0).epsilon(0.05));
  // intra = 0.8 (default): about 80% of edges inside a class.
  std::int64_t same = 0;
  for (std::int64_t v = 0; v < a.num_nodes; ++v)
    for (NodeId u : a.adj.row(v)) same += a.labels[u] == a.labels[v];
  CHECK(double(same) / double(a.num_directed_edges()) == Approx(0.8).epsilon(0.05));
  CHECK(a.count(a.train_mask) == 4 * 20);

  CHECK_THROWS_WITH(load_dataset("sbm:nodes=100,classes=2,degree=4,colour=3"),
                    Catch::Contains("unknown key 'colour'") && Catch::Contains("intra"));
  CHECK_THROWS_WITH(load_dataset("sbm:nodes=100,classes=2"), Catch::Contains("'degree' is required"));
  CHECK_THROWS_WITH(load_dataset("sbm:nodes=100,classes=2,degree=4,intra=1.5"), Catch::Contains("intra"));
  CHECK_THROWS_WITH(load_dataset("sbm:nodes=abc,classes=2,degree=4"), Catch::Contains("non-numeric"));
}

TEST_CASE("R-MAT is deterministic and skewed", "[synthetic]") {
  const Dataset a = load_dataset("rmat:scale=12,degree=8,seed=1,features=4");
  const Dataset b = load_dataset("rmat:scale=12,degree=8,seed=1,features=4");
  CHECK(a.num_nodes == 4096);
  CHECK(a.adj.indices == b.adj.indices);
  std::int64_t max_deg = 0;
  for (std::int64_t v = 0; v < a.num_nodes; ++v) max_deg = std::max(max_deg, a.adj.degree(v));
  CHECK(double(max_deg) > 10.0 * double(a.num_directed_edges()) / double(a.num_nodes));  // power-law hubs
}

TEST_CASE("R-MAT reaches 5M undirected edges in a few hundred MiB", "[synthetic][large]") {
  LoadOptions opt;
  opt.features = false;
  const Dataset d = load_dataset("rmat:scale=20,degree=10,seed=1", opt);
  CHECK(d.num_directed_edges() / 2 >= 5'000'000);
  // What the graph must hold: 8 B per offset + 4 B per index; what it holds (capacities) may exceed
  // that by little.
  const double needed = 8.0 * double(d.adj.offsets.size()) + 4.0 * double(d.adj.indices.size());
  const double held = 8.0 * double(d.adj.offsets.capacity()) + 4.0 * double(d.adj.indices.capacity());
  CHECK(held <= 1.05 * needed);
}

namespace {
// A field of /proc/self/status in bytes (VmRSS, VmHWM), or -1 where the file is not there.
double proc_status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field + ":", 0) == 0) return 1024.0 * std::stod(line.substr(field.size() + 1));  // kB
  return -1;
}
}  // namespace

TEST_CASE("R-MAT generation: peak memory of a 10M-edge graph stays within a few hundred MiB", "[synthetic][large]") {
#if defined(__SANITIZE_ADDRESS__)
  WARN("AddressSanitizer build: its shadow memory and quarantine are not the program's; not measured");
  return;
#endif
  // Reset the peak resident size to the current one (Linux: clear_refs 5), generate, read the peak.
  const double base = proc_status_bytes("VmRSS");
  std::ofstream("/proc/self/clear_refs") << "5";
  if (base < 0 || proc_status_bytes("VmHWM") > base + 16e6) {
    WARN("no /proc/self/status or peak reset here: not measured");
    return;
  }
  LoadOptions opt;
  opt.features = false;
  double held = 0;
  {
    const Dataset d = load_dataset("rmat:scale=20,degree=10,seed=1", opt);
    held = 8.0 * double(d.adj.offsets.size()) + 4.0 * double(d.adj.indices.size());
  }
  const double peak = proc_status_bytes("VmHWM") - base;
  INFO("graph " << held / 1048576 << " MiB, peak growth while generating " << peak / 1048576 << " MiB");
  CHECK(peak < 512.0 * 1048576);
  CHECK(peak < 5.0 * held);  // measured: 3.9x (the edge list before the CSR)
}
