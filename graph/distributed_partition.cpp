#include "graph/distributed_partition.hpp"

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <numeric>

// PT-Scotch's header needs stdio and MPI first.
#include <ptscotch.h>

#include "base/agreement.hpp"
#include "base/error.hpp"
#include "base/hash.hpp"
#include "base/resources.hpp"
#include "graph/registry.hpp"
#include "graph/synthetic.hpp"

// Scotch's error and warning hooks (its documented way for a program to take its messages,
// instead of libptscotcherr's printing to stderr): the first message is kept and put into the one
// error line the caller prints. Scotch runs on one thread per process here.
namespace {
std::string scotch_message;  // the first error (or warning) Scotch reported since cleared, "" if none
void keep_scotch_message(const char* format, va_list args) {
  if (!scotch_message.empty()) return;  // the first is the cause; later ones repeat it in general terms
  char text[512];
  std::vsnprintf(text, sizeof text, format, args);
  scotch_message = text;
}
}  // namespace
extern "C" void SCOTCH_errorProg(const char* const) {}
extern "C" void SCOTCH_errorPrint(const char* const format, ...) {
  va_list args;
  va_start(args, format);
  keep_scotch_message(format, args);
  va_end(args);
}
extern "C" void SCOTCH_errorPrintW(const char* const format, ...) {
  va_list args;
  va_start(args, format);
  keep_scotch_message(format, args);
  va_end(args);
}

namespace adaqp::graph {

namespace {

namespace fs = std::filesystem;
const MPI_Comm kWorld = MPI_COMM_WORLD;

int world_rank() {
  int r = 0;
  MPI_Comm_rank(kWorld, &r);
  return r;
}
int world_size() {
  int n = 1;
  MPI_Comm_size(kWorld, &n);
  return n;
}

// Runs `step` on every process, failing together (base/agreement.hpp) over MPI_COMM_WORLD.
template <class Step>
void agreed(Step&& step) {
  adaqp::agreed(
      std::forward<Step>(step),
      [](bool failed) {
        int mine = failed ? world_rank() : INT_MAX, first = INT_MAX;
        MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, kWorld);
        return first == INT_MAX ? -1 : first;
      },
      [](int first, std::string& message) {
        int n = int(message.size());
        MPI_Bcast(&n, 1, MPI_INT, first, kWorld);
        message.resize(static_cast<std::size_t>(n));
        MPI_Bcast(message.data(), n, MPI_CHAR, first, kWorld);
      },
      "process");
}

// Sends out[q] to process q (bytes of trivially copyable T); returns what every process sent here,
// in process order.
template <class T>
std::vector<T> exchange(const std::vector<std::vector<T>>& out) {
  const int R = world_size();
  std::vector<int> send_counts(static_cast<std::size_t>(R)), recv_counts(static_cast<std::size_t>(R)),
      send_displs(static_cast<std::size_t>(R), 0), recv_displs(static_cast<std::size_t>(R), 0);
  std::int64_t total_send = 0;
  for (int q = 0; q < R; ++q) {
    const std::int64_t bytes = std::int64_t(out[std::size_t(q)].size() * sizeof(T));
    if (bytes > INT_MAX)
      throw Error("distributed partition: a message of " + std::to_string(bytes) +
                  " bytes exceeds MPI's int counts; use more processes");
    send_counts[std::size_t(q)] = int(bytes);
    total_send += bytes;
  }
  if (total_send > INT_MAX) throw Error("distributed partition: more than 2 GiB to send at once; use more processes");
  MPI_Alltoall(send_counts.data(), 1, MPI_INT, recv_counts.data(), 1, MPI_INT, kWorld);
  std::vector<char> send_buf(static_cast<std::size_t>(total_send));
  for (int q = 0, at = 0; q < R; ++q) {
    send_displs[std::size_t(q)] = at;
    if (send_counts[std::size_t(q)] > 0)  // an empty vector's data() may be null
      std::memcpy(send_buf.data() + at, out[std::size_t(q)].data(), std::size_t(send_counts[std::size_t(q)]));
    at += send_counts[std::size_t(q)];
  }
  std::int64_t total_recv = 0;
  for (int q = 0; q < R; ++q) {
    recv_displs[std::size_t(q)] = int(total_recv);
    total_recv += recv_counts[std::size_t(q)];
    if (total_recv > INT_MAX)
      throw Error("distributed partition: more than 2 GiB to receive at once; use more processes");
  }
  std::vector<T> in(std::size_t(total_recv) / sizeof(T));
  MPI_Alltoallv(send_buf.data(), send_counts.data(), send_displs.data(), MPI_BYTE, in.data(), recv_counts.data(),
                recv_displs.data(), MPI_BYTE, kWorld);
  return in;
}

// Every process's vector, concatenated in process order.
template <class T>
std::vector<T> gather_all(const std::vector<T>& mine) {
  const int R = world_size();
  const int bytes = int(mine.size() * sizeof(T));
  std::vector<int> counts(static_cast<std::size_t>(R)), displs(static_cast<std::size_t>(R), 0);
  MPI_Allgather(&bytes, 1, MPI_INT, counts.data(), 1, MPI_INT, kWorld);
  std::int64_t total = 0;
  for (int q = 0; q < R; ++q) {
    displs[std::size_t(q)] = int(total);
    total += counts[std::size_t(q)];
  }
  if (total > INT_MAX) throw Error("distributed partition: more than 2 GiB to gather; use more processes");
  std::vector<T> all(std::size_t(total) / sizeof(T));
  MPI_Allgatherv(mine.data(), bytes, MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE, kWorld);
  return all;
}

double max_over_processes(double v) {
  double out = v;
  MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, kWorld);
  return out;
}
std::int64_t sum_over_processes(std::int64_t v) {
  std::int64_t out = v;
  MPI_Allreduce(&v, &out, 1, MPI_INT64_T, MPI_SUM, kWorld);
  return out;
}

