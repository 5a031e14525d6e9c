#include "engine/trainer.hpp"

#include <omp.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <sstream>
#include <vector>

#include "adaqp/build_info.hpp"
#include "adaqp/git_commit.hpp"
#include "base/error.hpp"
#include "base/hash.hpp"
#include "base/resources.hpp"
#include "engine/checkpoint.hpp"
#include "engine/cpu/blas.hpp"
#include "engine/executor.hpp"
#include "engine/loss.hpp"
#include "graph/partition_folder.hpp"
#include "scheduler/build_plan.hpp"
#include "scheduler/link_fit.hpp"
#include "scheduler/memory_plan.hpp"
#include "scheduler/wire_format.hpp"

namespace adaqp::engine {

std::string hostname() {
  char buf[256] = {0};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// FNV-1a (64-bit, hex) of this executable's bytes, read once: tells two builds of one dirty
// commit apart (a sweep whose binary was rebuilt mid-way mixes them); "" when unreadable.
std::string binary_hash() {
  static const std::string h = [] {
    std::ifstream in("/proc/self/exe", std::ios::binary);
    if (!in) return std::string();
    Fnv1a f;
    std::vector<char> buf(1 << 16);
    while (in.read(buf.data(), std::streamsize(buf.size())) || in.gcount() > 0)
      f.add(buf.data(), std::size_t(in.gcount()));
    return f.hex();
  }();
  return h;
}

nlohmann::json build_record() {
  return {{"version", build::kVersion},   {"type", build::kBuildType},      {"compiler", build::kCompiler},
          {"cuda", build::kCuda},         {"nccl", build::kNccl},           {"mpi", build::kMpi},
          {"sanitize", build::kSanitize}, {"libraries", build::kLibraries}, {"binary_fnv1a", binary_hash()}};
}

nlohmann::json run_record(const TrainConfig& c, const graph::DatasetInfo& d, int ranks) {
  return {{"type", "run"},
          {"started_utc", utc_now()},
          {"settings",
           {
               {"dataset", c.dataset},
               {"split", c.split},
               {"split_seed", c.split_seed},
               {"model", to_string(c.model.kind)},
               {"layers", c.model.layers},
               {"hidden", c.model.hidden},
               {"dropout", c.model.dropout},
               {"epochs", c.epochs},
               {"eval_every", c.eval_every},
               {"comm_timeout_s", c.comm_timeout_s},
               {"checkpoint_every", c.checkpoint_every},
               {"lr", c.adam.lr},
               {"lr_schedule", to_string(c.adam.schedule)},
               {"weight_decay", c.adam.weight_decay},
               {"seed", c.seed},
               {"threads", c.threads},
               {"backend", c.backend},
               {"transport", c.transport},
               {"buffers", c.buffers},
               {"mode", scheduler::to_string(c.mode)},
               {"bits", c.adaptive ? "adaptive" : scheduler::width_name(c.width)},
               {"stale", c.peers.stale},
               {"stale_momentum", c.peers.stale_momentum},
               {"stale_bound", c.stale_auto ? nlohmann::json("auto") : nlohmann::json(c.stale_bound)},
               {"stale_drift", c.stale_drift},
               {"boundary_rate", c.peers.boundary_rate},
               {"strategy", scheduler::strategy_name(c.mode, c.peers)},
               {"assign", scheduler::to_string(c.assign.scheme)},
               {"lambda", c.assign.lambda},
               {"group_size", c.assign.group_size},
               {"widths", scheduler::widths_name(c.assign.widths)},
               {"allreduce", c.peers.overlap_allreduce ? "overlap" : "after"},
               {"assign_period", c.assign_period},
               {"assign_time", c.assign_time},
               {"assign_time_limit_s", c.assign.time_limit_s},
               {"link_model", c.link_model},
               {"partition", graph::to_string(c.partition)},
               {"partition_seed", c.partition_seed},
               {"partitions", c.partitions},
           }},
          {"ranks", ranks},
          {"git_commit", build::kGitCommit},
          {"build", build_record()},
          {"host", hostname()},
          {"dataset", graph::to_json(d)}};
}

nlohmann::json partition_record(const graph::Shard& shard) {
  const auto s = graph::partition_stats(shard.shapes);
  return {{"method", graph::to_string(shard.method)},
          {"seed", shard.partition_seed},
          {"folder", shard.folder},
          {"id", shard.partition_id},
          {"edge_cut", s.edge_cut},
          {"comm_volume_rows", s.comm_volume_rows},
          {"node_imbalance", s.node_imbalance},
          {"edge_imbalance", s.edge_imbalance}};
}

namespace {

// A non-finite loss ends the run on every rank with one line; the records of the epochs before
// it are kept (rank 0 commits them before any rank throws).
[[noreturn]] void diverged(const EpochMetrics& m, int first_rank, const TrainConfig& config, RecordWriter& records,
                           Communicator& comm) {
  records.commit();
  double sync = 0;
  comm.allreduce_max(&sync, 1);  // rank 0 has committed
  char lr[32];
  std::snprintf(lr, sizeof(lr), "%g", config.adam.lr);
  const std::string value = std::isnan(m.loss) ? "nan" : m.loss > 0 ? "inf" : "-inf";
  throw Error("epoch " + std::to_string(m.epoch) + ": the training loss is not finite (" + value + ", first on rank " +
              std::to_string(first_rank) + "): training diverged; try a lower --lr (now " + lr +
              "), a larger --weight-decay or wider --bits" +
              (config.metrics_path.empty() ? "" : "; epochs before it are in " + config.metrics_path));
}

void check_same_everywhere(const TrainConfig& c, const graph::Shard& shard, Communicator& comm) {
  if (comm.size() == 1) return;
  auto settings = run_record(c, shard.info, comm.size());
  settings["partition"] = partition_record(shard);
  settings.erase("started_utc");
  settings.erase("host");
  const std::string text = settings.dump();
  const std::uint64_t h = std::hash<std::string>{}(text);
  std::vector<std::uint64_t> all(comm.size());
  comm.allgather(h, all.data());
  for (int r = 1; r < comm.size(); ++r)
    if (all[r] != all[0])
      throw Error("settings or dataset differ between ranks (rank " + std::to_string(r) +
                  " differs from rank 0): start every rank with the same command line and files");
}

}  // namespace

namespace {

std::vector<ExchangeBytes> exchange_bytes(const std::vector<scheduler::Plan>& plans, int layers) {
  std::vector<ExchangeBytes> out;
  for (int l = 0; l < layers; ++l)
    for (auto d : {scheduler::Direction::forward, scheduler::Direction::backward}) {
      ExchangeBytes b{l, scheduler::to_string(d), 0, 0};
      for (const auto& p : plans)
        for (const auto& t : p.tasks)
          if (t.kind == scheduler::TaskKind::send && t.layer == l && t.dir == d) {
            b.payload += t.bytes - t.meta_bytes;
            b.meta += t.meta_bytes;
          }
      if (b.payload + b.meta > 0) out.push_back(b);
    }
  return out;
}

}  // namespace

std::vector<std::vector<scheduler::ChannelCost>> probe_links(Communicator& comm) {
  // Every ordered pair in turn: ping-pong of a few sizes, best of 3; round trip = 2 alpha + beta m.
  const int P = comm.size(), me = comm.rank();
  const std::int64_t sizes[] = {4096, 65536, 524288};
  std::vector<double> mine(2 * std::size_t(P), 0.0);  // (alpha, beta) per receiver
  for (int s = 0; s < P; ++s)
    for (int r = 0; r < P; ++r) {
      if (s == r || (me != s && me != r)) continue;
      std::vector<std::pair<double, double>> samples;  // (bytes, round trip s)
      for (std::int64_t m : sizes) {
        double best = 1e300;
        for (int rep = 0; rep < 3; ++rep) {
          const double t = comm.ping_pong(me == s ? r : s, m, me == s);
          best = std::min(best, t);
        }
        samples.push_back({double(m), best});
      }
      if (me != s) continue;
      const auto fit = scheduler::fit_round_trip(samples);
      mine[2 * std::size_t(r)] = fit.alpha_s;
      mine[2 * std::size_t(r) + 1] = std::max(fit.beta_s_per_byte, 1e-12);  // the assigner needs a cost per byte
    }
  const auto all = comm.allgather(mine);
  std::vector<std::vector<scheduler::ChannelCost>> costs(P, std::vector<scheduler::ChannelCost>(P));
  for (int s = 0; s < P; ++s)
    for (int r = 0; r < P; ++r) costs[s][r] = {all[s][2 * std::size_t(r)], all[s][2 * std::size_t(r) + 1]};
  return costs;
}

std::vector<std::vector<scheduler::ChannelCost>> link_costs(const std::string& model, Communicator& comm) {
  if (model == "probe") return probe_links(comm);
  const auto colon = model.find(':');
  double alpha_us = -1, gbps = -1;
  try {
    if (colon != std::string::npos) {
      alpha_us = std::stod(model.substr(0, colon));
      gbps = std::stod(model.substr(colon + 1));
    }
  } catch (const std::exception&) {
  }
  if (!(alpha_us >= 0) || !(gbps > 0))
    throw Error("--link-model '" + model + "': expected 'probe' or ALPHA_US:GBPS (e.g. 50:0.25)");
  const scheduler::ChannelCost c{alpha_us * 1e-6, 8.0 / (gbps * 1e9)};
  return std::vector<std::vector<scheduler::ChannelCost>>(comm.size(),
                                                          std::vector<scheduler::ChannelCost>(comm.size(), c));
}

double assign_time_scale(const std::string& spec, double compute_s, int layers) {
  if (spec == "range") return 0;
  if (spec == "compute") return compute_s / double(2 * std::max(layers, 1));
  try {
    std::size_t used = 0;
    const double s = std::stod(spec, &used);
    if (used == spec.size() && s > 0 && std::isfinite(s)) return s;
  } catch (const std::exception&) {
  }
  throw Error("--assign-time '" + spec + "': range, compute or a number of seconds > 0");
}

scheduler::BitAssignment reassign_bits(const Executor& trainer, const graph::LocalPartition& part,
                                       const Aggregation& agg,
                                       const std::vector<std::vector<scheduler::ChannelCost>>& costs,
                                       const TrainConfig& config, double time_scale_s, Communicator& comm,
                                       AssignmentRecord* record) {
  // This rank's statistics, self-described: [layer, dir, sender, receiver, kind, cols, count, values...]
  // with kind 0 = range^2 (as sender), 1 = weight (as receiver), rows in base order.
  std::vector<double> mine;
  const std::int64_t n = part.num_inner();
  for (const auto& t : trainer.plan().tasks) {
    if (t.kind == scheduler::TaskKind::pack) {
      const auto& ranges = trainer.row_ranges(t.id);
      std::vector<double> base(std::size_t(t.rows), 0.0);
      for (std::int64_t i = 0; i < t.rows; ++i) {
        const std::int64_t b = t.layout.order.empty() ? i : t.layout.order[std::size_t(i)];
        base[std::size_t(b)] = double(ranges[std::size_t(i)]) * ranges[std::size_t(i)];
      }
      mine.insert(mine.end(), {double(t.layer), double(int(t.dir)), double(part.rank), double(t.peer), 0.0,
                               double(t.cols), double(t.rows)});
      mine.insert(mine.end(), base.begin(), base.end());
    } else if (t.kind == scheduler::TaskKind::unpack) {
      mine.insert(mine.end(), {double(t.layer), double(int(t.dir)), double(t.peer), double(part.rank), 1.0,
                               double(t.cols), double(t.rows)});
      for (std::int64_t i = 0; i < t.rows; ++i) {
        double w = 1.0;                                // backward: the gradient row is added once into the owner's row
        if (t.dir == scheduler::Direction::forward) {  // sum of this halo row's aggregation coefficients
          const std::int64_t row = n + part.halo_begin[t.peer] + i;
          w = 0;
          for (std::int64_t k = agg.bwd.offsets[row]; k < agg.bwd.offsets[row + 1]; ++k) w += agg.bwd.values[k];
        }
        mine.push_back(w);
      }
    }
  }
  const auto all = comm.allgather(mine);
  std::vector<std::int32_t> wire;
  if (comm.rank() == 0) {
    std::map<scheduler::ChannelKey, std::pair<std::vector<double>, std::vector<double>>> parts_of;
    std::map<scheduler::ChannelKey, std::int64_t> cols;
    for (const auto& v : all)
      for (std::size_t i = 0; i < v.size();) {
        const scheduler::ChannelKey k{int(v[i]), scheduler::Direction(int(v[i + 1])), int(v[i + 2]), int(v[i + 3])};
        const int kind = int(v[i + 4]);
        cols[k] = std::int64_t(v[i + 5]);
        const auto count = std::size_t(v[i + 6]);
        auto& dst = kind == 0 ? parts_of[k].first : parts_of[k].second;
        dst.assign(v.begin() + std::ptrdiff_t(i + 7), v.begin() + std::ptrdiff_t(i + 7 + count));
        i += 7 + count;
      }
    std::vector<scheduler::ChannelStats> stats;
    for (const auto& [k, pw] : parts_of) {
      if (pw.first.size() != pw.second.size())
        throw std::logic_error("bit assignment: sender and receiver disagree on a channel's rows");
      scheduler::ChannelStats c{k, cols[k], {}};
      for (std::size_t i = 0; i < pw.first.size(); ++i) c.weighted_range2.push_back(pw.first[i] * pw.second[i]);
      stats.push_back(std::move(c));
    }
    scheduler::AssignReport report;
    scheduler::AssignConfig assign = config.assign;
    assign.time_scale_s = time_scale_s;
    const auto assignment = scheduler::assign_bits(stats, costs, assign, &report);
    record->time_scale_s = time_scale_s;
    wire = scheduler::serialize(assignment);
    record->solve_s = report.solve_s;
    record->methods = report.methods;
    record->objective = report.objective;
    record->predicted_variance = report.predicted_variance;
    record->rows_at_bits = report.rows_at_bits;
    record->rows_by_channel = report.rows_by_channel;
  }
  comm.broadcast(wire, 0);
  return scheduler::deserialize(wire);
}

scheduler::ModelShape model_shape(const TrainConfig& config, std::int64_t features, std::int64_t classes) {
  if (!config.width.valid())
    throw Error("--bits " + scheduler::width_name(config.width) + ": allowed " + scheduler::kWidthsAllowed);
  if (!scheduler::quantizes(config.mode) && config.width != scheduler::Width::fp32())
    throw Error("--bits " + scheduler::width_name(config.width) + ": mode '" + scheduler::to_string(config.mode) +
                "' exchanges fp32; use --mode quant or adaqp to quantize");
  scheduler::check_peers(config.peers, config.mode, config.adaptive);
  scheduler::ModelShape shape;
  shape.sage = config.model.kind == ModelKind::sage;
  shape.dims.push_back(features);
  for (int l = 0; l + 1 < config.model.layers; ++l) shape.dims.push_back(config.model.hidden);
  shape.dims.push_back(classes);
  shape.dropout = config.model.dropout;
  shape.exchange_inputs = config.peers.stale;  // PipeGCN's stale quantity (scheduler/build_plan.hpp)
  return shape;
}

scheduler::PeerOptions plan_peers(const TrainConfig& config) {
  scheduler::PeerOptions peers = config.peers;
  peers.measure_drift = config.peers.stale && config.stale_auto;
  return peers;
}

PlanSet make_plans(const TrainConfig& config, const graph::DatasetInfo& info,
                   const std::vector<graph::PartitionShape>& shapes, const std::vector<std::int64_t>& feature_nnz,
                   const scheduler::BitAssignment* assignment) {
  const int ranks = int(shapes.size());
  scheduler::ModelShape shape = model_shape(config, info.num_features, info.num_classes);
  // Sparse first-layer features when the whole feature matrix is sparse enough (decided on the
  // whole graph, so every rank agrees) and the first layer is transform-first.
  const std::int64_t nnz_total = std::accumulate(feature_nnz.begin(), feature_nnz.end(), std::int64_t(0));
  const scheduler::PeerOptions peers = plan_peers(config);
  PlanSet out;
  out.sparse_features = shape.layers() >= 1 && shape.transform_first(0) &&
                        double(nnz_total) <= kSparseFeatureDensity * double(info.num_nodes) * double(info.num_features);
  shape.sparse_input = out.sparse_features;
  for (int r = 0; r < ranks; ++r) {
    const auto& part = shapes[std::size_t(r)];
    shape.feature_nnz = feature_nnz[std::size_t(r)];
    const auto strategy = scheduler::strategy_of(config.mode);
    out.train.push_back(scheduler::build_plan(part, shape, strategy, true, config.width, assignment, peers));
    out.eval.push_back(scheduler::build_plan(part, shape, strategy, false));
    if (config.peers.stale) {
      auto first = peers;
      first.warmup = true;
      out.train_first.push_back(scheduler::build_plan(part, shape, strategy, true, config.width, assignment, first));
    }
  }
  // A rank without halo rows reads no halo features whatever its plan says (its local rows are its
  // inner rows), so only ranks with halo rows must agree.
  out.halo_features = false;
  for (const auto& p : out.train) out.halo_features = out.halo_features || p.halo_features;
  for (const auto* set : {&out.train, &out.eval, &out.train_first})
    for (std::size_t r = 0; r < set->size(); ++r)
      if ((*set)[r].halo_features != out.halo_features && shapes[r].num_halo() > 0)
        throw std::logic_error("plans disagree on halo features (rank " + std::to_string(r) + ")");
  scheduler::validate(out.train);
  scheduler::validate(out.eval);
  if (!out.train_first.empty()) scheduler::validate(out.train_first);
  return out;
}

PlanSet make_plans(const TrainConfig& config, const graph::Shard& shard, const scheduler::BitAssignment* assignment) {
  return make_plans(config, shard.info, shard.shapes, shard.feature_nnz, assignment);
}

PlanSet make_plans(const graph::Dataset& data, const TrainConfig& config, const std::vector<std::int32_t>& owner,
                   const std::vector<graph::LocalPartition>& parts, const scheduler::BitAssignment* assignment) {
  std::vector<graph::PartitionShape> shapes;
  for (const auto& p : parts) shapes.push_back(graph::shape_of(p));
  return make_plans(config, graph::info_of(data), shapes, graph::feature_nnz_by_part(data, owner, int(parts.size())),
                    assignment);
}

Features<float> local_features(const graph::Shard& shard, const PlanSet& plans) {
  const std::int64_t rows = plans.halo_features ? shard.part.num_local() : shard.part.num_inner();
  std::vector<std::int64_t> index(static_cast<std::size_t>(rows));
  std::iota(index.begin(), index.end(), std::int64_t(0));
  return make_features<float>(shard.features.data(), shard.info.num_features, index, plans.sparse_features ? 1.0 : 0.0);
}

TrainResult train(const graph::Dataset& data, const TrainConfig& config, Communicator& comm,
                  const EpochCallback& on_epoch) {
  return train(shard_of(data, config, comm), config, comm, on_epoch);
}

TrainResult train(const graph::Dataset& data, const TrainConfig& config, const EpochCallback& on_epoch) {
  auto self = make_self_communicator();
  return train(data, config, *self, on_epoch);
}

namespace {

// The checks of a run's settings that need no data.
void check_config(const TrainConfig& config, const graph::Shard& shard) {
  if (config.epochs < 1) throw Error("--epochs " + std::to_string(config.epochs) + ": must be >= 1");
  if (config.threads < 0) throw Error("--threads " + std::to_string(config.threads) + ": must be >= 0");
  if (config.buffers != "shared" && config.buffers != "separate")
    throw Error("--buffers " + config.buffers + ": must be shared or separate");
  if (config.transport != "auto" && config.transport != "mpi" && config.transport != "nccl")
    throw Error("--transport " + config.transport + ": must be auto, mpi or nccl");
  if (std::int64_t(shard.features.size()) != shard.part.num_local() * shard.info.num_features)
    throw std::logic_error(shard.info.name + ": the shard holds no features for its local rows");
  if (!(config.comm_timeout_s >= 0))
    throw Error("--comm-timeout " + std::to_string(config.comm_timeout_s) + ": must be >= 0 (0: no limit)");
  if (config.checkpoint_every < 0)
    throw Error("--checkpoint-every " + std::to_string(config.checkpoint_every) + ": must be >= 0");
  if ((config.checkpoint_every > 0 || config.resume) && config.checkpoint_dir.empty())
    throw Error(std::string(config.resume ? "--resume" : "--checkpoint-every") + " needs --checkpoint DIR");
}

// Labels and split masks of one rank's inner rows, with the global split sizes.
struct LocalLabels {
  std::vector<std::int32_t> labels;
  std::vector<std::uint8_t> train_mask, val_mask, test_mask;
  std::int64_t n_train = 0, n_val = 0, n_test = 0;  // all ranks
};
LocalLabels local_labels(const graph::Shard& shard) {
  LocalLabels l{shard.labels,       shard.train_mask, shard.val_mask,   shard.test_mask,
                shard.info.n_train, shard.info.n_val, shard.info.n_test};
  if (l.n_train == 0) throw Error(shard.info.name + ": the training split is empty");
  return l;
}

// The checkpoint identity of a run (engine/checkpoint.hpp): its run record without what may
// change between a run and its resumption.
nlohmann::json checkpoint_identity(const TrainConfig& config, const graph::Shard& shard, int ranks) {
  auto id = run_record(config, shard.info, ranks);
  id["partition"] = partition_record(shard);
  for (const char* k : {"started_utc", "host", "git_commit", "build"}) id.erase(k);
  for (const char* k : {"epochs", "comm_timeout_s", "checkpoint_every"}) id["settings"].erase(k);
  return id;
}

// The scalar fields of an epoch record (what summarize reads), from its JSON (a resumed run's
// epochs before the checkpoint).
EpochMetrics epoch_from_json(const nlohmann::json& j) {
  EpochMetrics m;
  auto num = [&](const char* k) { return j.contains(k) && j[k].is_number() ? j[k].get<double>() : 0.0; };
  m.epoch = j.at("epoch").get<std::int64_t>();
  m.loss = num("loss");
  m.evaluated = j.contains("val_acc") && j["val_acc"].is_number();
  m.train_acc = num("train_acc");
  m.val_acc = num("val_acc");
  m.test_acc = num("test_acc");
  m.epoch_s = num("epoch_s");
  m.compute_s = num("compute_s");
  m.comm_s = num("comm_s");
  m.quant_s = num("quant_s");
  m.reduce_s = num("reduce_s");
  m.eval_s = num("eval_s");
  m.bytes_sent = std::int64_t(num("bytes_sent"));
  m.bytes_meta = std::int64_t(num("bytes_meta"));
  return m;
}

// One rank's training run: what the epoch loop works on, built in named steps.
class TrainingRun {
 public:
  TrainingRun(graph::Shard& shard, const TrainConfig& config, Communicator& comm)
      : shard_(shard),
        config_(config),
        comm_(comm),
        ranks_(comm.size()),
        rank_(comm.rank()),
        records_(comm.rank() == 0 ? config.metrics_path : ""),
        part_(shard.part),
        agg_(make_aggregation(config.model.kind, part_, shard.degree)),
        model_(config.model, shard.info.num_features, shard.info.num_classes, config.seed),
        adam_(config.adam, model_.params()),
        plans_(std::make_unique<PlanSet>(make_plans(config, shard))),
        xs_(local_features(shard, *plans_)),
        labels_(local_labels(shard)),
        loss_{&labels_.labels, &labels_.train_mask, double(labels_.n_train)},
        params_(model_.params()),
        adaptive_(config.adaptive && ranks_ > 1) {
    shard_.features = {};  // xs_ holds what the plans read
    make_backend_and_executors();
    if (adaptive_)
      costs_ = link_costs(config.link_model, comm);
    else if (config.adaptive && config.link_model != "probe")
      link_costs(config.link_model, comm);  // validate
    bytes_by_layer_ = exchange_bytes(plans_->train, config.model.layers);
  }

  TrainResult run(const EpochCallback& on_epoch) {
    std::int64_t start = 1;
    if (config_.resume)
      start = resume() + 1;
    else
      write_record(run_record_);
    for (std::int64_t epoch = start; epoch <= config_.epochs; ++epoch) {
      EpochMetrics m = train_epoch(epoch);
      write_record(to_json(m));
      result_.epochs.push_back(m);
      if (on_epoch && rank_ == 0) on_epoch(m);
      if (config_.checkpoint_every > 0 && (epoch % config_.checkpoint_every == 0 || epoch == config_.epochs))
        checkpoint(epoch);
    }
    write_trace();
    backend_->finish(params_);
    result_.summary = summarize(result_.epochs, ranks_, scheduler::to_string(config_.mode),
                                config_.adaptive ? "adaptive" : scheduler::width_name(config_.width));
    result_.summary.strategy = scheduler::strategy_name(config_.mode, config_.peers);
    double startup[2] = {shard_.load_s, shard_.partition_s};
    comm_.allreduce_max(startup, 2);
    result_.summary.load_s = startup[0];
    result_.summary.partition_s = startup[1];
    double arena[1] = {double(arena_bytes_)};
    comm_.allreduce_max(arena, 1);
    result_.summary.arena_bytes = std::int64_t(arena[0]);
    for (const auto& peak : comm_.allgather(std::vector<double>{double(peak_rss_bytes())})) {
      result_.summary.peak_rss_bytes_by_rank.push_back(std::int64_t(peak.at(0)));
      result_.summary.peak_rss_bytes = std::max(result_.summary.peak_rss_bytes, std::int64_t(peak.at(0)));
    }
    auto summary = to_json(result_.summary);
    summary["backend"] = backend_->describe();  // what ran the plans (device, communicator)
    records_.write(summary);
    records_.commit();
    return std::move(result_);
  }

 private:
  // The backend makes the executors and keeps what they share (stale stores, device copies).
  void make_backend_and_executors() {
    BackendInputs inputs{
        &part_, &agg_, &comm_, params_, config_.adam, &xs_, &loss_, config_.transport, config_.buffers == "shared"};
    backend_ = make_backend(config_.backend, inputs);
    run_record_ = run_record(config_, shard_.info, ranks_);
    run_record_["partition"] = partition_record(shard_);
    run_record_["backend"] = backend_->describe();  // device and transport found at run time
    make_executors();
  }
  void make_executors() {
    trainer_ = backend_->make(plans_->train[std::size_t(rank_)]);
    evaluator_ = backend_->make(plans_->eval[std::size_t(rank_)]);
    first_.reset();  // stale pipelining: the synchronous first epoch
    if (!plans_->train_first.empty()) first_ = backend_->make(plans_->train_first[std::size_t(rank_)]);
    if (config_.backend == "cpu" && config_.buffers == "shared")
      arena_bytes_ = std::max(arena_bytes_, scheduler::run_arena_bytes({&trainer_->plan(), &evaluator_->plan(),
                                                                        first_ ? &first_->plan() : nullptr}));
  }
  // Rank 0 writes the records and keeps their lines for checkpoints.
  void write_record(const nlohmann::json& r) {
    if (rank_ != 0) return;
    records_.write(r);
    record_lines_ += r.dump() + "\n";
  }

  EpochMetrics train_epoch(std::int64_t epoch) {
    const DropoutKey key{config_.seed, epoch};
    const bool reassign = adaptive_ && epoch % config_.assign_period == 0 && epoch < config_.epochs;
    // Statistics (row ranges, quantization error) on re-assignment epochs and on the last epoch
    // of a quantized run.
    const bool quantized_run =
        ranks_ > 1 && scheduler::quantizes(config_.mode) && (config_.adaptive || config_.width.quantized());
    const bool stats = reassign || (quantized_run && epoch == config_.epochs);
    if (epoch == 2) start_trace();
    // Stale pipelining: the synchronous plan on the first epoch and wherever the bound asks.
    const bool fresh = first_ && (epoch == 1 || (config_.stale_bound > 0 && (epoch - 1) % config_.stale_bound == 0) ||
                                  (config_.stale_auto && last_drift_ > config_.stale_drift));
    Executor& step_exec = fresh ? *first_ : *trainer_;
    step_exec.collect_stats(stats);
    ran_ = &step_exec;
    if (config_.peers.sampled())
      step_exec.set_boundary_sample(
          scheduler::sample_boundary(part_, config_.peers.boundary_rate, config_.seed, epoch));
    const StepTimes step = step_exec.run(params_, &adam_, xs_, &key, &loss_);
    if (epoch >= 2) ++traced_epochs_;
    const bool evaluate = epoch % config_.eval_every == 0 || epoch == config_.epochs;
    StepTimes eval;
    if (evaluate) eval = evaluator_->run(params_, nullptr, xs_, nullptr, nullptr);
    EpochMetrics m = reduce_epoch(epoch, step, eval, evaluate);
    if (first_) {
      double drift[2] = {step.stale_drift_sq, step.stale_norm_sq};
      comm_.allreduce_sum(drift, 2);
      m.stale = true;
      m.fresh = fresh;
      // Fresh epochs overwrite the stores with rows of the same epoch: their drift is not staleness.
      m.stale_drift =
          !fresh && drift[1] > 0 ? std::sqrt(drift[0] / drift[1]) : std::numeric_limits<double>::quiet_NaN();
      last_drift_ = fresh ? 0.0 : m.stale_drift;
    }
    if (stats) m.quant_by_layer = quant_by_layer();
    if (reassign) {
      m.assignment = reassign_widths(m.compute_s);
      if (epoch >= 2) start_trace();  // the new plan's tasks
    }
    return m;
  }

  // Times are maxima over ranks; loss, bytes and correct counts are sums.
  EpochMetrics reduce_epoch(std::int64_t epoch, const StepTimes& step, const StepTimes& eval, bool evaluate) {
    const MatrixView<const float> logits =
        evaluate ? evaluator_->host_buffer(evaluator_->plan().logits_buffer) : MatrixView<const float>{};
    // maxima[6]: ranks - (lowest rank whose loss share is not finite), 0 when every share is.
    double maxima[7] = {step.total_s,
                        step.compute_s,
                        step.comm_s,
                        step.reduce_s,
                        step.quant_s,
                        eval.total_s,
                        std::isfinite(step.loss) ? 0.0 : double(ranks_ - rank_)};
    double sums[1] = {step.loss};
    std::int64_t counts[5] = {step.bytes_sent, step.bytes_meta, 0, 0, 0};
    if (evaluate) {
      counts[2] = count_correct<float>(logits, labels_.labels, labels_.train_mask);
      counts[3] = count_correct<float>(logits, labels_.labels, labels_.val_mask);
      counts[4] = count_correct<float>(logits, labels_.labels, labels_.test_mask);
    }
    comm_.allreduce_max(maxima, 7);
    comm_.allreduce_sum(sums, 1);
    comm_.allreduce_sum(counts, 5);
    EpochMetrics m;
    m.epoch = epoch;
    m.evaluated = evaluate;
    m.loss = sums[0];
    m.epoch_s = maxima[0];
    m.compute_s = maxima[1];
    m.comm_s = maxima[2];
    m.reduce_s = maxima[3];
    m.quant_s = maxima[4];
    m.eval_s = maxima[5];
    m.bytes_sent = counts[0];
    m.bytes_meta = counts[1];
    m.bytes_by_layer = bytes_by_layer_;
    m.train_acc = accuracy(counts[2], labels_.n_train);
    m.val_acc = accuracy(counts[3], labels_.n_val);
    m.test_acc = accuracy(counts[4], labels_.n_test);
    if (maxima[6] > 0 || !std::isfinite(m.loss))
      diverged(m, ranks_ - int(maxima[6] > 0 ? maxima[6] : ranks_), config_, records_, comm_);
    return m;
  }

  // Quantization error per layer and direction of the last step, all ranks.
  std::vector<QuantLayerRecord> quant_by_layer() {
    const int L = config_.model.layers;
    std::vector<double> flat(std::size_t(L) * 2 * 4, 0.0);
    for (const auto& [key, q] : ran_->quant_stats_by_layer()) {
      if (key.first < 0 || key.first >= L) continue;
      double* f = flat.data() + (std::size_t(key.first) * 2 + std::size_t(key.second)) * 4;
      f[0] += q.error_sq, f[1] += q.model_sq, f[2] += q.bound_sq, f[3] += double(q.elements);
    }
    comm_.allreduce_sum(flat.data(), std::int64_t(flat.size()));
    std::vector<QuantLayerRecord> out;
    for (int l = 0; l < L; ++l)
      for (int d = 0; d < 2; ++d) {
        const double* f = flat.data() + (std::size_t(l) * 2 + std::size_t(d)) * 4;
        if (f[3] > 0) out.push_back({l, d ? "backward" : "forward", f[0], f[1], f[2], std::int64_t(f[3])});
      }
    return out;
  }

  // New layouts from this step's statistics, used from the next epoch on.
  AssignmentRecord reassign_widths(double compute_s) {
    AssignmentRecord a;
    a.present = true;
    const QuantStats& q = ran_->quant_stats();
    double qs[2] = {q.error_sq, q.bound_sq};
    std::int64_t qe[1] = {q.elements};
    comm_.allreduce_sum(qs, 2);
    comm_.allreduce_sum(qe, 1);
    a.quant_error_sq = qs[0];
    a.quant_bound_sq = qs[1];
    a.quant_elements = qe[0];
    const double scale = assign_time_scale(config_.assign_time, compute_s, config_.model.layers);
    use_assignment(reassign_bits(*ran_, part_, agg_, costs_, config_, scale, comm_, &a));
    return a;
  }
  void use_assignment(const scheduler::BitAssignment& assignment) {
    assignment_ = assignment;
    trainer_.reset();
    evaluator_.reset();
    first_.reset();
    plans_ = std::make_unique<PlanSet>(make_plans(config_, shard_, &*assignment_));
    make_executors();
    bytes_by_layer_ = exchange_bytes(plans_->train, config_.model.layers);
  }

  // --trace: every task's seconds, summed from the second epoch on (the first warms caches).
  void start_trace() {
    trace_.assign(plans_->train[std::size_t(rank_)].tasks.size(), 0.0);
    traced_epochs_ = 0;
    trainer_->trace(config_.trace_path.empty() ? nullptr : &trace_);
  }
  // Every rank's tasks, gathered to rank 0 (a collective: every rank calls it), which writes them
  // rank by rank.
  void write_trace() {
    if (config_.trace_path.empty()) return;
    const auto all = comm_.allgather(trace_);
    if (rank_ != 0) return;
    RecordWriter tw(config_.trace_path);
    for (int rank = 0; rank < ranks_; ++rank) {
      const auto& seconds = all[std::size_t(rank)];
      for (const auto& t : plans_->train[std::size_t(rank)].tasks) {
        auto r = task_record(t, rank);
        r["epochs"] = traced_epochs_;
        r["mean_s"] = traced_epochs_ > 0 ? seconds.at(std::size_t(t.id)) / double(traced_epochs_) : 0.0;
        tw.write(r);
      }
    }
    tw.commit();
  }

  // --checkpoint DIR: this rank's state after `epoch` (engine/checkpoint.hpp).
  void checkpoint(std::int64_t epoch) {
    backend_->finish(params_);  // parameter values on the host
    Checkpoint ck;
    ck.identity = checkpoint_identity(config_, shard_, ranks_);
    ck.rank = rank_;
    ck.ranks = ranks_;
    ck.epoch = epoch;
    for (auto* p : params_) ck.params.push_back(p->value.data);
    ck.adam = backend_->optimizer_state(adam_);
    ck.has_assignment = assignment_.has_value();
    if (assignment_) ck.assignment = scheduler::serialize(*assignment_);
    for (const auto& row : costs_)
      for (const auto& c : row) ck.link_costs.insert(ck.link_costs.end(), {c.alpha_s, c.beta_s_per_byte});
    ck.stores = backend_->stores();
    ck.records = record_lines_;
    write_checkpoint(config_.checkpoint_dir, ck, comm_);
  }
  // --resume: the state of the last complete checkpoint; returns its epoch.
  std::int64_t resume() {
    const Checkpoint ck =
        read_checkpoint(config_.checkpoint_dir, rank_, ranks_, checkpoint_identity(config_, shard_, ranks_));
    if (ck.epoch >= config_.epochs)
      throw Error("--resume: the checkpoint in " + config_.checkpoint_dir + " is of epoch " + std::to_string(ck.epoch) +
                  ", the run has " + std::to_string(config_.epochs) + " epochs: nothing left to train");
    if (ck.params.size() != params_.size()) throw Error("--resume: the checkpoint holds another model");
    for (std::size_t i = 0; i < params_.size(); ++i) {
      if (ck.params[i].size() != params_[i]->value.data.size())
        throw Error("--resume: parameter " + std::to_string(i) + " of the checkpoint has another shape");
      params_[i]->value.data = ck.params[i];
    }
    if (!ck.link_costs.empty()) {
      for (int s = 0; s < ranks_; ++s)
        for (int r = 0; r < ranks_; ++r) {
          const std::size_t at = 2 * (std::size_t(s) * std::size_t(ranks_) + std::size_t(r));
          costs_[std::size_t(s)][std::size_t(r)] = {ck.link_costs.at(at), ck.link_costs.at(at + 1)};
        }
    }
    if (ck.has_assignment) use_assignment(scheduler::deserialize(ck.assignment));
    backend_->set_training_state(params_, adam_, ck.adam);
    backend_->set_stores(ck.stores);
    // The records so far, then the epochs from the checkpoint on.
    std::istringstream lines(ck.records);
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      const auto r = nlohmann::json::parse(line);
      write_record(r);
      if (r.value("type", "") == "epoch") result_.epochs.push_back(epoch_from_json(r));
    }
    return ck.epoch;
  }

  graph::Shard& shard_;
  const TrainConfig& config_;
  Communicator& comm_;
  const int ranks_, rank_;
  RecordWriter records_;
  std::string record_lines_;  // rank 0: every record written, for checkpoints
  nlohmann::json run_record_;
  const graph::LocalPartition& part_;
  const Aggregation agg_;
  Model<float> model_;
  Adam<float> adam_;
  std::unique_ptr<PlanSet> plans_;
  const Features<float> xs_;
  const LocalLabels labels_;
  const LossInputs loss_;
  const std::vector<Param<float>*> params_;
  const bool adaptive_;  // widths re-assigned every assign_period epochs
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Executor> trainer_, evaluator_, first_;
  Executor* ran_ = nullptr;       // the executor of this epoch's step (trainer_, or first_ on fresh epochs)
  double last_drift_ = 0;         // stale-store drift of the last epoch (0 after a fresh one)
  std::int64_t arena_bytes_ = 0;  // largest arena of this rank's plans so far (Summary::arena_bytes)
  std::vector<std::vector<scheduler::ChannelCost>> costs_;  // adaptive: every link, probed once
  std::optional<scheduler::BitAssignment> assignment_;      // the widths in use (adaptive)
  std::vector<ExchangeBytes> bytes_by_layer_;               // fixed by the plans
  std::vector<double> trace_;
  std::int64_t traced_epochs_ = 0;
  TrainResult result_;
};

}  // namespace

TrainResult train(graph::Shard shard, const TrainConfig& given, Communicator& comm, const EpochCallback& on_epoch) {
  TrainConfig config = given;
  config.adam.steps = config.epochs;  // one optimizer step per epoch: what a schedule decays over
  check_config(config, shard);
  comm.set_timeout(config.comm_timeout_s);
  check_same_everywhere(config, shard, comm);
  const int threads = config.threads > 0 ? config.threads : std::max(1, omp_get_num_procs() / comm.local_size());
  omp_set_num_threads(threads);
  cpu::set_blas_threads(threads);
  TrainingRun run(shard, config, comm);
  return run.run(on_epoch);
}

}  // namespace adaqp::engine
