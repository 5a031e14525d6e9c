// What a rank trains on (engine/trainer.hpp: load_shard, shard_of): its part read from a
// partition folder, or its share of a whole dataset partitioned in memory; failures agreed on by
// every rank.
#include <chrono>
#include <functional>

#include "base/agreement.hpp"
#include "base/error.hpp"
#include "engine/trainer.hpp"
#include "graph/partition_folder.hpp"

namespace adaqp::engine {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The same deterministic partition on every rank (METIS is deterministic, but ranks on different
// hosts may link different builds: checked).
std::vector<std::int32_t> agreed_partition(const graph::Dataset& data, const TrainConfig& config, Communicator& comm) {
  const int ranks = comm.size();
  auto owner = graph::partition_graph(data.adj, ranks, config.partition, config.partition_seed);
  if (ranks > 1) {
    std::string text(reinterpret_cast<const char*>(owner.data()), owner.size() * sizeof(owner[0]));
    std::vector<std::uint64_t> all(static_cast<std::size_t>(ranks));
    comm.allgather(std::hash<std::string>{}(text), all.data());
    for (int r = 1; r < ranks; ++r)
      if (all[std::size_t(r)] != all[0])
        throw Error("rank " + std::to_string(r) +
                    " computed a different partition than rank 0 (different METIS builds on the hosts?)");
  }
  return owner;
}

// Runs `step` on every rank, failing together (base/agreement.hpp) over this run's communicator.
template <class Step>
void agreed(Communicator& comm, Step&& step) {
  if (comm.size() == 1) {  // no collective to agree over: the message as it is
    try {
      step();
    } catch (const CollectiveError&) {
      throw;
    } catch (const Error& e) {
      throw CollectiveError(e.what());
    }
    return;
  }
  adaqp::agreed(
      std::forward<Step>(step),
      [&](bool failed) {
        std::vector<std::uint64_t> flags(static_cast<std::size_t>(comm.size()));
        comm.allgather(failed ? 1 : 0, flags.data());
        for (int r = 0; r < comm.size(); ++r)
          if (flags[std::size_t(r)]) return r;
        return -1;
      },
      [&](int first, std::string& message) {
        std::vector<std::int32_t> text(message.begin(), message.end());
        comm.broadcast(text, first);
        message.assign(text.begin(), text.end());
      },
      "rank");
}

}  // namespace

graph::Shard shard_of(const graph::Dataset& data, const TrainConfig& config, Communicator& comm) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto owner = agreed_partition(data, config, comm);
  const auto parts = graph::build_partitions(data.adj, owner, comm.size());
  auto shard = graph::make_shard(data, parts, graph::feature_nnz_by_part(data, owner, comm.size()), comm.rank(),
                                 config.partition, config.partition_seed);
  shard.partition_s = seconds_since(t0);
  return shard;
}

graph::Shard load_shard(TrainConfig& config, Communicator& comm) {
  comm.set_timeout(config.comm_timeout_s);
  const auto t0 = std::chrono::steady_clock::now();
  graph::Shard shard;
  if (!config.partitions.empty()) {
    agreed(comm, [&] {
      shard = graph::read_shard(config.partitions, comm.rank(), comm.size());
      const auto meta = graph::read_partition_meta(config.partitions);
      config.dataset = meta.how.spec;
      config.split = meta.how.split;
      config.split_seed = meta.how.split_seed;
      config.partition = meta.method;
      config.partition_seed = meta.seed;
    });
    shard.load_s = seconds_since(t0);
    return shard;
  }
  graph::Dataset data;
  agreed(comm, [&] {
    graph::LoadOptions opt;
    opt.split = graph::parse_split(config.split);
    opt.split_seed = config.split_seed;
    data = graph::load_dataset(config.dataset, opt);
  });
  const double load_s = seconds_since(t0);
  shard = shard_of(data, config, comm);
  shard.load_s = load_s;
  return shard;
}

}  // namespace adaqp::engine