// This process's block of nodes [lo, hi) with their rows (global column ids, increasing), features,
// labels and masks.
struct Block {
  std::vector<std::int64_t> starts;  // R + 1: block q is [starts[q], starts[q + 1])
  std::int64_t lo = 0, hi = 0;
  Csr rows;  // (hi - lo) rows, columns global
  std::vector<float> features;
  std::vector<std::int32_t> labels;
  std::vector<std::uint8_t> train_mask, val_mask, test_mask;
  DatasetInfo info;

  int block_of(std::int64_t v) const {
    return int(std::upper_bound(starts.begin(), starts.end(), v) - starts.begin()) - 1;
  }
};

// The generator spec and feature normalisation of an sbm dataset spec ("" when it is none).
std::pair<std::string, std::string> sbm_of(const std::string& spec) {
  if (spec.starts_with("sbm:")) return {spec, "none"};
  if (spec.starts_with("rmat:") || spec.find('/') != std::string::npos) return {"", ""};
  if (const auto e = find_registered(spec); e && e->synthetic.starts_with("sbm:"))
    return {e->synthetic, e->feature_norm};
  return {"", ""};
}

void set_blocks(Block& b, std::int64_t n) {
  const int R = world_size(), r = world_rank();
  b.starts.resize(std::size_t(R) + 1);
  for (int q = 0; q <= R; ++q) b.starts[std::size_t(q)] = n * q / R;
  b.lo = b.starts[std::size_t(r)];
  b.hi = b.starts[std::size_t(r) + 1];
}

void take_labels(Block& b, const Dataset& d) {
  auto cut = [&](const auto& v) { return std::vector(v.begin() + b.lo, v.begin() + b.hi); };
  b.labels = cut(d.labels);
  b.train_mask = cut(d.train_mask);
  b.val_mask = cut(d.val_mask);
  b.test_mask = cut(d.test_mask);
}

