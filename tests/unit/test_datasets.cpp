// Dataset readers: every shipped file loads with the counts of datasets/README.md; npz/npy corner
// cases (stored / deflated members, Fortran order); clear one-line errors for bad files.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "base/error.hpp"
#include "graph/dataset.hpp"
#include "graph/npz.hpp"
#include "graph/registry.hpp"
#include "tests/npz_writer.hpp"

using namespace adaqp;
using namespace adaqp::graph;
using adaqp::testing::Member;

namespace {

// Runs f, expects adaqp::Error whose one-line message contains every fragment.
template <class F>
void expect_error(F&& f, std::initializer_list<std::string> fragments) {
  try {
    f();
    FAIL("no error thrown");
  } catch (const Error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find('\n') == std::string::npos);
    for (const auto& frag : fragments) CHECK(msg.find(frag) != std::string::npos);
  }
}

bool symmetric_without_self_loops(const Csr& g) {
  for (std::int64_t v = 0; v < g.num_rows; ++v)
    for (NodeId u : g.row(v)) {
      if (u == v) return false;
      const auto r = g.row(u);
      if (!std::binary_search(r.begin(), r.end(), NodeId(v))) return false;
    }
  return true;
}

// A 3-node layout-A file with the given labels member and edge list.
void write_layout_a(const std::string& path, const std::vector<std::uint8_t>& labels_npy,
                    const std::vector<std::int64_t>& edges) {
  const std::vector<float> feats(6, 1.0f);
  const std::vector<std::uint8_t> mask = {1, 0, 0};
  testing::write_npz(path, {{"node_features", testing::npy_of("<f4", {3, 2}, feats)},
                            {"node_labels", labels_npy},
                            {"edges", testing::npy_of("<i8", {std::int64_t(edges.size() / 2), 2}, edges)},
                            {"train_masks", testing::npy_of("|b1", {1, 3}, mask)},
                            {"val_masks", testing::npy_of("|b1", {1, 3}, mask)},
                            {"test_masks", testing::npy_of("|b1", {1, 3}, mask)}});
}

}  // namespace

TEST_CASE("every shipped dataset loads with the published counts", "[datasets]") {
  struct Expect {
    const char* name;
    std::int64_t nodes, directed_edges, features;
    int classes;
    std::int64_t train, val, test;  // -1: not checked here
  };
  // Layout A: undirected edges x 2; layout B: the README's "directed edges after symmetrising".
  const Expect expected[] = {
      {"cora", 2708, 2 * 5278, 1433, 7, 140, 500, 1000},
      {"citeseer", 3327, 2 * 4552, 3703, 6, 120, 500, 1000},
      {"tolokers", 11758, 2 * 519000, 10, 2, -1, -1, -1},
      {"amazon-photo", 7650, 238162, 745, 8, 8 * 20, 8 * 30, 7650 - 8 * 50},
      {"amazon-computers", 13752, 491722, 767, 10, 10 * 20, 10 * 30, 13752 - 10 * 50},
      {"coauthor-cs", 18333, 163788, 6805, 15, 15 * 20, 15 * 30, 18333 - 15 * 50},
      {"coauthor-physics", 34493, 495924, 8415, 5, 5 * 20, 5 * 30, 34493 - 5 * 50},
  };
  for (const auto& e : expected) {
    SECTION(e.name) {
      LoadOptions opt;
      opt.features = std::string(e.name) != "coauthor-physics";  // 1.1 GB dense: shape checked only
      const Dataset d = load_dataset(e.name, opt);
      CHECK(d.num_nodes == e.nodes);
      CHECK(d.num_directed_edges() == e.directed_edges);
      CHECK(d.num_features == e.features);
      CHECK(d.num_classes == e.classes);
      CHECK(std::int64_t(d.labels.size()) == e.nodes);
      if (opt.features) CHECK(std::int64_t(d.features.size()) == e.nodes * e.features);
      if (e.train >= 0) {
        CHECK(d.count(d.train_mask) == e.train);
        CHECK(d.count(d.val_mask) == e.val);
        CHECK(d.count(d.test_mask) == e.test);
      }
      for (std::int64_t v = 0; v < d.num_nodes; ++v) REQUIRE(d.train_mask[v] + d.val_mask[v] + d.test_mask[v] <= 1);
      CHECK(symmetric_without_self_loops(d.adj));
    }
  }
}

