// adaqp simulate: the training step's plans (built exactly as `adaqp train` builds them) run on
// the simulator's cost models; prints the predicted epoch time and its parts.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <vector>

#include "apps/commands.hpp"
#include "base/error.hpp"
#include "engine/metrics.hpp"
#include "graph/partition.hpp"
#include "graph/partition_folder.hpp"
#include "graph/registry.hpp"
#include "scheduler/adaptive.hpp"
#include "scheduler/build_plan.hpp"
#include "scheduler/memory_plan.hpp"
#include "scheduler/wire_format.hpp"
#include "simulator/simulator.hpp"

namespace adaqp::apps {

namespace {

// Medians of a measured run's epoch records (docs/metrics.md) and its settings.
struct Measured {
  nlohmann::json run;
  std::map<std::string, double> median;
  nlohmann::json quant_by_layer;  // of the last epoch that has it
};

// The JSON lines of a run's records file; `what` names the option it was given to.
std::vector<nlohmann::json> read_records(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the records (" + what + ")");
  std::vector<nlohmann::json> records;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    try {
      records.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception&) {
      throw Error(path + ": line " + std::to_string(n) + " is not JSON (" + what + " takes a run's records)");
    }
  }
  return records;
}

Measured read_measured(const std::string& path) {
  Measured m;
  std::map<std::string, std::vector<double>> values;
  for (const auto& r : read_records(path, "--compare")) {
    if (r.value("type", "") == "run") m.run = r;
    if (r.value("type", "") != "epoch") continue;
    if (r.contains("quant_by_layer")) m.quant_by_layer = r["quant_by_layer"];
    for (const char* k : {"epoch_s", "compute_s", "comm_s", "quant_s", "reduce_s", "eval_s", "bytes_sent"})
      if (r.contains(k) && r[k].is_number()) values[k].push_back(r[k].get<double>());
  }
  if (m.run.is_null() || values["epoch_s"].empty())
    throw Error(path + ": no run record or no epoch records (--compare takes a metrics file of adaqp train)");
  for (auto& [k, v] : values) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    m.median[k] = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  }
  return m;
}

// The record's "bits": "adaptive" or the uniform width.
std::string bits_name(const engine::TrainConfig& c) {
  return c.adaptive ? "adaptive" : scheduler::width_name(c.width);
}

// The same for people: "4-bit", "adaptive widths".
std::string bits_label(const engine::TrainConfig& c) {
  return c.adaptive ? "adaptive widths" : scheduler::width_name(c.width) + "-bit";
}

// --width-mix: a run record's last assignment (per channel; an older record's global histogram as
// fractions) or fractions such as "2:0.5,4:0.5".
scheduler::WidthMix read_width_mix(const std::string& spec, std::string* described) {
  scheduler::WidthMix mix;
  if (!std::filesystem::is_regular_file(spec)) {
    if (spec.find(':') == std::string::npos)
      throw Error("--width-mix '" + spec +
                  "': no such records file (give an adaptive run's records, or fractions "
                  "such as 2:0.5,4:0.4,8:0.1)");
    mix.fractions = scheduler::parse_width_fractions(spec);
    *described = spec;
    return mix;
  }
  nlohmann::json last;
  for (const auto& r : read_records(spec, "--width-mix"))
    if (r.value("type", "") == "epoch" && r.contains("assignment")) last = r;
  if (last.is_null()) throw Error(spec + ": no epoch record with an assignment (--width-mix takes an adaptive run's)");
  const auto& a = last["assignment"];
  const auto width_of = [&](const std::string& name) {
    const auto w = scheduler::parse_widths(name);
    return w.front();
  };
  if (a.contains("rows_at_bits_by_channel")) {
    for (const auto& c : a["rows_at_bits_by_channel"]) {
      const scheduler::ChannelKey key{
          c.at("layer").get<int>(),
          c.at("dir").get<std::string>() == "forward" ? scheduler::Direction::forward : scheduler::Direction::backward,
          c.at("sender").get<int>(), c.at("receiver").get<int>()};
      for (const auto& [name, rows] : c.at("rows_at_bits").items()) mix.channels[key][width_of(name)] = rows;
    }
    *described = spec + " (epoch " + std::to_string(last.value("epoch", 0)) + "'s assignment, per channel)";
  } else {
    double total = 0;
    for (const auto& [name, rows] : a.at("rows_at_bits").items()) total += rows.get<double>();
    for (const auto& [name, rows] : a.at("rows_at_bits").items())
      if (rows.get<double>() > 0) mix.fractions[width_of(name)] = rows.get<double>() / total;
    *described = spec + " (epoch " + std::to_string(last.value("epoch", 0)) + "'s histogram, as fractions)";
  }
  return mix;
}