// This block's rows from the directed pairs this process read or drew (any process may hold any
// pair): both directions of every pair go to the block of their row, self-loops dropped, each row's
// columns sorted without duplicates (what symmetrize gives the whole graph). Collective.
void rows_from_pairs(Block& b, std::vector<std::int64_t>& src, std::vector<std::int64_t>& dst, std::int64_t n) {
  std::vector<std::vector<std::int64_t>> out(static_cast<std::size_t>(world_size()));
  for (std::size_t k = 0; k < src.size(); ++k) {
    if (src[k] == dst[k]) continue;
    auto& a = out[std::size_t(b.block_of(src[k]))];
    a.push_back(src[k]);
    a.push_back(dst[k]);
    auto& c = out[std::size_t(b.block_of(dst[k]))];
    c.push_back(dst[k]);
    c.push_back(src[k]);
  }
  src = {};
  dst = {};
  auto pairs = exchange(out);
  out = {};
  std::vector<std::pair<std::int64_t, std::int64_t>> edges(pairs.size() / 2);
  for (std::size_t k = 0; k < edges.size(); ++k) edges[k] = {pairs[2 * k], pairs[2 * k + 1]};
  pairs = {};
  std::sort(edges.begin(), edges.end());
  edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  b.rows.num_rows = b.hi - b.lo;
  b.rows.num_cols = n;
  b.rows.offsets.assign(std::size_t(b.rows.num_rows) + 1, 0);
  b.rows.indices.reserve(edges.size());
  for (const auto& [v, u] : edges) {
    ++b.rows.offsets[std::size_t(v - b.lo) + 1];
    b.rows.indices.push_back(NodeId(u));
  }
  std::partial_sum(b.rows.offsets.begin(), b.rows.offsets.end(), b.rows.offsets.begin());
  b.info.num_directed_edges = sum_over_processes(b.rows.nnz());
}

// The registry's feature normalisation of this block's rows (row by row, as for the whole graph).
void normalize_rows(Block& b, std::int64_t num_features, const std::string& norm) {
  Dataset rows_only;
  rows_only.num_nodes = b.hi - b.lo;
  rows_only.num_features = num_features;
  rows_only.features = std::move(b.features);
  normalize_features(rows_only, parse_feature_norm(norm));
  b.features = std::move(rows_only.features);
}

Block load_block(const DatasetSpec& how) {
  LoadOptions opt;
  opt.split = parse_split(how.split);
  opt.split_seed = how.split_seed;
  // Labels and split of all nodes (cheap), then this block's edges and features.
  LoadOptions labels_only = opt;
  labels_only.features = false;
  labels_only.edges = false;
  Block b;
  const auto [sbm, norm] = sbm_of(how.spec);
  if (!sbm.empty()) {  // generated block by block
    const Dataset d = load_dataset(how.spec, labels_only);
    const SbmGenerator g(sbm);
    set_blocks(b, g.nodes());
    b.info = info_of(d);
    take_labels(b, d);
    std::vector<std::int64_t> src, dst;
    g.draws(b.lo, b.hi, src, dst);
    rows_from_pairs(b, src, dst, g.nodes());
    b.features = g.features(b.lo, b.hi);
    normalize_rows(b, g.num_features(), norm);
    return b;
  }
  if (const auto npz = npz_source(how.spec)) {  // read by slices: this process's edges and feature rows
    const Dataset d = load_dataset(how.spec, labels_only);
    set_blocks(b, d.num_nodes);
    b.info = info_of(d);
    take_labels(b, d);
    auto slice = read_npz_slice(*npz, d.num_nodes, b.lo, b.hi, world_rank(), world_size());
    rows_from_pairs(b, slice.src, slice.dst, d.num_nodes);
    b.features = std::move(slice.features);
    normalize_rows(b, slice.num_features, npz->feature_norm);
    return b;
  }
  // Neither (rmat, OGB folders): every process loads the whole dataset and keeps its block.
  const Dataset d = load_dataset(how.spec, opt);
  set_blocks(b, d.num_nodes);
  b.info = info_of(d);
  take_labels(b, d);
  b.rows.num_rows = b.hi - b.lo;
  b.rows.num_cols = d.num_nodes;
  b.rows.offsets.assign(1, 0);
  for (std::int64_t v = b.lo; v < b.hi; ++v) {
    const auto row = d.adj.row(v);
    b.rows.indices.insert(b.rows.indices.end(), row.begin(), row.end());
    b.rows.offsets.push_back(std::int64_t(b.rows.indices.size()));
  }
  b.features.assign(d.features.begin() + b.lo * d.num_features, d.features.begin() + b.hi * d.num_features);
  return b;
}