TEST_CASE("citeseer's unlabelled nodes are in no split, tolokers has 10 splits", "[datasets]") {
  LoadOptions opt;
  opt.features = false;
  const Dataset c = load_dataset("citeseer", opt);
  std::int64_t unlabelled = 0;
  for (std::int64_t v = 0; v < c.num_nodes; ++v)
    if (c.labels[v] < 0) {
      ++unlabelled;
      CHECK(c.train_mask[v] + c.val_mask[v] + c.test_mask[v] == 0);
    }
  CHECK(unlabelled == 15);
  opt.split = parse_split("file:9");
  const Dataset t = load_dataset("tolokers", opt);
  CHECK(t.count(t.train_mask) > 0);
  CHECK(t.mask_sets == 10);
  CHECK(t.split_rule == "file:9");
  opt.split = parse_split("file");
  const Dataset t0 = load_dataset("tolokers", opt);
  CHECK(t0.split_rule == "file:0");
  CHECK(t0.train_mask != t.train_mask);  // the tenth split is another set of masks
  opt.split = parse_split("file:10");
  expect_error([&] { load_dataset("tolokers", opt); }, {"tolokers.npz", "train_masks", "split index 10"});
}

TEST_CASE("split specs parse to one canonical text, bad ones are one clear line", "[datasets][split]") {
  CHECK(to_string(parse_split("")) == "");
  CHECK(to_string(parse_split("classes:20,30")) == "classes:20,30");
  CHECK(to_string(parse_split("random:0.6,0.2")) == "random:0.6,0.2");
  CHECK(to_string(parse_split("file")) == "file:0");
  CHECK(to_string(parse_split("file:3")) == "file:3");
  expect_error([] { parse_split("random:0.8,0.2"); }, {"--split 'random:0.8,0.2'", "sum to 1", "no test"});
  expect_error([] { parse_split("random:0.9,0.3"); }, {"--split", "sum to 1.2"});
  expect_error([] { parse_split("random:0,0.2"); }, {"> 0"});
  expect_error([] { parse_split("random:0.6"); }, {"two fractions"});
  expect_error([] { parse_split("random:a,0.2"); }, {"two fractions"});
  expect_error([] { parse_split("classes:20"); }, {"two whole numbers"});
  expect_error([] { parse_split("classes:0,30"); }, {"TRAIN >= 1"});
  expect_error([] { parse_split("classes:2.5,30"); }, {"two whole numbers"});
  expect_error([] { parse_split("file:-1"); }, {"file:K"});
  expect_error([] { parse_split("stratified:0.5"); }, {"unknown form 'stratified'", "allowed"});
  expect_error([] { parse_split("bogus", "registry.yaml: x: split"); }, {"registry.yaml: x: split 'bogus'"});
}

TEST_CASE("random splits: fractions of the labelled nodes, disjoint, seeded", "[datasets][split]") {
  LoadOptions opt;
  opt.features = false;
  opt.split = parse_split("random:0.6,0.2");
  const Dataset a = load_dataset("citeseer", opt), b = load_dataset("citeseer", opt);
  opt.split_seed = 3;
  const Dataset c = load_dataset("citeseer", opt);
  std::int64_t labelled = 0;
  for (std::int64_t v = 0; v < a.num_nodes; ++v) {
    labelled += a.labels[v] >= 0;
    CHECK(a.train_mask[v] + a.val_mask[v] + a.test_mask[v] == (a.labels[v] >= 0 ? 1 : 0));
  }
  CHECK(labelled == a.num_nodes - 15);  // citeseer's 15 unlabelled nodes stay out
  CHECK(a.count(a.train_mask) == std::int64_t(0.6 * double(labelled)));
  CHECK(a.count(a.val_mask) == std::int64_t(0.2 * double(labelled)));
  CHECK(a.count(a.test_mask) == labelled - a.count(a.train_mask) - a.count(a.val_mask));
  CHECK(a.train_mask == b.train_mask);
  CHECK(a.train_mask != c.train_mask);
  CHECK(a.split_rule == "random:0.6,0.2 (seed 0)");
  // A default per-class dataset takes a random split too.
  const Dataset p = load_dataset("amazon-photo", opt);
  CHECK(p.count(p.train_mask) > 4000);
}

TEST_CASE("split rules that cannot apply are refused", "[datasets][split]") {
  LoadOptions opt;
  opt.features = false;
  opt.split = parse_split("file");
  expect_error([&] { load_dataset("amazon-photo", opt); }, {"amazon-photo", "--split file:0", "no split masks"});
  opt.split = parse_split("classes:20,300");
  expect_error([&] { load_dataset("cora", opt); },
               {"cora", "--split classes:20,300", "fewer than the 320 asked", "class"});
  opt.split = parse_split("classes:5,5");
  const Dataset c = load_dataset("cora", opt);
  CHECK(c.count(c.train_mask) == 5 * c.num_classes);
  CHECK(c.split_rule == "classes:5,5 (seed 0)");
  opt.split = parse_split("random:0.05,0.9");  // 12 labelled nodes: no training node
  expect_error([&] { load_dataset("sbm:nodes=12,classes=2,degree=2,seed=1", opt); },
               {"random:0.05,0.9", "0 train", "every part needs"});
}

