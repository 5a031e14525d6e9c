// adaqp: the one command line. Subcommands: datasets, export, partition, plan, train, simulate,
// calibrate, sweep, report.
// User mistakes print one line "adaqp: error: ..." and exit 2; nothing half-written is left.
// Under mpirun every rank runs the same command; an error on any rank aborts all of them.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "apps/commands.hpp"
#include "engine/comm/communicator.hpp"
#include "experiments/sweep.hpp"
#ifdef ADAQP_WITH_CUDA
#include "engine/cuda/executor.hpp"
#endif
#include "base/error.hpp"
#include "base/resources.hpp"
#include "engine/trainer.hpp"
#include "graph/partition.hpp"
#include "graph/partition_folder.hpp"
#ifdef ADAQP_WITH_DISTRIBUTED
#include "graph/distributed_partition.hpp"
#endif
#include "graph/registry.hpp"
#include "scheduler/memory_plan.hpp"
#include "scheduler/plan.hpp"
#include "scheduler/wire_format.hpp"

namespace {

using namespace adaqp;

int cmd_datasets() {
  fmt::print("{:<18} {:>8} {:>10} {:>6} {:>8}  {:<18} {:<10} {}\n", "name", "nodes", "edges", "F", "classes", "split",
             "published", "source");
  for (const auto& e : graph::load_registry()) {
    if (!e.synthetic.empty()) {  // generated on use (minutes for the paper-scale ones): not counted here
      fmt::print("{:<18} {:>8} {:>10} {:>6} {:>8}  {:<18} {:<10} {}\n", e.name, "-", "-", "-", "-", e.split, "-",
                 e.source + " (" + e.synthetic + ")");
      continue;
    }
    graph::LoadOptions opt;
    opt.features = false;
    const auto d = graph::load_dataset(e.name, opt);
    fmt::print("{:<18} {:>8} {:>10} {:>6} {:>8}  {:<18} {:<10} {}\n", e.name, d.num_nodes, d.num_directed_edges(),
               d.num_features, d.num_classes,
               fmt::format("{}/{}/{}", d.count(d.train_mask), d.count(d.val_mask), d.count(d.test_mask)),
               e.published_accuracy ? fmt::format("{:.1f}%", 100 * *e.published_accuracy) : "-", e.source);
  }
  fmt::print("edges: directed, after symmetrising (each undirected edge counts twice); split: train/val/test\n");
  return 0;
}

int cmd_export(const std::string& dataset, const std::string& out, const std::string& split, std::uint64_t split_seed) {
  graph::LoadOptions opt;
  opt.split = graph::parse_split(split);
  opt.split_seed = split_seed;
  const auto d = graph::load_dataset(dataset, opt);
  graph::save_npz(d, out);
  fmt::print("{}: {} nodes, {} undirected edges, {} features, {} classes, {}/{}/{} train/val/test -> {}\n", d.name,
             d.num_nodes, d.num_directed_edges() / 2, d.num_features, d.num_classes, d.count(d.train_mask),
             d.count(d.val_mask), d.count(d.test_mask), out);
  return 0;
}

// Under mpirun (or with --method ptscotch): every process holds a block of the graph
// (graph/distributed_partition.hpp); process 0 prints.
int cmd_partition_distributed(const std::string& dataset, int parts, graph::PartitionMethod method, std::uint64_t seed,
                              bool json, const std::string& out, const std::string& split, std::uint64_t split_seed,
                              const std::string& strategy, engine::Communicator& comm) {
#ifdef ADAQP_WITH_DISTRIBUTED
  if (out.empty())
    throw Error("partition over MPI (--method ptscotch or under mpirun) writes a folder: give --out DIR");
  graph::DistributedPartitionOptions o;
  o.dataset = {dataset, graph::to_string(graph::parse_split(split)), split_seed};
  o.parts = parts;
  o.method = method;
  o.seed = seed;
  o.strategy = strategy;
  o.out = out;
  const auto r = graph::partition_distributed(o);
  if (comm.rank() != 0) return 0;
  auto j = r.meta["stats"];
  if (json) {
    j["dataset"] = r.meta["dataset"]["name"];
    j["method"] = graph::to_string(method);
    if (r.meta.contains("strategy")) j["strategy"] = r.meta["strategy"];
    j["processes"] = comm.size();
    j["load_s"] = r.load_s;
    j["partition_s"] = r.partition_s;
    j["write_s"] = r.write_s;
    j["peak_rss_bytes"] = r.peak_rss_bytes;
    j["out"] = out;
    std::cout << j.dump(2) << '\n';
    return 0;
  }
  fmt::print("{}: {} nodes, {} directed edges, {} parts ({}{}, {} processes)\n",
             r.meta["dataset"]["name"].get<std::string>(), j["nodes"].get<std::int64_t>(),
             j["directed_edges"].get<std::int64_t>(), parts, graph::to_string(method),
             r.meta.contains("strategy") ? " strategy " + r.meta["strategy"].get<std::string>() : "", comm.size());
  fmt::print("edge cut {}, communication volume {} rows, imbalance nodes {:.3f}, edges {:.3f}\n",
             j["edge_cut"].get<std::int64_t>(), j["comm_volume_rows"].get<std::int64_t>(),
             j["node_imbalance"].get<double>(), j["edge_imbalance"].get<double>());
  fmt::print("load {:.2f} s, partition {:.2f} s, write {:.2f} s, peak memory per process {:.2f} GB\n", r.load_s,
             r.partition_s, r.write_s, double(r.peak_rss_bytes) / 1e9);
  fmt::print("partition folder written to {} (train with --partitions {})\n", out, out);
  return 0;
#else
  (void)dataset, (void)parts, (void)seed, (void)json, (void)out, (void)split, (void)split_seed, (void)strategy;
  (void)comm;
  throw Error("--method " + graph::to_string(method) + ": this build has no MPI (partitioning over MPI needs it)");
#endif
}

int cmd_partition(const std::string& dataset, int parts, const std::string& method, std::uint64_t seed, bool json,
                  const std::string& out, const std::string& split, std::uint64_t split_seed,
                  const std::string& strategy, engine::Communicator& comm) {
  if (const auto m = graph::parse_partition_method(method); m == graph::PartitionMethod::ptscotch || comm.size() > 1)
    return cmd_partition_distributed(dataset, parts, m, seed, json, out, split, split_seed, strategy, comm);
  if (!out.empty()) graph::require_new_folder(out);
  const auto t0 = std::chrono::steady_clock::now();
  auto since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  graph::LoadOptions opt;
  opt.features = !out.empty();  // the folder holds the features; statistics need the graph only
  opt.split = graph::parse_split(split);
  opt.split_seed = split_seed;
  const auto d = graph::load_dataset(dataset, opt);
  const double load_s = since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  const auto m = graph::parse_partition_method(method);
  const auto owner = graph::partition_graph(d.adj, parts, m, seed);
  const auto lps = graph::build_partitions(d.adj, owner, parts);
  const double partition_s = since(t1);
  const auto s = graph::partition_stats(lps);
  double write_s = 0;
  if (!out.empty()) {
    const auto t2 = std::chrono::steady_clock::now();
    graph::write_partition_folder(out, d, {dataset, graph::to_string(opt.split), split_seed}, owner, lps, m, seed);
    write_s = since(t2);
  }
  const std::int64_t rss = adaqp::peak_rss_bytes();
  if (json) {
    nlohmann::json j = graph::to_json(s);
    j["dataset"] = d.name;
    j["method"] = graph::to_string(m);
    j["load_s"] = load_s;
    j["partition_s"] = partition_s;
    j["write_s"] = write_s;
    j["peak_rss_bytes"] = rss;
    if (!out.empty()) j["out"] = out;
    std::cout << j.dump(2) << '\n';
    return 0;
  }
  fmt::print("{}: {} nodes, {} directed edges, {} parts ({})\n", d.name, s.num_nodes, s.num_directed_edges, parts,
             graph::to_string(m));
  fmt::print("edge cut            {} undirected edges ({:.2f}% of all)\n", s.edge_cut,
             s.num_directed_edges ? 200.0 * double(s.edge_cut) / double(s.num_directed_edges) : 0.0);
  fmt::print("communication volume {} rows per exchanged layer and direction\n", s.comm_volume_rows);
  fmt::print("marginal fraction   {:.4f}\nload imbalance      nodes {:.3f}, edges {:.3f} (max / mean)\n",
             s.marginal_fraction, s.node_imbalance, s.edge_imbalance);
  fmt::print("{:>5} {:>9} {:>9} {:>9} {:>9} {:>11}\n", "part", "inner", "central", "marginal", "halo", "edges");
  for (int p = 0; p < parts; ++p)
    fmt::print("{:>5} {:>9} {:>9} {:>9} {:>9} {:>11}\n", p, s.inner[p], s.inner[p] - s.marginal[p], s.marginal[p],
               s.halo[p], s.local_edges[p]);
  fmt::print("halo rows received (row: receiver, column: owner)\n{:>5}", "");
  for (int q = 0; q < parts; ++q) fmt::print(" {:>8}", q);
  fmt::print("\n");
  for (int p = 0; p < parts; ++p) {
    fmt::print("{:>5}", p);
    for (int q = 0; q < parts; ++q) fmt::print(" {:>8}", s.halo_rows[p][q]);
    fmt::print("\n");
  }
  fmt::print("load {:.2f} s, partition {:.2f} s{}, peak memory {:.2f} GB\n", load_s, partition_s,
             out.empty() ? "" : fmt::format(", write {:.2f} s", write_s), double(rss) / 1e9);
  if (!out.empty()) fmt::print("partition folder written to {} (train with --partitions {})\n", out, out);
  return 0;
}

int cmd_train(engine::TrainConfig& c, bool quiet, engine::Communicator& comm) {
  auto shard = engine::load_shard(c, comm);
  const auto data = shard.info;
  const bool lead = comm.rank() == 0;
  if (!quiet && lead)
    fmt::print("{}: {} nodes, {} directed edges, {} features, {} classes, split {} ({}/{}/{}); {} rank(s), {}{}\n",
               data.name, data.num_nodes, data.num_directed_edges, data.num_features, data.num_classes, data.split_rule,
               data.n_train, data.n_val, data.n_test, comm.size(), scheduler::to_string(c.mode),
               c.partitions.empty() ? "" : "; parts from " + c.partitions);
  const auto result = engine::train(std::move(shard), c, comm, [&](const engine::EpochMetrics& m) {
    if (quiet) return;
    const std::string acc =
        m.evaluated ? fmt::format("train {:.4f}  val {:.4f}  test {:.4f}", m.train_acc, m.val_acc, m.test_acc)
                    : std::string("(not evaluated)");
    fmt::print("epoch {:>4}  loss {:.4f}  {}  epoch {:.2f} ms (compute {:.2f}, comm {:.2f}, reduce {:.2f})\n", m.epoch,
               m.loss, acc, 1e3 * m.epoch_s, 1e3 * m.compute_s, 1e3 * m.comm_s, 1e3 * m.reduce_s);
  });
  if (!lead) return 0;
  const auto& s = result.summary;
  fmt::print(
      "{} {} on {}, {} rank(s), {}: test accuracy {:.2f}% at best validation {:.2f}% (epoch {}), "
      "median epoch {:.2f} ms\n",
      to_string(c.model.kind), c.model.layers, data.name, comm.size(), s.strategy, 100 * s.test_acc_at_best_val,
      100 * s.best_val_acc, s.best_epoch, 1e3 * s.median_epoch_s);
  if (!c.metrics_path.empty()) fmt::print("records written to {}\n", c.metrics_path);
  return 0;
}

int cmd_plan(const engine::TrainConfig& c, int parts, int rank, bool eval, const std::string& dump) {
  const auto data = graph::load_dataset(c.dataset);
  if (rank < 0 || rank >= parts)
    throw Error("--rank " + std::to_string(rank) + ": must be in [0, " + std::to_string(parts) + ")");
  const auto owner = graph::partition_graph(data.adj, parts, c.partition, c.partition_seed);
  const auto lps = graph::build_partitions(data.adj, owner, parts);
  const auto plans = engine::make_plans(data, c, owner, lps);
  const auto& plan = (eval ? plans.eval : plans.train)[rank];
  if (dump == "json") {
    std::cout << scheduler::to_json(plan) << '\n';
  } else if (dump == "dot") {
    std::cout << scheduler::to_dot(plan);
  } else if (dump == "table") {
    fmt::print("plan of rank {} of {} ({}, {}-bit exchanges, {}): {} tasks, {} bytes sent ({} metadata)\n", rank, parts,
               eval ? scheduler::to_string(plan.strategy) : scheduler::strategy_name(c.mode, c.peers),
               scheduler::width_name(plan.width), eval ? "evaluation" : "training step", plan.tasks.size(),
               plan.bytes_sent(), plan.bytes_meta());
    fmt::print("{:>4} {:<7} {:<16} {:>8} {:>6} {:>6} {:>9} {:>10}  {:<28} {}\n", "id", "lane", "kind", "rows", "cols",
               "inner", "nnz", "bytes", "label", "deps");
    for (const auto& t : plan.tasks) {
      std::string deps;
      for (int d : t.deps) deps += (deps.empty() ? "" : ",") + std::to_string(d);
      fmt::print("{:>4} {:<7} {:<16} {:>8} {:>6} {:>6} {:>9} {:>10}  {:<28} {}\n", t.id, scheduler::to_string(t.lane),
                 scheduler::to_string(t.kind), t.rows, t.cols, t.inner, t.nnz, t.bytes, t.label, deps);
    }
  } else if (dump == "memory") {
    const auto m = scheduler::plan_memory(plan);
    fmt::print("{:<32} {:>14} {:>6} {:>6} {:>14}\n", "region", "bytes", "first", "last", "offset");
    for (std::size_t b = 0; b < plan.buffers.size(); ++b)
      fmt::print("{:<32} {:>14} {:>6} {:>6} {:>14}\n", plan.buffers[b].name, scheduler::buffer_bytes(plan.buffers[b]),
                 m.buffer_life[b].first, m.buffer_life[b].last,
                 plan.buffers[b].persistent ? std::string("persistent") : std::to_string(m.buffer_offset[b]));
    for (std::size_t k = 0; k < plan.messages.size(); ++k)
      fmt::print(
          "{:<32} {:>14} {:>6} {:>6} {:>14}\n",
          fmt::format("message {} (peer {}, {})", k, plan.messages[k].peer, plan.messages[k].outgoing ? "out" : "in"),
          plan.messages[k].bytes, m.message_life[k].first, m.message_life[k].last, m.message_offset[k]);
  } else {
    throw Error("--dump '" + dump + "': unknown format (allowed: table, json, dot, memory)");
  }
  if (dump == "table" || dump == "memory") {
    // The CPU backend's arena (--buffers shared) serves every plan of the run: its size is the largest.
    std::int64_t run_arena = 0, separate = 0;
    for (const auto* set : {&plans.train, &plans.eval, &plans.train_first})
      if (!set->empty()) {
        const auto m = scheduler::plan_memory((*set)[std::size_t(rank)]);
        run_arena = std::max(run_arena, m.arena_bytes);
        separate += m.separate_bytes;
      }
    const auto m = scheduler::plan_memory(plan);
    fmt::print(
        "memory of rank {}: this plan {:.1f} MiB in the arena ({:.1f} MiB as separate allocations); the run's "
        "arena (every plan) {:.1f} MiB, separate {:.1f} MiB; persistent stores not included\n",
        rank, m.arena_bytes / 1048576.0, m.separate_bytes / 1048576.0, run_arena / 1048576.0, separate / 1048576.0);
  }
  return 0;
}

// Options shared by train and plan.
void add_model_options(CLI::App* cmd, engine::TrainConfig& tc, std::string& model, std::string& mode,
                       std::string& partition, std::string& bits, std::string& assign, std::string& widths,
                       std::string& allreduce, std::string& stale_bound, bool need_dataset = true) {
  auto* dataset = cmd->add_option("--dataset", tc.dataset, "registered name, .npz, OGB folder, or sbm:/rmat: spec");
  if (need_dataset) dataset->required();
  cmd->add_option("--model", model, "gcn or sage")->capture_default_str();
  cmd->add_option("--layers", tc.model.layers, "number of layers")->capture_default_str();
  cmd->add_option("--hidden", tc.model.hidden, "hidden width")->capture_default_str();
  cmd->add_option("--dropout", tc.model.dropout, "dropout probability")->capture_default_str();
  cmd->add_option("--mode", mode,
                  "vanilla (fp32), quant (quantized), overlap (fp32, central rows during the exchange), "
                  "adaqp (quantized and overlapped)")
      ->capture_default_str();
  cmd->add_option("--bits", bits,
                  "exchange width: 32 (vanilla, overlap); 1, 2, 4, 8 (default), fp16 (= 16), bf16 or adaptive "
                  "(quant, adaqp)");
  cmd->add_flag("--stale", tc.peers.stale,
                "stale pipelining (PipeGCN): layers use last epoch's halo rows and gradients; the whole exchange "
                "overlaps compute (modes vanilla, quant)");
  cmd->add_option("--stale-momentum", tc.peers.stale_momentum,
                  "with --stale: smoothing of the stale rows, store = g * store + (1 - g) * received, g in [0, 1)")
      ->capture_default_str();
  cmd->add_option("--stale-bound", stale_bound,
                  "with --stale: a synchronous (fresh) exchange at least every K epochs (K >= 1), or auto: after "
                  "any epoch whose stale rows drifted more than --stale-drift from the stored ones");
  cmd->add_option("--stale-drift", tc.stale_drift,
                  "with --stale-bound auto: relative drift sqrt(sum |received - stored|^2 / sum |stored|^2) that "
                  "triggers a fresh epoch")
      ->capture_default_str();
  cmd->add_option("--boundary-rate", tc.peers.boundary_rate,
                  "boundary node sampling (BNS-GCN): fraction p in (0, 1] of boundary nodes exchanged per epoch")
      ->capture_default_str();
  cmd->add_option("--assign", assign, "with --bits adaptive: adaptive (MILP) or random widths")->capture_default_str();
  cmd->add_option("--widths", widths, "with --bits adaptive: the widths to choose from, e.g. 1,2,4,8")
      ->capture_default_str();
  cmd->add_option("--allreduce", allreduce,
                  "gradient all-reduce: overlap (each bucket while backward of the earlier layers runs, a wide "
                  "first layer's first and in row blocks; an optimizer update per bucket) or after (every "
                  "bucket after the whole backward pass, then one update); the same sums either way")
      ->capture_default_str();
  cmd->add_option("--lambda", tc.assign.lambda, "weight of quantization variance against time, in [0, 1]")
      ->capture_default_str();
  cmd->add_option("--group-size", tc.assign.group_size, "message rows per width group")->capture_default_str();
  cmd->add_option("--assign-period", tc.assign_period, "epochs between re-assignments (the first period: 8 bits)")
      ->capture_default_str();
  cmd->add_option("--assign-time", tc.assign_time,
                  "how the assigner normalises a round's time: range (its own), compute (its share of the "
                  "epoch's compute) or seconds")
      ->capture_default_str();
  cmd->add_option("--assign-time-limit", tc.assign.time_limit_s, "MILP time limit per exchange round (s)")
      ->capture_default_str();
  cmd->add_option("--link-model", tc.link_model,
                  "channel costs for the assigner: probe (measure every link) or ALPHA_US:GBPS for all links")
      ->capture_default_str();
  cmd->add_option("--partition", partition, "metis, metis-vol, metis-edges (nodes and edges balanced) or random")
      ->capture_default_str();
  cmd->add_option("--partition-seed", tc.partition_seed, "partitioner seed")->capture_default_str();
}

constexpr const char* kSplitHelp =
    "classes:TRAIN,VAL (per class), random:TRAIN,VAL (fractions of the labelled nodes), file[:K] (the file's "
    "K-th masks); default: the dataset's own (docs/design.md, graph/split.hpp)";

// Where every subcommand's options land.
struct Options {
  std::string ex_dataset, ex_out, ex_split;  // export
  std::uint64_t ex_split_seed = 0;
  std::string p_dataset, p_method = "metis", p_out, p_split, p_strategy = "default";  // partition
  int p_parts = 2;
  std::uint64_t p_seed = 0, p_split_seed = 0;
  bool p_json = false;
  engine::TrainConfig tc;  // plan, train, simulate
  std::string model = "gcn", mode = "vanilla", partition = "metis";
  std::string bits, assign = "adaptive";  // bits empty: the mode's default
  std::string widths = "2,4,8";           // --widths
  std::string allreduce = "overlap";      // --allreduce
  std::string stale_bound;                // --stale-bound: "", K or auto
  std::string lr_schedule = "constant";   // --lr-schedule (train)
  int pl_parts = 2, pl_rank = 0;          // plan
  bool pl_eval = false;
  std::string pl_dump = "table";
  bool quiet = false;
  apps::SimulateOptions so;
  apps::CalibrateOptions co;
  experiments::SweepOptions swo;
  std::string rep_dir;   // report
  std::string sim_like;  // simulate --like: a run's records
};

void add_data_commands(CLI::App& app, Options& o) {
  app.add_subcommand("datasets", "list the registered datasets with their counts");
  auto* ex = app.add_subcommand("export", "write a dataset (registered, file or synthetic) as an .npz in layout A");
  ex->add_option("--dataset", o.ex_dataset, "registered name, .npz, OGB folder, or sbm:/rmat: spec")->required();
  ex->add_option("--out", o.ex_out, "the .npz file to write")->required();
  ex->add_option("--split", o.ex_split, kSplitHelp);
  ex->add_option("--split-seed", o.ex_split_seed, "seed of the random splits (classes, random)")->capture_default_str();
  auto* part = app.add_subcommand("partition", "partition a graph and print partition statistics");
  part->add_option("--dataset", o.p_dataset, "registered name, .npz, OGB folder, or sbm:/rmat: spec")->required();
  part->add_option("--parts", o.p_parts, "number of parts (ranks)")->required();
  part->add_option("--method", o.p_method,
                   "metis (edge cut), metis-vol (communication volume), metis-edges (edge cut, nodes and edges "
                   "balanced), random, ptscotch (PT-Scotch over the processes of mpirun; with --out)")
      ->capture_default_str();
  part->add_option("--seed", o.p_seed, "partitioner seed")->capture_default_str();
  part->add_flag("--json", o.p_json, "print the statistics as JSON");
  part->add_option("--out", o.p_out,
                   "write a partition folder here (meta.json and one part-R.npz per rank; train with --partitions)");
  part->add_option("--split", o.p_split, std::string(kSplitHelp) + "; stored in the --out folder");
  part->add_option("--split-seed", o.p_split_seed, "seed of the random splits (classes, random)")
      ->capture_default_str();
  part->add_option(
          "--strategy", o.p_strategy,
          "with --method ptscotch: Scotch's strategy flags, one or several joined by commas: default, quality "
          "(slower), speed, balance, safety, scalability (no sequential band refinement of bands over 10M edges)")
      ->capture_default_str();
}

void add_plan_command(CLI::App& app, Options& o) {
  auto* pl = app.add_subcommand("plan", "print the epoch plan the scheduler builds for one rank");
  add_model_options(pl, o.tc, o.model, o.mode, o.partition, o.bits, o.assign, o.widths, o.allreduce, o.stale_bound);
  pl->add_option("--parts", o.pl_parts, "number of ranks")->capture_default_str();
  pl->add_option("--rank", o.pl_rank, "which rank's plan")->capture_default_str();
  pl->add_flag("--eval", o.pl_eval, "the evaluation pass instead of the training step");
  pl->add_option("--dump", o.pl_dump, "table, json, dot or memory (each buffer's bytes, lifetime and arena offset)")
      ->capture_default_str();
}

void add_train_command(CLI::App& app, Options& o) {
  auto& tc = o.tc;
  auto* tr = app.add_subcommand("train", "train a GNN (one process, or one rank per process under mpirun)");
  add_model_options(tr, tc, o.model, o.mode, o.partition, o.bits, o.assign, o.widths, o.allreduce, o.stale_bound,
                    false);
  tr->add_option("--partitions", tc.partitions,
                 "instead of --dataset: a partition folder (adaqp partition --out); rank r reads only its part");
  tr->add_option("--epochs", tc.epochs, "training epochs")->capture_default_str();
  tr->add_option("--eval-every", tc.eval_every, "evaluate after every K-th epoch and after the last one")
      ->capture_default_str();
  tr->add_option("--lr", tc.adam.lr, "Adam learning rate")->capture_default_str();
  tr->add_option("--lr-schedule", o.lr_schedule,
                 "constant, or cosine: lr * (1 + cos(pi (epoch - 1) / epochs)) / 2, from --lr towards 0")
      ->capture_default_str();
  tr->add_option("--weight-decay", tc.adam.weight_decay, "L2 weight decay")->capture_default_str();
  tr->add_option("--seed", tc.seed, "seed of weights and dropout")->capture_default_str();
  tr->add_option("--split", tc.split, kSplitHelp);
  tr->add_option("--split-seed", tc.split_seed, "seed of the random splits (classes, random)")->capture_default_str();
  tr->add_option("--threads", tc.threads, "OpenMP/BLAS threads per rank (0 = cores / ranks on the host)")
      ->capture_default_str();
  tr->add_option("--metrics", tc.metrics_path, "write JSON Lines records to this file (rank 0)");
  tr->add_option("--checkpoint", tc.checkpoint_dir,
                 "folder of checkpoints: every rank's state, every --checkpoint-every epochs and after the last");
  tr->add_option("--checkpoint-every", tc.checkpoint_every, "epochs between checkpoints (0: none)")
      ->capture_default_str();
  tr->add_flag("--resume", tc.resume, "continue from the last complete checkpoint in --checkpoint DIR");
  tr->add_option("--comm-timeout", tc.comm_timeout_s,
                 "seconds a message or all-reduce may take before the run ends with an error naming the rank, "
                 "task and peer (0: no limit)")
      ->capture_default_str();
  tr->add_flag("--quiet", o.quiet, "no per-epoch lines");
  tr->add_option("--backend", tc.backend, "what runs the plans: cpu (the reference) or cuda (GPU kernels)")
      ->capture_default_str();
  tr->add_option("--transport", tc.transport,
                 "messages between GPU ranks: mpi (staged through pinned host memory), nccl (one rank per GPU) "
                 "or auto (nccl when every rank can, else mpi)")
      ->capture_default_str();
  tr->add_option("--buffers", tc.buffers,
                 "where the cpu backend keeps activations, gradients and messages: shared (one arena, regions "
                 "reused once dead) or separate (one allocation each)")
      ->capture_default_str();
  tr->add_option("--trace", tc.trace_path,
                 "write every rank's per-task mean seconds (epochs 2..E) as JSON Lines (profiling, simulator checks)");
}

void add_simulator_commands(CLI::App& app, Options& o) {
  auto& so = o.so;
  auto* sim = app.add_subcommand("simulate", "predict the epoch time of a training configuration on cost models");
  add_model_options(sim, o.tc, o.model, o.mode, o.partition, o.bits, o.assign, o.widths, o.allreduce, o.stale_bound,
                    false);
  sim->add_option("--like", o.sim_like,
                  "a measured run's records (adaqp train --metrics): every setting above and --parts that is not "
                  "given here is that run's; with its adaptive widths, --width-mix is its records too");
  sim->add_option("--parts", so.parts, "number of ranks")->capture_default_str();
  sim->add_option("--profile", so.profile, "calibration profile (adaqp calibrate; profiles/)")->required();
  sim->add_option("--topology", so.topology, "flat, shared or nodes=NxG (default: flat; shared with --link RATE)");
  sim->add_option("--link", so.link, "none (the profile's links) or the emulated loopback rate: 100mbit, 1gbit, ...")
      ->capture_default_str();
  sim->add_option("--metrics", so.metrics, "write run and summary records (predicted_epoch_s, ...) to this file");
  sim->add_option("--compare", so.compare, "records of a measured adaqp train run: print predicted next to measured");
  sim->add_option("--partitions", o.tc.partitions,
                  "instead of --dataset: a partition folder (adaqp partition --out); its meta.json's sizes");
  sim->add_option(
      "--shape", so.shape,
      "instead of --dataset: a statistical partition model nodes=N,edges=E[,halo=,marginal=,remote=,peers=]");
  sim->add_option("--features", so.features, "with --shape: input feature width")->capture_default_str();
  sim->add_option("--classes", so.classes, "with --shape: number of classes")->capture_default_str();
  sim->add_option("--width-mix", so.width_mix,
                  "with --bits adaptive: the widths, from an adaptive run's records (its last assignment, per "
                  "channel) or as fractions of message rows, e.g. 2:0.5,4:0.4,8:0.1");
  sim->add_option("--probe", so.probe,
                  "rescale the profile's compute costs to the host speed this probe saw (calibrate --probe-of)");
  sim->add_option("--trace", so.trace, "write every rank's per-task predicted seconds (JSON Lines, as train --trace)");

  auto& co = o.co;
  auto* cal = app.add_subcommand("calibrate", "measure this machine and write a calibration profile");
  cal->add_option("--out", co.out, "profile to write (updated in place when it exists)")->required();
  cal->add_option("--threads", co.threads, "compute threads per rank to calibrate for")->capture_default_str();
  cal->add_option("--corun", co.corun,
                  "processes timing each compute benchmark at once: the ranks per host the profile is for (they "
                  "share its caches and memory bandwidth); threads x corun must fit the host's cores")
      ->capture_default_str();
  cal->add_option("--corun-partner", co.corun_partner, "internal: a co-run partner process (set by --corun)")
      ->group("");
  cal->add_flag("--quick", co.quick, "a smaller benchmark grid (seconds instead of a minute)");
  cal->add_option("--probe-of", co.probe_of,
                  "time only PROFILE's host-speed probe benchmarks (seconds; its grid, threads and corun) and "
                  "write them to --out, for simulate --probe");
  cal->add_flag("--links-only", co.links_only, "only probe the link between ranks 0 and 1 (under mpirun)");
  cal->add_option("--link-class", co.link_class, "name of the probed link class (inter, lo, lo-1gbit, ...)")
      ->capture_default_str();
  cal->add_option("--machine", co.machine, "machine name recorded in the profile (default: host name)");
  cal->add_option("--backend", co.backend,
                  "whose kernels to time: cpu (OpenMP threads) or cuda (GPU kernels, device time; needs a GPU)")
      ->capture_default_str();
}

void add_experiment_commands(CLI::App& app, Options& o) {
  auto& swo = o.swo;
  auto* sw = app.add_subcommand("sweep", "run every point of an experiment manifest (experiments/)");
  sw->add_option("manifest", swo.manifest, "YAML manifest")->required();
  sw->add_option("--out", swo.out, "results folder (default: results/<manifest name>)");
  sw->add_flag("--resume", swo.resume, "continue a sweep whose folder already holds finished runs");
  sw->add_flag("--dry-run", swo.dry_run, "print the points and their commands, run nothing");
  sw->add_option("--jobs", swo.jobs, "simulator runs at a time (engine runs always run alone)")->capture_default_str();
  auto* rep = app.add_subcommand("report", "figures and an HTML page from a sweep's results folder");
  rep->add_option("dir", o.rep_dir, "results folder of adaqp sweep")->required();
}

// The run record's settings that simulate has no option for, because an epoch's predicted time does
// not depend on them: what is trained and how long (split, split_seed, epochs, eval_every, lr,
// lr_schedule, weight_decay, seed), run control (comm_timeout_s, checkpoint_every), what the profile
// fixes (threads, backend: checked against it by --compare; transport, buffers), what follows from
// other settings (strategy), and the MILP's time limit (assign_time_limit_s: the widths come from the
// run's records). Any other setting without a simulate option is an error, so that a setting added to
// the run record (engine/trainer.cpp run_record) is either given an option or listed here.
const std::set<std::string>& settings_not_priced() {
  static const std::set<std::string> keys = {
      "split",        "split_seed", "epochs",         "eval_every",         "lr",      "lr_schedule",
      "weight_decay", "seed",       "comm_timeout_s", "checkpoint_every",   "threads", "backend",
      "transport",    "buffers",    "strategy",       "assign_time_limit_s"};
  return keys;
}

// simulate --like RECORDS: each setting of the run record whose simulate option ("--" + the key,
// '_' as '-') was not given on the command line is given as if it had been; --parts from the
// record's ranks, --width-mix from the records themselves when the run had adaptive widths. Keys
// simulate has no option for must be in settings_not_priced() (else an error naming the setting).
void apply_run_settings(CLI::App& sim, Options& o) {
  const nlohmann::json run = apps::run_record_of(o.sim_like);
  nlohmann::json settings = run["settings"];
  // Runs recorded before --allreduce existed reduced every gradient after backward.
  if (!settings.contains("allreduce")) settings["allreduce"] = "after";
  if (run.contains("ranks")) settings["parts"] = run["ranks"];
  const bool from_folder = settings.value("partitions", std::string()) != "";
  auto give = [&](const std::string& key, const nlohmann::json& v) {
    std::string name = "--" + key;
    std::replace(name.begin(), name.end(), '_', '-');
    CLI::Option* opt = sim.get_option_no_throw(name);
    if (!opt) {
      if (settings_not_priced().count(key)) return;
      throw Error(o.sim_like + ": setting '" + key + "' (" + v.dump() +
                  "): simulate has no option for it (records of another adaqp version?)");
    }
    if (opt->count() > 0 || v.is_null()) return;
    if (key == "stale_bound" && v == 0) return;                 // 0: unbounded
    if (v.is_string() && v.get<std::string>().empty()) return;  // not set in the run
    if (key == "dataset" && from_folder) return;                // the folder's meta.json
    if (v.is_boolean() && !v.get<bool>()) return;               // a flag the run did not set
    try {
      opt->add_result(v.is_string() ? v.get<std::string>() : v.is_boolean() ? std::string("true") : v.dump());
      opt->run_callback();
    } catch (const CLI::Error& e) {
      throw Error(o.sim_like + ": setting '" + key + "' (" + v.dump() + "): " + e.what());
    }
  };
  for (const auto& [key, v] : settings.items()) give(key, v);
  if (settings.value("bits", std::string()) == "adaptive" && o.bits == "adaptive" && o.so.width_mix.empty())
    o.so.width_mix = o.sim_like;
}

// The model / strategy strings into the training configuration; throws adaqp::Error on bad values.
void resolve_train_config(Options& o) {
  auto& tc = o.tc;
  tc.model.kind = engine::parse_model_kind(o.model);
  tc.mode = scheduler::parse_mode(o.mode);
  tc.assign.scheme = scheduler::parse_assign_scheme(o.assign);
  tc.assign.seed = tc.seed;
  tc.adaptive = o.bits == "adaptive";
  if (tc.adaptive && !scheduler::quantizes(tc.mode))
    throw Error("--bits adaptive: mode '" + o.mode + "' exchanges fp32; use --mode quant or adaqp");
  if (tc.adaptive || o.bits.empty()) {
    tc.width = scheduler::quantizes(tc.mode) ? scheduler::Width::quant(8) : scheduler::Width::fp32();
  } else {
    tc.width = scheduler::parse_width(o.bits);
    if (tc.width.is_mixed())
      throw Error("--bits '" + o.bits + "': allowed " + scheduler::kWidthsAllowed + ", adaptive");
  }
  if (o.allreduce != "after" && o.allreduce != "overlap")
    throw Error("--allreduce '" + o.allreduce + "': allowed after, overlap");
  tc.adam.schedule = engine::parse_lr_schedule(o.lr_schedule);
  tc.peers.overlap_allreduce = o.allreduce == "overlap";
  if (!o.stale_bound.empty()) {
    if (!tc.peers.stale) throw Error("--stale-bound " + o.stale_bound + " needs --stale");
    if (o.stale_bound == "auto") {
      tc.stale_auto = true;  // the plans measure drift (engine::plan_peers)
    } else {
      std::size_t used = 0;
      long long k = 0;
      try {
        k = std::stoll(o.stale_bound, &used);
      } catch (const std::exception&) {
      }
      if (used != o.stale_bound.size() || k < 1)
        throw Error("--stale-bound '" + o.stale_bound + "': an integer >= 1 (epochs) or auto");
      tc.stale_bound = k;
    }
  }
  if (!(tc.stale_drift > 0)) throw Error("--stale-drift " + std::to_string(tc.stale_drift) + ": must be > 0");
  if (tc.stale_auto && tc.backend != "cpu")
    throw Error("--stale-bound auto: the stale rows' drift is measured by the cpu backend only (--backend " +
                tc.backend + "); give a number of epochs");
  tc.assign.widths = scheduler::parse_widths(o.widths);
  if (!tc.adaptive && tc.assign.widths != scheduler::AssignConfig{}.widths)
    throw Error("--widths " + o.widths + ": the widths the adaptive assigner chooses from; give --bits adaptive");
  if (tc.eval_every < 1) throw Error("--eval-every " + std::to_string(tc.eval_every) + ": must be >= 1");
  if (tc.assign_period < 1) throw Error("--assign-period " + std::to_string(tc.assign_period) + ": must be >= 1");
  engine::assign_time_scale(tc.assign_time, 1.0, 1);  // throws on a bad --assign-time
  tc.partition = graph::parse_partition_method(o.partition);
  tc.split = graph::to_string(graph::parse_split(tc.split));  // canonical, as recorded
}

int dispatch(const CLI::App& app, Options& o, engine::Communicator& comm) {
  if (app.got_subcommand("datasets")) return cmd_datasets();
  if (app.got_subcommand("export")) return cmd_export(o.ex_dataset, o.ex_out, o.ex_split, o.ex_split_seed);
  if (app.got_subcommand("partition"))
    return cmd_partition(o.p_dataset, o.p_parts, o.p_method, o.p_seed, o.p_json, o.p_out, o.p_split, o.p_split_seed,
                         o.p_strategy, comm);
  if (app.got_subcommand("plan")) return cmd_plan(o.tc, o.pl_parts, o.pl_rank, o.pl_eval, o.pl_dump);
  if (app.got_subcommand("train")) {
    const auto* tr = app.get_subcommand("train");
    if (o.tc.partitions.empty() == o.tc.dataset.empty())
      throw Error("train: give --dataset or --partitions (a partition folder), not both");
    if (!o.tc.partitions.empty())
      for (const char* flag : {"--split", "--split-seed", "--partition", "--partition-seed"})
        if (tr->count(flag) > 0)
          throw Error(std::string(flag) + ": fixed by the partition folder " + o.tc.partitions +
                      " (its meta.json); drop the option or partition again");
    return cmd_train(o.tc, o.quiet, comm);
  }
  if (app.got_subcommand("simulate")) return apps::cmd_simulate(o.tc, o.so);
  if (app.got_subcommand("calibrate")) return apps::cmd_calibrate(o.co, comm);
  if (app.got_subcommand("sweep")) return experiments::run_sweep(o.swo) == 0 ? 0 : 1;
  if (app.got_subcommand("report")) return experiments::run_report(o.rep_dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Under mpirun every process joins MPI_COMM_WORLD; a plain start is a single rank.
  std::unique_ptr<engine::Communicator> comm;
  try {
    comm =
        engine::launched_by_mpirun() ? engine::make_mpi_communicator(&argc, &argv) : engine::make_self_communicator();
  } catch (const adaqp::Error& e) {
    std::fprintf(stderr, "adaqp: error: %s\n", e.what());
    return 2;
  }
#ifdef ADAQP_WITH_CUDA
  engine::cuda::register_backend();
#endif
  CLI::App app{"adaqp: distributed full-graph GNN training with quantized, overlapped communication"};
  app.require_subcommand(1);
  Options o;
  add_data_commands(app, o);
  add_plan_command(app, o);
  add_train_command(app, o);
  add_simulator_commands(app, o);
  add_experiment_commands(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // A usage mistake is bad input like any other: one line, exit 2 (CLI11 would add a second).
    std::fprintf(stderr, "adaqp: error: %s (see adaqp --help)\n", e.what());
    return 2;
  }
  try {
    if (app.got_subcommand("simulate") && !o.sim_like.empty()) apply_run_settings(*app.get_subcommand("simulate"), o);
    resolve_train_config(o);
    return dispatch(app, o, *comm);
  } catch (const adaqp::CollectiveError& e) {
    // Every rank agreed on it: each prints the line and ends normally (no MPI_Abort race).
    std::fprintf(stderr, "adaqp: error: %s\n", e.what());
    return 2;
  } catch (const adaqp::Error& e) {
    const std::string where = comm->size() > 1 ? "rank " + std::to_string(comm->rank()) + ": " : "";
    comm->abort("adaqp: error: " + where + e.what(), 2);
  } catch (const std::exception& e) {
    const std::string where = comm->size() > 1 ? "rank " + std::to_string(comm->rank()) + ": " : "";
    comm->abort("adaqp: internal error: " + where + e.what(), 3);
  }
  return 0;
}