// Scotch's strategy from "--strategy": either flags (one name or several joined by commas, OR'ed,
// given to SCOTCH_stratDgraphMapBuild with 3% imbalance) or, when the text holds a '{', a strategy
// string of Scotch's own grammar (as dgpart's -s). `scalability` centralizes a band graph for
// sequential FM only below 10M edges (Scotch's rule); above, the band is refined by diffusion alone.
// The caller owns `strat` (initialised, exited by the caller). Throws adaqp::Error naming the flag.
void scotch_strategy(SCOTCH_Strat* strat, const std::string& text, int parts) {
  if (text.find('{') != std::string::npos) {
    scotch_message.clear();
    // Scotch's parser warns about a parameter left unset and then may crash on it: refused too.
    if (SCOTCH_stratDgraphMap(strat, text.c_str()) != 0 || !scotch_message.empty())
      throw Error("--strategy '" + text + "': Scotch rejected the strategy string (" + scotch_message + ")");
    return;
  }
  static const std::map<std::string, SCOTCH_Num> flags = {
      {"default", SCOTCH_STRATDEFAULT}, {"quality", SCOTCH_STRATQUALITY}, {"speed", SCOTCH_STRATSPEED},
      {"balance", SCOTCH_STRATBALANCE}, {"safety", SCOTCH_STRATSAFETY},   {"scalability", SCOTCH_STRATSCALABILITY}};
  SCOTCH_Num flag = 0;
  std::size_t at = 0;
  do {
    const std::size_t comma = text.find(',', at);
    const std::string name = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    if (!flags.count(name))
      throw Error("--strategy '" + text + "': '" + name +
                  "' is not a PT-Scotch strategy flag (default, quality, speed, balance, safety, scalability; "
                  "several joined by commas; or a Scotch strategy string)");
    flag |= flags.at(name);
    at = comma == std::string::npos ? std::string::npos : comma + 1;
  } while (at != std::string::npos);
  if (SCOTCH_stratDgraphMapBuild(strat, flag, SCOTCH_Num(world_size()), SCOTCH_Num(parts), 0.03) != 0)
    throw Error("--strategy '" + text + "': SCOTCH_stratDgraphMapBuild failed");
}

// Checks "--strategy" before anything is loaded (the same on every process).
void check_scotch_strategy(const std::string& text, int parts) {
  SCOTCH_Strat strat;
  SCOTCH_stratInit(&strat);
  try {
    scotch_strategy(&strat, text, parts);
  } catch (...) {
    SCOTCH_stratExit(&strat);
    throw;
  }
  SCOTCH_stratExit(&strat);
}

