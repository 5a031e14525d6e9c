// Paired-seed statistics of sweeps (experiments/paired.hpp): the numbers against a hand
// computation, the verdict on a 0.3-point claim, and the grouping of runs into contexts.
#include <catch2/catch.hpp>
#include <cmath>

#include "experiments/manifest.hpp"
#include "experiments/paired.hpp"

using namespace adaqp::experiments;

TEST_CASE("paired difference: mean, standard error and Student-t interval in points", "[paired]") {
  // d = 1, 2, -0.5 points: mean 5/6, sd sqrt(19/12), se sd / sqrt(3), t(0.975, 2) = 4.302653
  const auto d = paired_difference({0.80, 0.82, 0.81}, {0.79, 0.80, 0.815});
  CHECK(d.n == 3);
  CHECK(d.mean == Approx(5.0 / 6.0));
  CHECK(d.se == Approx(std::sqrt(19.0 / 12.0) / std::sqrt(3.0)));
  CHECK(d.ci_high - d.mean == Approx(4.302653 * d.se).epsilon(1e-6));
  CHECK(d.mean - d.ci_low == Approx(4.302653 * d.se).epsilon(1e-6));
  CHECK(claim_verdict(d) == "undecided");
  // Large n: the quantile tends to 1.96.
  std::vector<double> a(1000), b(1000);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = 0.5 + 0.001 * double(i % 7), b[i] = 0.5;
  const auto big = paired_difference(a, b);
  CHECK((big.ci_high - big.mean) / big.se == Approx(1.9623).epsilon(1e-3));
}

TEST_CASE("the verdict on 'loses at most 0.3 points' needs an interval that decides it", "[paired]") {
  CHECK(claim_verdict(paired_difference({0.801, 0.800, 0.8005, 0.7995}, {0.800, 0.800, 0.800, 0.800})) == "within");
  CHECK(claim_verdict(paired_difference({0.79, 0.789, 0.791, 0.79}, {0.80, 0.80, 0.80, 0.80})) == "beyond");
  CHECK(claim_verdict(paired_difference({0.79, 0.81}, {0.80, 0.80})) == "undecided");
  const auto one = paired_difference({0.7}, {0.8});
  CHECK(one.mean == Approx(-10.0));
  CHECK(std::isnan(one.se));
  CHECK(claim_verdict(one) == "n<2");
  CHECK_THROWS(paired_difference({0.7}, {}));
}

TEST_CASE("runs pair by seed within their context against vanilla", "[paired]") {
  auto run = [](std::string mode, std::string bits, std::string seed, std::string link, double acc, double epoch,
                std::string executor = "engine") {
    FinishedRun r;
    r.point = {{"dataset", "cora"}, {"mode", mode},    {"bits", bits},     {"seed", seed},
               {"link", link},      {"lambda", "0.5"}, {"stale", "false"}, {"boundary_rate", "1"}};
    r.executor = executor;
    r.strategy = mode;
    r.summary = {{"test_acc_at_best_val", acc},
                 {"final_test_acc", acc - 0.01},
                 {"tail_test_acc", acc},
                 {"median_epoch_s", epoch}};
    return r;
  };
  const std::vector<FinishedRun> runs = {
      run("vanilla", "32", "0", "none", 0.80, 0.4),
      run("vanilla", "32", "1", "none", 0.81, 0.4),
      run("vanilla", "32", "2", "none", 0.82, 0.4),
      run("adaqp", "4", "0", "none", 0.79, 0.1),
      run("adaqp", "4", "1", "none", 0.81, 0.1),
      run("adaqp", "4", "5", "none", 0.10, 0.1),               // no partner
      run("adaqp", "4", "0", "none", 0.10, 0.1, "simulator"),  // not an accuracy
      run("adaqp", "4", "0", "1gbit", 0.79, 0.2),              // another context, without a baseline
  };
  const auto rows = paired_rows(runs);
  REQUIRE(rows.size() == 3);  // one strategy x 3 measures
  for (const auto& r : rows) {
    CHECK(r.strategy == "adaqp-4");
    CHECK(r.baseline == "vanilla");
    CHECK(r.diff.n == 2);
    CHECK(r.seeds == "0 1");
    CHECK(r.speedup == Approx(4.0));
    CHECK(r.context.count("seed") == 0);
    CHECK(r.context.count("mode") == 0);
    CHECK(r.context.at("link") == "none");
  }
  CHECK(rows[0].diff.mean == Approx(-0.5));  // (-1 + 0) / 2 points
  const std::string csv = paired_csv(rows);
  CHECK(csv.rfind("dataset,link,strategy,baseline,measure,n,mean_points", 0) == 0);
  CHECK(csv.find("adaqp-4,vanilla,test_acc_at_best_val,2,-0.5,") != std::string::npos);
}

TEST_CASE("accuracy from shared memory takes its speedup from the emulated link of its link model", "[paired]") {
  auto run = [](std::string mode, std::string bits, std::string seed, std::string link, std::string model, double acc,
                double epoch) {
    FinishedRun r;
    r.point = {{"dataset", "cora"}, {"mode", mode}, {"bits", bits},
               {"seed", seed},      {"link", link}, {"link_model", model}};
    r.executor = "engine";
    r.strategy = mode;
    r.summary = {
        {"test_acc_at_best_val", acc}, {"final_test_acc", acc}, {"tail_test_acc", acc}, {"median_epoch_s", epoch}};
    return r;
  };
  std::vector<FinishedRun> runs = {
      run("vanilla", "32", "0", "none", "50:0.25", 0.80, 0.4),
      run("vanilla", "32", "1", "none", "50:0.25", 0.80, 0.4),
      run("adaqp", "4", "0", "none", "50:0.25", 0.80, 0.2),
      run("adaqp", "4", "1", "none", "50:0.25", 0.79, 0.2),
      // the time of the same strategies over the emulated 250 Mbit/s link, one seed
      run("vanilla", "32", "0", "250mbit", "probe", 0.80, 3.0),
      run("adaqp", "4", "0", "250mbit", "probe", 0.80, 1.0),
  };
  auto shm_row = [](const std::vector<PairedRow>& rows) {
    for (const auto& r : rows)
      if (r.context.at("link") == "none" && r.measure == "test_acc_at_best_val") return r;
    FAIL("no shared-memory row");
    return PairedRow{};
  };
  const auto joined = shm_row(paired_rows(runs));
  CHECK(joined.diff.n == 2);
  CHECK(joined.speedup == Approx(3.0));
  CHECK(joined.speedup_link == "250mbit");
  CHECK(joined.speedup_seeds == "0");
  CHECK(paired_csv(paired_rows(runs)).find(",3,250mbit,0,0 1\n") != std::string::npos);

  runs[4].point["link"] = runs[5].point["link"] = "1gbit";  // another rate than the model's: no join
  const auto own = shm_row(paired_rows(runs));
  CHECK(own.speedup == Approx(2.0));
  CHECK(own.speedup_link.empty());

  CHECK(link_rate_gbps("250mbit") == Approx(0.25));
  CHECK(link_rate_gbps("1.5gbit") == Approx(1.5));
  CHECK(link_rate_gbps("500kbit") == Approx(5e-4));
  CHECK(std::isnan(link_rate_gbps("none")));
  CHECK(std::isnan(link_rate_gbps("250 mbit")));
}