TEST_CASE("per-class split is seeded and draws 20 / 30 per class", "[datasets]") {
  LoadOptions opt;
  opt.features = false;
  const Dataset a = load_dataset("amazon-photo", opt);
  const Dataset b = load_dataset("amazon-photo", opt);
  opt.split_seed = 7;
  const Dataset c = load_dataset("amazon-photo", opt);
  CHECK(a.train_mask == b.train_mask);
  CHECK(a.train_mask != c.train_mask);
  std::vector<int> per_class(a.num_classes, 0);
  for (std::int64_t v = 0; v < a.num_nodes; ++v) per_class[a.labels[v]] += a.train_mask[v];
  for (int n : per_class) CHECK(n == 20);
}

TEST_CASE("row normalisation makes planetoid feature rows sum to one", "[datasets]") {
  const Dataset d = load_dataset("cora");
  for (std::int64_t v = 0; v < d.num_nodes; v += 97) {
    double s = 0;
    for (std::int64_t j = 0; j < d.num_features; ++j) s += d.features[v * d.num_features + j];
    CHECK(s == Approx(1.0).epsilon(1e-5));
  }
}

TEST_CASE("npz members stored and deflated, C and Fortran order, decode exactly", "[npz]") {
  const auto dir = testing::temp_dir("npz");
  const std::string path = dir + "/arrays.npz";
  // 2 x 3 matrix [[1 2 3] [4 5 6]]: C order 1..6; Fortran order stores columns: 1 4 2 5 3 6.
  const std::vector<float> c_order = {1, 2, 3, 4, 5, 6};
  const std::vector<float> f_order = {1, 4, 2, 5, 3, 6};
  const std::vector<std::int32_t> ints = {-3, 0, 7};
  const std::vector<std::uint8_t> bools = {1, 0, 1};
  testing::write_npz(path, {{"c_stored", testing::npy_of("<f4", {2, 3}, c_order), false},
                            {"f_deflated", testing::npy_of("<f4", {2, 3}, f_order, true), true},
                            {"ints", testing::npy_of("<i4", {3}, ints), true},
                            {"bools", testing::npy_of("|b1", {3}, bools), false}});
  NpzFile z(path);
  CHECK(z.members().size() == 4);
  const auto a = z.read("c_stored");
  const auto b = z.read("f_deflated");
  CHECK(a.shape == std::vector<std::int64_t>{2, 3});
  CHECK(b.shape == std::vector<std::int64_t>{2, 3});
  CHECK(b.fortran_order);
  CHECK(a.to_float() == c_order);
  CHECK(b.to_float() == c_order);
  CHECK(z.read("ints").to_int64() == std::vector<std::int64_t>{-3, 0, 7});
  CHECK(z.read("bools").to_bool() == bools);
  const auto h = z.read_header("f_deflated");
  CHECK(h.descr == "<f4");
  CHECK(h.data.empty());
  std::filesystem::remove_all(dir);
}