// The owner of every node (all processes).
std::vector<std::int32_t> owners(const Block& b, const DistributedPartitionOptions& o) {
  const std::int64_t n = b.starts.back();
  if (o.parts < 1 || o.parts > n)
    throw Error("--parts " + std::to_string(o.parts) + ": must be in [1, " + std::to_string(n) + "]");
  if (o.method == PartitionMethod::random) return random_owner(n, o.parts, o.seed);
  if (o.method != PartitionMethod::ptscotch)
    throw Error("--method " + to_string(o.method) +
                ": runs in one process (it needs the whole graph); over several processes use ptscotch or random");
  if (n >= INT_MAX || b.rows.nnz() >= INT_MAX || sum_over_processes(b.rows.nnz()) >= INT_MAX)
    throw Error("ptscotch: this PT-Scotch build has 32-bit indices; the graph has too many nodes or edges");
  std::vector<SCOTCH_Num> vert(b.rows.offsets.begin(), b.rows.offsets.end());
  std::vector<SCOTCH_Num> edges(b.rows.indices.begin(), b.rows.indices.end());
  std::vector<SCOTCH_Num> part(std::size_t(b.hi - b.lo) + 1, 0);
  SCOTCH_Dgraph graph;
  SCOTCH_Strat strat;
  if (SCOTCH_dgraphInit(&graph, kWorld) != 0) throw Error("ptscotch: SCOTCH_dgraphInit failed");
  SCOTCH_stratInit(&strat);
  const SCOTCH_Num local = SCOTCH_Num(b.hi - b.lo), arcs = SCOTCH_Num(edges.size());
  int rc = SCOTCH_dgraphBuild(&graph, 0, local, local, vert.data(), nullptr, nullptr, nullptr, arcs, arcs, edges.data(),
                              nullptr, nullptr);
  scotch_message.clear();
  if (rc == 0) {
    SCOTCH_randomSeed(SCOTCH_Num(o.seed % 2147483647u));
    SCOTCH_randomReset();
    scotch_strategy(&strat, o.strategy, o.parts);  // checked before the load: does not throw here
  }
  if (rc == 0) rc = SCOTCH_dgraphPart(&graph, SCOTCH_Num(o.parts), &strat, part.data());
  SCOTCH_stratExit(&strat);
  SCOTCH_dgraphExit(&graph);
  if (rc != 0)
    throw Error("ptscotch: partitioning failed (SCOTCH error " + std::to_string(rc) +
                (scotch_message.empty() ? "" : ": " + scotch_message) + ")");
  std::vector<std::int32_t> mine(part.begin(), part.begin() + local);
  auto owner = gather_all(mine);
  std::vector<std::int64_t> sizes(std::size_t(o.parts), 0);
  for (const auto p : owner) ++sizes[std::size_t(p)];
  for (int p = 0; p < o.parts; ++p)
    if (sizes[std::size_t(p)] == 0)
      throw Error("ptscotch: part " + std::to_string(p) + " of " + std::to_string(o.parts) + " is empty (--strategy '" +
                  o.strategy + "')");
  return owner;
}

// The rows of the parts this process writes (part p: process p mod R), by part.
struct PartRows {
  std::vector<std::int64_t> nodes;  // increasing
  Csr rows;                         // rows of `nodes`, global columns
  std::vector<float> features;      // nodes x F
  std::vector<std::int32_t> labels;
  std::vector<std::uint8_t> train_mask, val_mask, test_mask;
};

// Record of one row on the wire, in int64 words: v, degree, label, masks (3 bits), then degree
// column ids, then F floats (two per word, padded).
std::map<int, PartRows> move_rows(const Block& b, const std::vector<std::int32_t>& owner, int parts) {
  const int R = world_size();
  const std::int64_t F = b.info.num_features;
  const std::int64_t feature_words = (F + 1) / 2;
  std::vector<std::vector<std::int64_t>> out(static_cast<std::size_t>(R));
  for (std::int64_t v = b.lo; v < b.hi; ++v) {
    auto& o = out[std::size_t(owner[std::size_t(v)] % R)];
    const auto i = std::size_t(v - b.lo);
    const auto row = b.rows.row(v - b.lo);
    o.insert(o.end(), {v, std::int64_t(row.size()), std::int64_t(b.labels[i]),
                       std::int64_t(b.train_mask[i] | (b.val_mask[i] << 1) | (b.test_mask[i] << 2))});
    o.insert(o.end(), row.begin(), row.end());
    const std::size_t at = o.size();
    o.resize(at + std::size_t(feature_words), 0);
    std::memcpy(o.data() + at, b.features.data() + std::int64_t(i) * F, std::size_t(F) * sizeof(float));
  }
  const auto in = exchange(out);
  out = {};
  // Index the received rows by part, then copy them out in increasing node order.
  std::map<int, std::vector<std::pair<std::int64_t, std::size_t>>> where;  // part -> (v, word offset)
  for (std::size_t at = 0; at < in.size();) {
    const std::int64_t v = in[at], degree = in[at + 1];
    where[owner[std::size_t(v)]].emplace_back(v, at);
    at += 4 + std::size_t(degree) + std::size_t(feature_words);
  }
  std::map<int, PartRows> parts_here;
  for (int p = world_rank(); p < parts; p += R) parts_here[p];  // parts without rows too
  for (auto& [p, list] : where) {
    std::sort(list.begin(), list.end());
    auto& pr = parts_here[p];
    pr.rows.num_rows = std::int64_t(list.size());
    pr.rows.num_cols = b.starts.back();
    pr.features.resize(list.size() * std::size_t(F));
    for (std::size_t k = 0; k < list.size(); ++k) {
      const std::size_t at = list[k].second;
      const std::int64_t degree = in[at + 1], masks = in[at + 3];
      pr.nodes.push_back(list[k].first);
      pr.labels.push_back(std::int32_t(in[at + 2]));
      pr.train_mask.push_back(std::uint8_t(masks & 1));
      pr.val_mask.push_back(std::uint8_t((masks >> 1) & 1));
      pr.test_mask.push_back(std::uint8_t((masks >> 2) & 1));
      for (std::int64_t j = 0; j < degree; ++j) pr.rows.indices.push_back(NodeId(in[at + 4 + std::size_t(j)]));
      pr.rows.offsets.push_back(std::int64_t(pr.rows.indices.size()));
      std::memcpy(pr.features.data() + k * std::size_t(F), in.data() + at + 4 + std::size_t(degree),
                  std::size_t(F) * sizeof(float));
    }
  }
  return parts_here;
}