// The plans `build` makes; with adaptive widths, made again with the --width-mix layouts on the
// channels of the first build (its pack tasks).
template <class Build>
engine::PlanSet plans_with_mix(const engine::TrainConfig& c, const scheduler::WidthMix& mix, Build build) {
  auto plans = build(nullptr);
  if (!c.adaptive) return plans;
  const auto assignment = scheduler::mix_assignment(plans.train, mix);
  return build(&assignment);
}

// The arena of the rank that needs the most (scheduler::run_arena_bytes over its plans).
std::int64_t arena_bytes(const std::vector<scheduler::Plan>& train, const std::vector<scheduler::Plan>& eval,
                         const std::vector<scheduler::Plan>& first = {}) {
  std::int64_t bytes = 0;
  for (std::size_t r = 0; r < train.size(); ++r)
    bytes = std::max(bytes, scheduler::run_arena_bytes({&train[r], r < eval.size() ? &eval[r] : nullptr,
                                                        r < first.size() ? &first[r] : nullptr}));
  return bytes;
}

// --shape: plans of a graph known only by a statistical model of its partitions.
int simulate_shape(const engine::TrainConfig& c, const SimulateOptions& o, const simulator::Profile& profile,
                   const simulator::Network& net) {
  if (!c.dataset.empty()) throw Error("simulate: give --dataset or --shape, not both");
  if (o.features < 1 || o.classes < 1) throw Error("simulate --shape: --features and --classes must be >= 1");
  const auto model = graph::parse_shape_model(o.shape);
  const auto shapes = graph::model_shapes(model, o.parts);
  const auto ms = engine::model_shape(c, o.features, o.classes);
  const auto t_build = std::chrono::steady_clock::now();
  std::vector<scheduler::Plan> train_plans, eval_plans;
  for (const auto& s : shapes) {
    train_plans.push_back(
        scheduler::build_plan(s, ms, scheduler::strategy_of(c.mode), true, c.width, nullptr, engine::plan_peers(c)));
    eval_plans.push_back(scheduler::build_plan(s, ms, scheduler::strategy_of(c.mode), false));
  }
  if (c.adaptive) {  // the given widths (--width-mix) on the same channels
    const auto assignment = scheduler::mix_assignment(train_plans, o.mix);
    for (std::size_t r = 0; r < shapes.size(); ++r)
      train_plans[r] = scheduler::build_plan(shapes[r], ms, scheduler::strategy_of(c.mode), true, c.width, &assignment,
                                             engine::plan_peers(c));
  }
  scheduler::validate(train_plans);
  scheduler::validate(eval_plans);
  const double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_build).count();
  const auto t0 = std::chrono::steady_clock::now();
  const auto train = simulator::simulate(train_plans, profile, net);
  const auto eval = simulator::simulate(eval_plans, profile, net);
  const double sim_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::size_t tasks = 0;
  for (const auto& p : train_plans) tasks += p.tasks.size();
  fmt::print("{} {} x {} on shape {} ({} features, {} classes), {} ranks, {} {}; profile {}, link {}, topology {}\n",
             to_string(c.model.kind), c.model.layers, c.model.hidden, o.shape, o.features, o.classes, o.parts,
             scheduler::to_string(c.mode), bits_label(c), profile.machine, o.link, net.topology.spec(o.parts));
  for (const auto& [name, value] :
       {std::pair{"epoch_s", train.epoch_s}, std::pair{"compute_s", train.compute_s}, std::pair{"comm_s", train.comm_s},
        std::pair{"quant_s", train.quant_s}, std::pair{"reduce_s", train.reduce_s}, std::pair{"eval_s", eval.epoch_s}})
    fmt::print("{:<10} {:>14.3f} ms\n", name, 1e3 * value);
  const std::int64_t arena = arena_bytes(train_plans, eval_plans);
  fmt::print(
      "bytes sent per epoch {}; {} tasks; plans built in {:.3f} s; {} events simulated in {:.3f} s "
      "({:.3g} events/s); activations, gradients and messages: {:.2f} GiB per rank (arena)\n",
      train.bytes_sent, tasks, build_s, train.events + eval.events, sim_s,
      double(train.events + eval.events) / std::max(sim_s, 1e-9), double(arena) / double(1 << 30));
  if (!o.metrics.empty()) {
    engine::RecordWriter w(o.metrics);
    w.write({{"type", "run"},
             {"started_utc", engine::utc_now()},
             {"ranks", o.parts},
             {"settings",
              {{"shape", o.shape},
               {"features", o.features},
               {"classes", o.classes},
               {"model", to_string(c.model.kind)},
               {"layers", c.model.layers},
               {"hidden", c.model.hidden},
               {"mode", scheduler::to_string(c.mode)},
               {"bits", bits_name(c)}}},
             {"simulated",
              {{"profile", o.profile},
               {"machine", profile.machine},
               {"link", o.link},
               {"topology", net.topology.spec(o.parts)}}}});
    auto summary = simulator::summary_record(train, eval, o.parts, scheduler::to_string(c.mode), bits_name(c), sim_s);
    summary["strategy"] = scheduler::strategy_name(c.mode, c.peers);
    summary["arena_bytes"] = arena;
    w.write(summary);
    w.commit();
    fmt::print("records written to {}\n", o.metrics);
  }
  return 0;
}

}  // namespace

