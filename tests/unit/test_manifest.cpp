// Experiment manifests: validation errors name file, key and allowed values; expansion is the
// cartesian product minus exclusions, with defaults, in a stable order.
#include <catch2/catch.hpp>
#include <fstream>
#include <set>

#include "base/error.hpp"
#include "experiments/manifest.hpp"
#include "tests/npz_writer.hpp"

using namespace adaqp;
using namespace adaqp::experiments;

namespace {
std::string write(const std::string& dir, const std::string& text) {
  const std::string path = dir + "/m.yaml";
  std::ofstream(path) << text;
  return path;
}
}  // namespace

TEST_CASE("manifests expand to the product of their axes", "[manifest]") {
  const auto dir = testing::temp_dir("manifest");
  const auto m = load_manifest(write(dir,
                                     "name: t\n"
                                     "dataset: [cora, citeseer]\n"
                                     "mode: [vanilla, adaqp]\n"
                                     "bits: [32, 4, 2]\n"
                                     "seed: [0, 1]\n"
                                     "exclude:\n"
                                     "  - {mode: adaqp, bits: 32}\n"
                                     "  - {dataset: citeseer, bits: [2]}\n"));
  const auto points = expand(m);
  // vanilla: only 32 bits (fp32 mode) -> 2 datasets x 2 seeds = 4; adaqp: bits 4, 2 minus 32
  // excluded -> cora 2 x 2 seeds = 4, citeseer only 4 -> 2.
  CHECK(points.size() == 10);
  std::set<std::string> ids;
  for (const auto& p : points) {
    ids.insert(p.id);
    CHECK(p.values.at("epochs") == "200");  // default
    CHECK(p.values.at("parts") == "1");
    if (p.values.at("mode") == "vanilla") CHECK(p.values.at("bits") == "32");
    CHECK_FALSE((p.values.at("dataset") == "citeseer" && p.values.at("bits") == "2"));
  }
  CHECK(ids.size() == points.size());
  CHECK(expand(m)[3].id == points[3].id);  // stable order
  CHECK(m.hash.size() == 16);

  SECTION("bits default to the mode's") {
    const auto d = expand(load_manifest(write(dir, "name: d\ndataset: cora\nmode: [overlap, quant]\n")));
    REQUIRE(d.size() == 2);
    CHECK(d[0].values.at("bits") == "32");
    CHECK(d[1].values.at("bits") == "8");
  }
}