// Features of the given nodes (any blocks), fetched from their blocks: ids.size() x F.
std::vector<float> fetch_features(const Block& b, const std::vector<std::int64_t>& ids) {
  const int R = world_size();
  const std::int64_t F = b.info.num_features;
  std::vector<std::vector<std::int64_t>> ask(static_cast<std::size_t>(R));
  for (auto u : ids) ask[std::size_t(b.block_of(u))].push_back(u);
  // Requests arrive in process order; answer each process with its rows in its order.
  std::vector<std::int64_t> counts(static_cast<std::size_t>(R));
  for (int q = 0; q < R; ++q) counts[std::size_t(q)] = std::int64_t(ask[std::size_t(q)].size());
  std::vector<std::int64_t> asked_counts(static_cast<std::size_t>(R));
  MPI_Alltoall(counts.data(), 1, MPI_INT64_T, asked_counts.data(), 1, MPI_INT64_T, kWorld);
  const auto asked = exchange(ask);
  std::vector<std::vector<float>> answer(static_cast<std::size_t>(R));
  for (int q = 0, at = 0; q < R; ++q)
    for (std::int64_t k = 0; k < asked_counts[std::size_t(q)]; ++k, ++at) {
      const float* row = b.features.data() + (asked[std::size_t(at)] - b.lo) * F;
      answer[std::size_t(q)].insert(answer[std::size_t(q)].end(), row, row + F);
    }
  const auto got = exchange(answer);
  // got holds block 0's answers, then block 1's, ... each in the order asked.
  std::vector<std::size_t> next(static_cast<std::size_t>(R), 0), base(static_cast<std::size_t>(R), 0);
  for (int q = 1; q < R; ++q) base[std::size_t(q)] = base[std::size_t(q) - 1] + ask[std::size_t(q) - 1].size();
  std::vector<float> out(ids.size() * std::size_t(F));
  for (std::size_t k = 0; k < ids.size(); ++k) {
    const auto q = std::size_t(b.block_of(ids[k]));
    std::memcpy(out.data() + k * std::size_t(F), got.data() + (base[q] + next[q]++) * std::size_t(F),
                std::size_t(F) * sizeof(float));
  }
  return out;
}