int cmd_simulate(const engine::TrainConfig& c, const SimulateOptions& options) {
  SimulateOptions o = options;
  std::string mix_described;
  if (c.adaptive) {
    if (o.width_mix.empty())
      throw Error(
          "simulate --bits adaptive: the assigner's widths depend on run-time row ranges; give them with "
          "--width-mix (an adaptive run's records, or fractions such as 2:0.5,4:0.4,8:0.1)");
    o.mix = read_width_mix(o.width_mix, &mix_described);
    o.mix.group_size = c.assign.group_size;
  } else if (!o.width_mix.empty()) {
    throw Error("--width-mix goes with --bits adaptive");
  }
  if (o.profile.empty()) throw Error("simulate: --profile PROFILE is required (profiles/ ships some)");
  auto profile = simulator::load_profile(o.profile);
  if (!o.probe.empty()) {
    double factor = 0;
    try {
      factor = simulator::rescale_to_probe(profile, simulator::load_probe(o.probe));
    } catch (const Error& e) {
      throw Error("simulate --probe " + o.probe + " with --profile " + o.profile + ": " + e.what());
    }
    fmt::print("host-speed probe {}: compute costs x {:.3f} (geometric mean over {} benchmarks)\n", o.probe, factor,
               profile.probe.seconds.size());
  }
  const auto net = simulator::make_network(profile, o.parts, o.topology, o.link);
  if (!o.shape.empty()) return simulate_shape(c, o, profile, net);
  if (c.dataset.rfind("shape:", 0) == 0) {
    // --dataset shape:...,features=F,classes=C: the partition model with the model's widths.
    SimulateOptions so = o;
    engine::TrainConfig cc = c;
    std::string rest;
    std::stringstream items(c.dataset.substr(6));
    for (std::string item; std::getline(items, item, ',');) {
      const auto eq = item.find('=');
      const std::string key = item.substr(0, eq), value = eq == std::string::npos ? "" : item.substr(eq + 1);
      try {
        if (key == "features")
          so.features = std::stoll(value);
        else if (key == "classes")
          so.classes = std::stoll(value);
        else
          rest += (rest.empty() ? "" : ",") + item;
      } catch (const std::exception&) {
        throw Error("--dataset '" + c.dataset + "': key '" + key + "' needs a number");
      }
    }
    so.shape = rest;
    cc.dataset.clear();
    return simulate_shape(cc, so, profile, net);
  }
  if (c.dataset.empty() == c.partitions.empty()) throw Error("simulate: give --dataset, --partitions or --shape");
  graph::DatasetInfo data;
  engine::PlanSet plans;
  std::string spec = c.dataset;  // what the measured run records as its dataset
  if (!c.partitions.empty()) {
    // The folder's sizes alone (meta.json): no part is read.
    const auto meta = graph::read_partition_meta(c.partitions);
    if (meta.parts != o.parts)
      throw Error("--parts " + std::to_string(o.parts) + ": the partition folder " + c.partitions + " has " +
                  std::to_string(meta.parts) + " parts");
    data = meta.info;
    spec = meta.how.spec;
    plans = plans_with_mix(c, o.mix, [&](const scheduler::BitAssignment* a) {
      return engine::make_plans(c, meta.info, meta.shapes, meta.feature_nnz, a);
    });
  } else {
    const auto whole = graph::load_dataset(c.dataset);
    const auto owner = graph::partition_graph(whole.adj, o.parts, c.partition, c.partition_seed);
    const auto parts = graph::build_partitions(whole.adj, owner, o.parts);
    data = graph::info_of(whole);
    plans = plans_with_mix(
        c, o.mix, [&](const scheduler::BitAssignment* a) { return engine::make_plans(whole, c, owner, parts, a); });
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto train = simulator::simulate(plans.train, profile, net, !o.trace.empty());
  const auto eval = simulator::simulate(plans.eval, profile, net);
  const double sim_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string bits = bits_name(c);
  auto summary = simulator::summary_record(train, eval, o.parts, scheduler::to_string(c.mode), bits, sim_s);
  summary["strategy"] = scheduler::strategy_name(c.mode, c.peers);
  summary["arena_bytes"] = arena_bytes(plans.train, plans.eval, plans.train_first);

  fmt::print("{} {} x {} on {}, {} ranks, {} {}; profile {} ({} thread(s)/rank), link {}, topology {}\n",
             to_string(c.model.kind), c.model.layers, c.model.hidden, data.name, o.parts, scheduler::to_string(c.mode),
             bits_label(c), profile.machine, profile.threads, o.link, net.topology.spec(o.parts));
  if (c.adaptive) fmt::print("widths given by --width-mix {}\n", mix_described);
  std::optional<Measured> measured;
  if (!o.compare.empty()) {
    measured = read_measured(o.compare);
    const auto& s = measured->run["settings"];
    auto check = [&](const char* key, const std::string& mine) {
      const std::string theirs =
          s.contains(key) ? (s[key].is_string() ? s[key].get<std::string>() : s[key].dump()) : "";
      if (theirs != mine)
        throw Error(o.compare + ": measured run has " + key + " '" + theirs + "', simulated '" + mine + "'");
    };
    check("mode", scheduler::to_string(c.mode));
    check("bits", bits);
    check("dataset", spec);
    // Predicted and measured are comparable only on the host the profile describes.
    const int threads = s.value("threads", 0);  // 0: cores / ranks, not known here
    if (threads > 0 && threads != profile.threads)
      throw Error(o.compare + ": the run used " + std::to_string(threads) + " thread(s) per rank; profile " +
                  o.profile + " is calibrated for " + std::to_string(profile.threads) + " (adaqp calibrate --threads " +
                  std::to_string(threads) + ")");
    const std::string backend = s.value("backend", std::string());
    if (!backend.empty() && !profile.backend.empty() && backend != profile.backend)
      throw Error(o.compare + ": the run used backend '" + backend + "'; profile " + o.profile + " is for '" +
                  profile.backend + "'");
    if (measured->run.value("ranks", 0) != o.parts)
      throw Error(o.compare + ": measured run has " + std::to_string(measured->run.value("ranks", 0)) +
                  " ranks, simulated " + std::to_string(o.parts));
  }
  const std::pair<const char*, double> rows[] = {{"epoch_s", train.epoch_s},   {"compute_s", train.compute_s},
                                                 {"comm_s", train.comm_s},     {"quant_s", train.quant_s},
                                                 {"reduce_s", train.reduce_s}, {"eval_s", eval.epoch_s}};
  if (measured)
    fmt::print("{:<10} {:>14} {:>14} {:>9}\n", "", "predicted ms", "measured ms", "error");
  else
    fmt::print("{:<10} {:>14}\n", "", "predicted ms");
  for (const auto& [name, value] : rows) {
    if (!measured) {
      fmt::print("{:<10} {:>14.3f}\n", name, 1e3 * value);
      continue;
    }
    const auto it = measured->median.find(name);
    const double m = it == measured->median.end() ? 0 : it->second;
    const std::string err = m > 0 ? fmt::format("{:+.1f}%", 100 * (value - m) / m) : "-";
    fmt::print("{:<10} {:>14.3f} {:>14.3f} {:>9}\n", name, 1e3 * value, 1e3 * m, err);
  }
  fmt::print("activations, gradients and messages: {:.3f} GiB per rank (arena_bytes {})\n",
             double(summary["arena_bytes"].get<std::int64_t>()) / double(1 << 30),
             summary["arena_bytes"].get<std::int64_t>());
  fmt::print("bytes sent per epoch {} ({} metadata); {} events simulated in {:.3f} s\n", train.bytes_sent,
             train.bytes_meta, train.events + eval.events, sim_s);
  if (measured && measured->quant_by_layer.is_array() && !measured->quant_by_layer.empty()) {
    // The variance model (C - 2) range^2 / (6 (2^b - 1)^2) per row, applied to the run's own row ranges,
    // next to the measured squared error (per element).
    fmt::print("quantization variance per element (model from the run's row ranges vs measured):\n");
    fmt::print("{:>5} {:<9} {:>12} {:>13} {:>13} {:>8}\n", "layer", "dir", "elements", "model", "measured", "error");
    for (const auto& q : measured->quant_by_layer) {
      const double n = q.value("elements", 0.0), model = q.value("model_sq", 0.0) / std::max(n, 1.0),
                   meas = q.value("error_sq", 0.0) / std::max(n, 1.0);
      fmt::print("{:>5} {:<9} {:>12.0f} {:>13.4e} {:>13.4e} {:>+7.1f}%\n", q.value("layer", -1),
                 q.value("dir", std::string()), n, model, meas, meas > 0 ? 100 * (model - meas) / meas : 0.0);
    }
  }
  if (!o.trace.empty()) {
    engine::RecordWriter tw(o.trace);
    for (std::size_t rank = 0; rank < plans.train.size(); ++rank)
      for (const auto& t : plans.train[rank].tasks) {
        const auto& span = train.timeline[rank][std::size_t(t.id)];
        auto r = engine::task_record(t, int(rank));
        r["predicted_s"] = span.end_s - span.start_s;
        r["start_s"] = span.start_s;
        tw.write(r);
      }
    tw.commit();
  }
  if (!o.metrics.empty()) {
    engine::RecordWriter w(o.metrics);
    auto run = engine::run_record(c, data, o.parts);
    run["settings"]["dataset"] = spec;
    run["simulated"] = {{"width_mix", o.width_mix},
                        {"profile", o.profile},
                        {"machine", profile.machine},
                        {"link", o.link},
                        {"topology", net.topology.spec(o.parts)},
                        {"profile_threads", profile.threads},
                        {"probe", o.probe}};
    w.write(run);
    w.write(summary);
    w.commit();
    fmt::print("records written to {}\n", o.metrics);
  }
  return 0;
}

nlohmann::json run_record_of(const std::string& path) {
  for (const auto& r : read_records(path, "--like"))
    if (r.value("type", "") == "run" && r.contains("settings") && r["settings"].is_object()) return r;
  throw Error(path + ": no run record (--like takes the records of adaqp train --metrics)");
}

}  // namespace adaqp::apps