TEST_CASE("bad manifests give one clear line", "[manifest]") {
  const auto dir = testing::temp_dir("manifest_bad");
  auto error_of = [&](const std::string& text) {
    try {
      load_manifest(write(dir, text));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of("name: t\ndataset: cora\ncolour: red\n"),
             Catch::Contains("unknown key 'colour'") && Catch::Contains("allowed: name"));
  CHECK_THAT(error_of("name: t\ndataset: cora\nparts: two\n"),
             Catch::Contains("key 'parts': value 'two'") && Catch::Contains("an integer >= 1"));
  CHECK_THAT(error_of("name: t\ndataset: cora\nmode: []\n"), Catch::Contains("key 'mode': empty list"));
  CHECK_THAT(error_of("name: t\ndataset: [cora, no-such-graph]\n"),
             Catch::Contains("value 'no-such-graph'") && Catch::Contains("registered dataset"));
  CHECK_THAT(error_of("name: t\ndataset: cora\nmode: fast\n"), Catch::Contains("allowed: vanilla, quant"));
  CHECK_THAT(error_of("name: t\ndataset: cora\nlink: fast\n"), Catch::Contains("100mbit"));
  CHECK_THAT(error_of("name: t\ndataset: cora\nmodel: {kind: gcn}\n"), Catch::Contains("key 'model'"));
  CHECK_THAT(error_of("dataset: cora\n"), Catch::Contains("key 'name' is required"));
  CHECK_THAT(error_of("name: t\n"), Catch::Contains("key 'dataset' is required"));
  CHECK_THAT(error_of("name: t\ndataset: cora\nexclude: [{speed: 1}]\n"), Catch::Contains("unknown axis key 'speed'"));
  CHECK_THAT(error_of("name: [t\n"), Catch::Contains("not valid YAML"));
  CHECK_THAT(error_of("name: t\ndataset: cora\nsplit: random:0.9,0.2\n"),
             Catch::Contains("key 'split': value 'random:0.9,0.2'") && Catch::Contains("summing below 1"));
  CHECK_THAT(error_of("name: t\ndataset: cora\nsplit_seed: often\n"), Catch::Contains("seed or an integer"));
  CHECK_THAT(error_of("name: t\ndataset: cora\n").substr(0, 8), Catch::Equals("no error"));
}

TEST_CASE("peer strategy axes expand only where they combine", "[manifest][peers]") {
  const auto dir = testing::temp_dir("manifest-peers");
  const auto points = expand(load_manifest(write(dir,
                                                 "name: p\n"
                                                 "dataset: cora\n"
                                                 "mode: [vanilla, quant, adaqp]\n"
                                                 "bits: [32, bf16]\n"
                                                 "stale: [false, true]\n"
                                                 "stale_momentum: [0, 0.9]\n"
                                                 "boundary_rate: [1, 0.1]\n")));
  // vanilla 32: plain, bns, stale, stale+momentum = 4; quant and adaqp at 32 and bf16: plain + bns
  // each (8), quant adds stale and stale+momentum at both widths (4); adaqp never stale.
  CHECK(points.size() == 16);
  std::set<std::string> ids;
  for (const auto& p : points) {
    ids.insert(p.id);
    const bool stale = p.values.at("stale") == "true";
    CHECK_FALSE((stale && p.values.at("mode") == "adaqp"));
    CHECK_FALSE((stale && p.values.at("boundary_rate") != "1"));
    CHECK_FALSE((!stale && p.values.at("stale_momentum") != "0"));
    if (stale) CHECK(p.id.find("-stale") != std::string::npos);
  }
  CHECK(ids.size() == points.size());
  // Points without a peer strategy keep the ids they had before these axes existed.
  const auto plain = expand(load_manifest(write(dir, "name: q\ndataset: cora\n")));
  CHECK(plain[0].id.find("-stale") == std::string::npos);
  // The split axes at their defaults leave ids as they were; another split is another point.
  const auto split = expand(load_manifest(write(dir, "name: q\ndataset: cora\nsplit: ['random:0.6,0.2']\n")));
  CHECK(split[0].id != plain[0].id);
  CHECK(expand(load_manifest(write(dir, "name: q\ndataset: cora\nsplit_seed: 0\n")))[0].id == plain[0].id);
  CHECK_THROWS_WITH(load_manifest(write(dir, "name: b\ndataset: cora\nboundary_rate: 0\n")),
                    Catch::Contains("a number in (0, 1]"));
}

TEST_CASE("frontier axes: widths, stale_bound, allreduce", "[manifest][peers]") {
  const auto dir = testing::temp_dir("manifest-frontier");
  const auto points = expand(load_manifest(write(dir,
                                                 "name: f\n"
                                                 "dataset: cora\n"
                                                 "mode: [vanilla, quant]\n"
                                                 "bits: [32, 1, adaptive]\n"
                                                 "widths: ['2,4,8', '1,2,4,8']\n"
                                                 "stale: [false, true]\n"
                                                 "stale_bound: [none, 10, auto]\n"
                                                 "allreduce: [overlap, after]\n")));
  // vanilla 32, quant 32, quant 1: plain + stale (3 bounds) = 4 each; quant adaptive x 2 widths: 8;
  // all of it x 2 all-reduce schedules.
  CHECK(points.size() == 40);
  for (const auto& p : points) {
    CAPTURE(p.id);
    CHECK_FALSE((p.values.at("stale") == "false" && p.values.at("stale_bound") != "none"));
    CHECK_FALSE((p.values.at("bits") != "adaptive" && p.values.at("widths") != "2,4,8"));
  }
  // At their defaults the new axes leave ids as they were.
  const auto plain = expand(load_manifest(write(dir, "name: q\ndataset: cora\n")));
  CHECK(expand(load_manifest(write(dir, "name: q\ndataset: cora\nallreduce: overlap\nstale_bound: none\n")))[0].id ==
        plain[0].id);
  const std::string base = "name: b\ndataset: cora\n";
  CHECK_THROWS_WITH(load_manifest(write(dir, base + "stale_bound: 0\n")), Catch::Contains("key 'stale_bound'"));
  CHECK_THROWS_WITH(load_manifest(write(dir, base + "allreduce: sometimes\n")), Catch::Contains("key 'allreduce'"));
  CHECK_THROWS_WITH(load_manifest(write(dir, base + "widths: '2,3'\n")), Catch::Contains("key 'widths'"));
  CHECK_THROWS_WITH(load_manifest(write(dir, base + "widths: '4,2'\n")), Catch::Contains("key 'widths'"));
}

TEST_CASE("lr_schedule axis: ids kept at constant", "[manifest]") {
  const auto dir = testing::temp_dir("manifest-lr");
  const auto plain = expand(load_manifest(write(dir, "name: q\ndataset: cora\n")));
  const auto points = expand(load_manifest(write(dir, "name: q\ndataset: cora\nlr_schedule: [constant, cosine]\n")));
  REQUIRE(points.size() == 2);
  CHECK(points[0].id == plain[0].id);  // older sweeps keep their ids
  CHECK(points[1].id != plain[0].id);
  CHECK(points[1].values.at("lr_schedule") == "cosine");  // the command: tests/sweep/test_sweep.sh
  CHECK_THROWS_WITH(load_manifest(write(dir, "name: b\ndataset: cora\nlr_schedule: step\n")),
                    Catch::Contains("key 'lr_schedule'"));
}

TEST_CASE("topologies and partition models are for the simulator's points only", "[manifest]") {
  const auto dir = testing::temp_dir("manifest-topology");
  const std::string base = "name: t\ndataset: cora\nparts: 2\n";
  CHECK_THROWS_WITH(load_manifest(write(dir, base + "executor: both\ntopology: [flat, 'nodes=2x1']\n")),
                    Catch::Contains("key 'topology': value 'nodes=2x1'"));
  CHECK_THROWS_WITH(load_manifest(write(dir, "name: t\ndataset: 'shape:nodes=100,edges=1000,features=8,classes=2'\n")),
                    Catch::Contains("key 'dataset'"));
  // The engine's points keep the flat topology; the simulator's alone take another.
  const auto m = load_manifest(write(dir, base + "executor: [both, simulator]\n"
                                                 "topology: [flat, 'nodes=2x1']\n"
                                                 "exclude:\n"
                                                 "  - {executor: both, topology: 'nodes=2x1'}\n"
                                                 "  - {executor: simulator, topology: flat}\n"));
  const auto points = expand(m);
  REQUIRE(points.size() == 2);
  for (const auto& p : points) CHECK((p.values.at("executor") == "simulator") == (p.values.at("topology") != "flat"));
  // assign_time: range, compute or seconds
  CHECK_NOTHROW(load_manifest(write(dir, base + "assign_time: [range, compute, 0.05]\n")));
  CHECK_THROWS_WITH(load_manifest(write(dir, base + "assign_time: fast\n")), Catch::Contains("key 'assign_time'"));
}