// Shapes of every part, gathered: per part its rank, counts, halo and send rows.
std::vector<PartitionShape> gather_shapes(const std::vector<PartitionShape>& mine, int parts) {
  std::vector<std::int64_t> flat;
  for (const auto& s : mine) {
    flat.insert(flat.end(),
                {std::int64_t(s.rank), s.num_central, s.num_marginal, s.nnz_central, s.nnz_marginal, s.nnz_to_halo});
    flat.insert(flat.end(), s.halo_rows.begin(), s.halo_rows.end());
    flat.insert(flat.end(), s.send_rows.begin(), s.send_rows.end());
  }
  const auto all = gather_all(flat);
  std::vector<PartitionShape> shapes(static_cast<std::size_t>(parts));
  const std::size_t stride = 6 + 2 * std::size_t(parts);
  for (std::size_t at = 0; at + stride <= all.size(); at += stride) {
    PartitionShape s;
    s.rank = int(all[at]);
    s.parts = parts;
    s.num_central = all[at + 1];
    s.num_marginal = all[at + 2];
    s.nnz_central = all[at + 3];
    s.nnz_marginal = all[at + 4];
    s.nnz_to_halo = all[at + 5];
    s.halo_rows.assign(all.begin() + std::ptrdiff_t(at + 6), all.begin() + std::ptrdiff_t(at + 6 + std::size_t(parts)));
    s.send_rows.assign(all.begin() + std::ptrdiff_t(at + 6 + std::size_t(parts)),
                       all.begin() + std::ptrdiff_t(at + stride));
    shapes[std::size_t(s.rank)] = std::move(s);
  }
  return shapes;
}

}  // namespace