TEST_CASE("npz row slices equal the whole member cut, stored or deflated, across inflate chunks", "[npz]") {
  const auto dir = testing::temp_dir("npz_rows");
  const std::string path = dir + "/rows.npz";
  // 600k x 3 int32 (7.2 MB: two 4 MiB inflate chunks), values that do not repeat so a shifted
  // slice cannot match; a 2 x 3 Fortran-ordered float matrix; a 0-d array.
  const std::int64_t n = 600000;
  std::vector<std::int32_t> big(std::size_t(n * 3));
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = std::int32_t(i * 2654435761u % 1000003u);
  const std::vector<float> f_order = {1, 4, 2, 5, 3, 6};  // [[1 2 3] [4 5 6]]
  const std::vector<float> scalar = {7};
  testing::write_npz(path, {{"stored", testing::npy_of("<i4", {n, 3}, big), false},
                            {"deflated", testing::npy_of("<i4", {n, 3}, big), true},
                            {"fortran", testing::npy_of("<f4", {2, 3}, f_order, true), true},
                            {"scalar", testing::npy_of("<f4", {}, scalar), false}});
  NpzFile z(path);
  const auto whole = z.read("stored").to_int64();
  for (const std::string member : {"stored", "deflated"}) {
    for (const auto& [lo, hi] : std::vector<std::pair<std::int64_t, std::int64_t>>{
             {0, n}, {0, 1}, {n - 1, n}, {123457, 123457}, {349524, 349526}, {100, 500000}}) {
      CAPTURE(member, lo, hi);
      const auto a = z.read_rows(member, lo, hi);
      REQUIRE(a.shape == std::vector<std::int64_t>{hi - lo, 3});
      const auto v = a.to_int64();
      CHECK(std::equal(v.begin(), v.end(), whole.begin() + lo * 3, whole.begin() + hi * 3));
    }
  }
  const auto f = z.read_rows("fortran", 1, 2);
  CHECK(f.shape == std::vector<std::int64_t>{1, 3});
  CHECK(f.to_float() == std::vector<float>{4, 5, 6});
  expect_error([&] { z.read_rows("stored", 5, n + 1); }, {path, "member 'stored'", "outside [0, 600000)"});
  expect_error([&] { z.read_rows("deflated", 3, 2); }, {path, "member 'deflated'"});
  expect_error([&] { z.read_rows("scalar", 0, 1); }, {path, "member 'scalar'", "0-d"});
  std::filesystem::remove_all(dir);
}

TEST_CASE("npz slices of every process give exactly the whole file's graph and features", "[npz][datasets]") {
  for (const std::string name : {"cora", "amazon-photo"}) {  // layout A and layout B, deflated members
    const auto source = npz_source(name);
    REQUIRE(source);
    LoadOptions opt;
    const Dataset whole = load_npz(source->path, source->layout, opt);
    for (int parts : {1, 3}) {
      CAPTURE(name, parts);
      std::vector<std::int64_t> src, dst;
      std::vector<float> features;
      for (int q = 0; q < parts; ++q) {
        const std::int64_t lo = whole.num_nodes * q / parts, hi = whole.num_nodes * (q + 1) / parts;
        const auto s = read_npz_slice(*source, whole.num_nodes, lo, hi, q, parts);
        CHECK(s.num_features == whole.num_features);
        REQUIRE(s.features.size() == std::size_t((hi - lo) * whole.num_features));
        src.insert(src.end(), s.src.begin(), s.src.end());
        dst.insert(dst.end(), s.dst.begin(), s.dst.end());
        features.insert(features.end(), s.features.begin(), s.features.end());
      }
      const Csr g = symmetrize(whole.num_nodes, src, dst);
      // Compared as one bool: a failure must not print millions of elements.
      CHECK((g.offsets == whole.adj.offsets));
      CHECK((g.indices == whole.adj.indices));
      CHECK((features == whole.features));
    }
  }
  CHECK_FALSE(npz_source("sbm:nodes=10,classes=2,degree=2"));
  CHECK_FALSE(npz_source("reddit-sim"));  // registered, but synthetic
  CHECK(npz_source(registry_dir() + "/amazon_computers.npz")->layout == NpzLayout::csr_attributes);
}

TEST_CASE("bad files give one clear error naming file and member", "[npz][errors]") {
  const auto dir = testing::temp_dir("bad");
  const std::string cora = registry_dir() + "/planetoid_cora.npz";

  SECTION("truncated file") {
    const std::string path = dir + "/truncated.npz";
    std::ifstream in(cora, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size() / 2));
    expect_error([&] { load_npz(path, NpzLayout::automatic, {}); }, {path, "truncated"});
  }
  SECTION("truncated member (central directory intact)") {
    const std::string path = dir + "/short_member.npz";
    const std::vector<float> v(1000, 1.0f);
    auto bytes = testing::npy_of("<f4", {1000}, v);
    testing::write_npz(path, {{"x", bytes, false}});
    // Cut the payload: rewrite with a shorter member but keep the declared shape.
    bytes.resize(bytes.size() - 400);
    testing::write_npz(path, {{"x", bytes, false}});
    expect_error([&] { NpzFile(path).read("x"); }, {path, "member 'x'", "truncated"});
  }
  SECTION("corrupt deflate stream") {
    const std::string path = dir + "/corrupt.npz";
    const std::vector<float> v(1000, 2.5f);
    testing::write_npz(path, {{"x", testing::npy_of("<f4", {1000}, v), true}});
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    const char junk[8] = {char(0xff), 0x13, 0x37, char(0xff), 0x00, 0x42, char(0xee), 0x01};
    f.write(junk, 8);
    f.close();
    expect_error([&] { NpzFile(path).read("x"); }, {path, "member 'x'"});
  }
  SECTION("deflated member whose bytes do not match its CRC") {
    const std::string path = dir + "/bad_crc.npz";
    const std::vector<float> v(1000, 2.5f);
    testing::write_npz(path, {{"x", testing::npy_of("<f4", {1000}, v), true}});
    std::ifstream in(path, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    in.close();
    const char central[4] = {0x50, 0x4b, 0x01, 0x02};  // central directory header: its CRC at +16
    const auto at = std::search(bytes.begin(), bytes.end(), central, central + 4);
    REQUIRE(at != bytes.end());
    at[16] = char(at[16] ^ 0x5a);
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    expect_error([&] { NpzFile(path).read("x"); }, {path, "member 'x'", "CRC mismatch"});
    CHECK(NpzFile(path).read_rows("x", 0, 10).shape[0] == 10);  // slices are not CRC-checked
  }
  SECTION("wrong dtype") {
    const std::string path = dir + "/wrong_dtype.npz";
    write_layout_a(path, testing::npy_of("<f4", {3}, std::vector<float>{0, 1, 1}), {0, 1, 1, 2});
    expect_error([&] { load_npz(path, NpzLayout::automatic, {}); }, {path, "member 'node_labels'", "<f4"});
  }
  SECTION("missing member") {
    const std::string path = dir + "/missing.npz";
    const std::vector<std::int64_t> labels = {0, 1, 1};
    const std::vector<std::int64_t> edges = {0, 1, 1, 2};
    testing::write_npz(
        path, {{"node_labels", testing::npy_of("<i8", {3}, labels)}, {"edges", testing::npy_of("<i8", {2, 2}, edges)}});
    expect_error([&] { load_npz(path, NpzLayout::automatic, {}); }, {path, "member 'node_features'", "missing"});
  }
  SECTION("edge naming a node out of range") {
    const std::string path = dir + "/range.npz";
    write_layout_a(path, testing::npy_of("<i8", {3}, std::vector<std::int64_t>{0, 1, 1}), {0, 1, 1, 9});
    expect_error([&] { load_npz(path, NpzLayout::automatic, {}); }, {path, "member 'edges'", "(1, 9)"});
  }
  SECTION("not a zip file") {
    const std::string path = dir + "/plain.npz";
    std::ofstream(path) << "hello";
    expect_error([&] { NpzFile{path}; }, {path, "not a zip archive"});
  }
  SECTION("unknown dataset spec") {
    expect_error([&] { load_dataset("no-such-dataset"); }, {"no-such-dataset", "cora"});
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("save_npz writes layout A that loads back to the same dataset", "[datasets][npz]") {
  const auto dir = testing::temp_dir("export");
  std::int64_t last_edges = 0;
  for (const std::string spec : {"cora", "amazon-photo", "sbm:nodes=500,classes=4,degree=8,seed=3,features=12"}) {
    CAPTURE(spec);
    LoadOptions opt;
    opt.split_seed = 5;
    const auto d = load_dataset(spec, opt);
    const std::string path = dir + "/out.npz";
    save_npz(d, path);
    const auto e = load_dataset(path);
    CHECK(e.num_nodes == d.num_nodes);
    CHECK(e.num_features == d.num_features);
    CHECK(e.num_classes == d.num_classes);
    CHECK(e.adj.offsets == d.adj.offsets);
    CHECK(e.adj.indices == d.adj.indices);
    CHECK(e.features == d.features);  // bit for bit, after the registry's normalisation
    CHECK(e.labels == d.labels);
    CHECK(e.train_mask == d.train_mask);
    CHECK(e.val_mask == d.val_mask);
    CHECK(e.test_mask == d.test_mask);
    CHECK(!std::filesystem::exists(path + ".tmp"));
    last_edges = d.num_directed_edges() / 2;
  }
  // Member shapes and dtypes as layout A has them.
  const NpzFile z(dir + "/out.npz");
  CHECK(z.read_header("edges").shape == std::vector<std::int64_t>{last_edges, 2});
  CHECK(z.read_header("node_features").descr == "<f4");
  CHECK(z.read_header("train_masks").shape == std::vector<std::int64_t>{1, 500});
  LoadOptions no_features;
  no_features.features = false;
  const std::string bad = dir + "/nofeatures.npz";
  expect_error([&] { save_npz(load_dataset("cora", no_features), bad); }, {bad, "without its features"});
  CHECK(!std::filesystem::exists(bad));
  CHECK(!std::filesystem::exists(bad + ".tmp"));
}