DistributedPartitionResult partition_distributed(const DistributedPartitionOptions& o) {
  using clock = std::chrono::steady_clock;
  auto since = [](clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); };
  DistributedPartitionResult result;
  const int R = world_size(), me = world_rank();
  agreed([&] { require_new_folder(o.out); });
  if (o.method == PartitionMethod::ptscotch) agreed([&] { check_scotch_strategy(o.strategy, o.parts); });
  auto t0 = clock::now();
  Block b;
  agreed([&] { b = load_block(o.dataset); });
  result.load_s = max_over_processes(since(t0));
  t0 = clock::now();
  std::vector<std::int32_t> owner;
  agreed([&] { owner = owners(b, o); });
  // Global degrees of every node, and each part's rows at the process that writes it.
  std::vector<std::int64_t> my_degrees(static_cast<std::size_t>(b.hi - b.lo));
  for (std::int64_t v = b.lo; v < b.hi; ++v) my_degrees[std::size_t(v - b.lo)] = b.rows.degree(v - b.lo);
  const auto degree = gather_all(my_degrees);
  auto rows = move_rows(b, owner, o.parts);
  std::map<int, Shard> shards;
  std::vector<PartitionShape> my_shapes;
  std::vector<std::int64_t> my_nnz;  // (part, feature non-zeros) pairs
  const OwnerOf owner_of = [&](std::int64_t u) { return int(owner[std::size_t(u)]); };
  const std::int64_t F = b.info.num_features;
  for (auto& [p, pr] : rows) {
    const RowOf row = [&](std::int64_t v) {
      const auto i = std::lower_bound(pr.nodes.begin(), pr.nodes.end(), v) - pr.nodes.begin();
      return pr.rows.row(i);
    };
    Shard& s = shards[p];
    s.info = b.info;
    s.method = o.method;
    s.partition_seed = o.seed;
    s.part = build_part(p, o.parts, pr.nodes, row, owner_of);
    my_shapes.push_back(shape_of(s.part));
    // Inner rows in the part's local order; halo features fetched below.
    const std::int64_t ni = s.part.num_inner();
    s.features.resize(static_cast<std::size_t>(s.part.num_local() * F));
    std::int64_t nnz = 0;
    for (std::int64_t i = 0; i < ni; ++i) {
      const auto k = std::size_t(
          std::lower_bound(pr.nodes.begin(), pr.nodes.end(), s.part.inner_global[std::size_t(i)]) - pr.nodes.begin());
      std::copy_n(pr.features.begin() + std::ptrdiff_t(k * std::size_t(F)), F, s.features.begin() + i * F);
      for (std::int64_t j = 0; j < F; ++j) nnz += pr.features[k * std::size_t(F) + std::size_t(j)] != 0.0f;
      s.labels.push_back(pr.labels[k]);
      s.train_mask.push_back(pr.train_mask[k]);
      s.val_mask.push_back(pr.val_mask[k]);
      s.test_mask.push_back(pr.test_mask[k]);
    }
    my_nnz.insert(my_nnz.end(), {std::int64_t(p), nnz});
    for (std::int64_t c = 0; c < s.part.num_local(); ++c)
      s.degree.push_back(degree[std::size_t(s.part.global_of_col(c))]);
    pr = PartRows{};
  }
  rows.clear();
  // Halo features (one exchange for all the parts here), shapes and non-zeros of every part.
  std::vector<std::int64_t> halo_ids;
  for (const auto& [p, s] : shards)
    halo_ids.insert(halo_ids.end(), s.part.halo_global.begin(), s.part.halo_global.end());
  const auto halo_features = fetch_features(b, halo_ids);
  std::size_t at = 0;
  for (auto& [p, s] : shards) {
    const std::size_t bytes = std::size_t(s.part.num_halo() * F);
    std::copy_n(halo_features.begin() + std::ptrdiff_t(at), bytes, s.features.begin() + s.part.num_inner() * F);
    at += bytes;
  }
  const auto shapes = gather_shapes(my_shapes, o.parts);
  std::vector<std::int64_t> feature_nnz(static_cast<std::size_t>(o.parts), 0);
  const auto all_nnz = gather_all(my_nnz);
  for (std::size_t k = 0; k + 1 < all_nnz.size(); k += 2) feature_nnz[std::size_t(all_nnz[k])] = all_nnz[k + 1];
  result.partition_s = max_over_processes(since(t0));
  // The folder's id: the settings, every block's content (in block order) and the owners.
  t0 = clock::now();
  Fnv1a mine;
  mine.add(b.rows.offsets.data(), b.rows.offsets.size() * sizeof(std::int64_t));
  mine.add(b.rows.indices.data(), b.rows.indices.size() * sizeof(NodeId));
  mine.add(b.features.data(), b.features.size() * sizeof(float));
  mine.add(b.labels.data(), b.labels.size() * sizeof(std::int32_t));
  for (const auto* m : {&b.train_mask, &b.val_mask, &b.test_mask}) mine.add(m->data(), m->size());
  const auto block_hashes = gather_all(std::vector<std::uint64_t>{mine.h});
  Fnv1a id_hash;
  const std::string head = "adaqp-partitions distributed " + o.dataset.spec + " " + o.dataset.split + " " +
                           std::to_string(o.dataset.split_seed) + " " + to_string(o.method) + " " +
                           std::to_string(o.seed) + " " + std::to_string(o.parts) + " " + std::to_string(R) +
                           (o.method == PartitionMethod::ptscotch ? " " + o.strategy : "");
  id_hash.add(head.data(), head.size());
  id_hash.add(block_hashes.data(), block_hashes.size() * sizeof(std::uint64_t));
  id_hash.add(owner.data(), owner.size() * sizeof(std::int32_t));
  const std::string id = id_hash.hex();
  long pid = long(::getpid());
  MPI_Bcast(&pid, 1, MPI_LONG, 0, kWorld);
  const std::string tmp = temporary_folder(o.out, pid);
  agreed([&] {
    std::error_code ec;
    if (me == 0 && (!fs::create_directories(tmp, ec) || ec))
      throw Error(tmp + ": cannot create folder (" + ec.message() + ")");
  });
  try {
    agreed([&] {
      for (auto& [p, s] : shards) {
        s.shapes = shapes;
        s.feature_nnz = feature_nnz;
        write_part_file((fs::path(tmp) / part_file(p)).string(), s, id);
      }
    });
    result.meta = folder_meta(id, o.dataset, b.info, o.method, o.seed, shapes, feature_nnz);
    if (o.method == PartitionMethod::ptscotch) result.meta["strategy"] = o.strategy;
    agreed([&] {
      if (me == 0) commit_folder(tmp, o.out, result.meta);
    });
  } catch (...) {
    std::error_code ec;
    if (me == 0) fs::remove_all(tmp, ec);
    throw;
  }
  result.write_s = max_over_processes(since(t0));
  double peak = double(peak_rss_bytes());
  MPI_Allreduce(MPI_IN_PLACE, &peak, 1, MPI_DOUBLE, MPI_MAX, kWorld);
  result.peak_rss_bytes = std::int64_t(peak);
  return result;
}

}  // namespace adaqp::graph
