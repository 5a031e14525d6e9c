#include "graph/partition.hpp"

#include <metis.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

#include "base/error.hpp"
#include "base/random.hpp"

namespace adaqp::graph {

PartitionMethod parse_partition_method(const std::string& name) {
  if (name == "metis") return PartitionMethod::metis_cut;
  if (name == "metis-vol") return PartitionMethod::metis_volume;
  if (name == "metis-edges") return PartitionMethod::metis_edges;
  if (name == "random") return PartitionMethod::random;
  if (name == "ptscotch") return PartitionMethod::ptscotch;
  throw Error("--method '" + name +
              "': unknown partition method (allowed: metis, metis-vol, metis-edges, random, ptscotch)");
}

std::string to_string(PartitionMethod m) {
  switch (m) {
    case PartitionMethod::metis_cut:
      return "metis";
    case PartitionMethod::metis_volume:
      return "metis-vol";
    case PartitionMethod::metis_edges:
      return "metis-edges";
    default:
      return "random";
    case PartitionMethod::ptscotch:
      return "ptscotch";
  }
}

std::vector<std::int32_t> random_owner(std::int64_t n, int parts, std::uint64_t seed) {
  // Balanced random: a seeded permutation dealt round-robin.
  std::vector<std::int32_t> owner(std::size_t(n), 0);
  std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  CounterRng rng(hash_key({seed, 0x9a27ULL}));
  for (std::int64_t i = n; i > 1; --i) std::swap(perm[std::size_t(i - 1)], perm[rng.below(std::uint64_t(i))]);
  for (std::int64_t i = 0; i < n; ++i) owner[std::size_t(perm[std::size_t(i)])] = std::int32_t(i % parts);
  return owner;
}

std::vector<std::int32_t> partition_graph(const Csr& adj, int parts, PartitionMethod method, std::uint64_t seed) {
  const std::int64_t n = adj.num_rows;
  if (parts < 1) throw Error("--parts " + std::to_string(parts) + ": must be >= 1");
  if (parts > n)
    throw Error("--parts " + std::to_string(parts) + ": more parts than nodes (" + std::to_string(n) + ")");
  std::vector<std::int32_t> owner(n, 0);
  if (parts == 1) return owner;
  if (method == PartitionMethod::random) return random_owner(n, parts, seed);
  if (method == PartitionMethod::ptscotch)
    throw Error(
        "--method ptscotch partitions over MPI: run adaqp partition --method ptscotch (under mpirun -np R for "
        "R processes), not train --partition");
  if (adj.nnz() >= (std::int64_t(1) << 31))
    throw Error("METIS: graph has " + std::to_string(adj.nnz()) +
                " directed edges; this METIS build uses "
                "32-bit indices (limit 2^31)");
  std::vector<idx_t> xadj(adj.offsets.begin(), adj.offsets.end());
  std::vector<idx_t> adjncy(adj.indices.begin(), adj.indices.end());
  std::vector<idx_t> part(n);
  // metis-edges: two constraints (see partition.hpp), weight 1 per node and its in-degree (its row's length).
  const bool balance_edges = method == PartitionMethod::metis_edges;
  std::vector<idx_t> vwgt;
  if (balance_edges) {
    vwgt.resize(std::size_t(2 * n));
    for (std::int64_t v = 0; v < n; ++v) {
      vwgt[std::size_t(2 * v)] = 1;
      vwgt[std::size_t(2 * v + 1)] = idx_t(adj.degree(v));
    }
  }
  idx_t nvtxs = idx_t(n), ncon = balance_edges ? 2 : 1, nparts = parts, objval = 0;
  idx_t options[METIS_NOPTIONS];
  METIS_SetDefaultOptions(options);
  options[METIS_OPTION_OBJTYPE] = method == PartitionMethod::metis_volume ? METIS_OBJTYPE_VOL : METIS_OBJTYPE_CUT;
  options[METIS_OPTION_SEED] = idx_t(seed % 1000003);
  options[METIS_OPTION_NUMBERING] = 0;
  real_t ubvec[2] = {1.03f, 1.03f};  // METIS's own default tolerance, for each constraint
  const int rc =
      METIS_PartGraphKway(&nvtxs, &ncon, xadj.data(), adjncy.data(), balance_edges ? vwgt.data() : nullptr, nullptr,
                          nullptr, &nparts, nullptr, balance_edges ? ubvec : nullptr, options, &objval, part.data());
  if (rc != METIS_OK)
    throw Error("METIS_PartGraphKway failed (code " + std::to_string(rc) + ") for " + std::to_string(parts) + " parts");
  for (std::int64_t v = 0; v < n; ++v) owner[v] = std::int32_t(part[v]);
  return owner;
}

LocalPartition build_part(int p, int parts, const std::vector<std::int64_t>& nodes, const RowOf& row,
                          const OwnerOf& owner, std::vector<std::int64_t>* local_of) {
  LocalPartition lp;
  lp.rank = p;
  lp.parts = parts;
  // Central nodes (no remote in-neighbour), then marginal ones, each in increasing global id.
  std::vector<std::int64_t> marginal;
  for (auto v : nodes) {
    bool remote = false;
    for (NodeId u : row(v))
      if (owner(u) != p) {
        remote = true;
        break;
      }
    (remote ? marginal : lp.inner_global).push_back(v);
  }
  lp.num_central = std::int64_t(lp.inner_global.size());
  lp.num_marginal = std::int64_t(marginal.size());
  lp.inner_global.insert(lp.inner_global.end(), marginal.begin(), marginal.end());
  std::vector<std::pair<std::int64_t, std::int64_t>> local;  // (global id, local id), by global id
  if (local_of) {
    for (std::int64_t i = 0; i < lp.num_inner(); ++i) (*local_of)[std::size_t(lp.inner_global[std::size_t(i)])] = i;
  } else {
    local.reserve(lp.inner_global.size());
    for (std::int64_t i = 0; i < lp.num_inner(); ++i) local.emplace_back(lp.inner_global[std::size_t(i)], i);
    std::sort(local.begin(), local.end());
  }
  auto local_id = [&](std::int64_t v) {
    if (local_of) return (*local_of)[std::size_t(v)];
    return std::lower_bound(local.begin(), local.end(), std::pair<std::int64_t, std::int64_t>(v, -1))->second;
  };
  // Halo: the remote in-neighbours of the marginal nodes, grouped by owner, by global id in a group.
  std::vector<std::pair<int, std::int64_t>> halo;  // (owner, global id)
  for (auto v : marginal)
    for (NodeId u : row(v))
      if (const int q = owner(u); q != p) halo.emplace_back(q, u);
  std::sort(halo.begin(), halo.end());
  halo.erase(std::unique(halo.begin(), halo.end()), halo.end());
  lp.halo_begin.assign(std::size_t(parts) + 1, 0);
  for (const auto& [q, u] : halo) {
    lp.halo_global.push_back(u);
    ++lp.halo_begin[std::size_t(q) + 1];
  }
  std::partial_sum(lp.halo_begin.begin(), lp.halo_begin.end(), lp.halo_begin.begin());
  // What part q holds as halo from p: p's nodes with an in-neighbour in q (the graph is symmetric),
  // by global id, which is q's halo order for owner p.
  lp.send_rows.assign(std::size_t(parts), {});
  std::vector<char> seen(std::size_t(parts), 0);
  for (std::int64_t i = 0; i < lp.num_marginal; ++i) {
    const auto v = marginal[std::size_t(i)];
    std::fill(seen.begin(), seen.end(), 0);
    for (NodeId u : row(v)) seen[std::size_t(owner(u))] = 1;
    for (int q = 0; q < parts; ++q)
      if (q != p && seen[std::size_t(q)]) lp.send_rows[std::size_t(q)].push_back(NodeId(lp.num_central + i));
  }
  // Local adjacency: columns are inner local ids, or num_inner + halo index.
  const std::int64_t ni = lp.num_inner();
  lp.adj.num_rows = ni;
  lp.adj.num_cols = lp.num_local();
  lp.adj.offsets.assign(std::size_t(ni) + 1, 0);
  for (std::int64_t i = 0; i < ni; ++i) {
    const auto v = lp.inner_global[std::size_t(i)];
    for (NodeId u : row(v)) {
      const int q = owner(u);
      if (q == p) {
        lp.adj.indices.push_back(NodeId(local_id(u)));
      } else {
        const auto it = std::lower_bound(lp.halo_global.begin() + lp.halo_begin[std::size_t(q)],
                                         lp.halo_global.begin() + lp.halo_begin[std::size_t(q) + 1], std::int64_t(u));
        lp.adj.indices.push_back(NodeId(ni + (it - lp.halo_global.begin())));
      }
    }
    // Row order = increasing global id, as in the global graph, so a part sums a row's
    // neighbours in the same order as a single process does.
    std::sort(lp.adj.indices.begin() + lp.adj.offsets[std::size_t(i)], lp.adj.indices.end(),
              [&](NodeId a, NodeId b) { return lp.global_of_col(a) < lp.global_of_col(b); });
    lp.adj.offsets[std::size_t(i) + 1] = std::int64_t(lp.adj.indices.size());
  }
  return lp;
}

std::vector<LocalPartition> build_partitions(const Csr& adj, const std::vector<std::int32_t>& owner, int parts) {
  std::vector<std::vector<std::int64_t>> nodes(static_cast<std::size_t>(parts));
  for (std::int64_t v = 0; v < adj.num_rows; ++v) nodes[std::size_t(owner[std::size_t(v)])].push_back(v);
  const RowOf row = [&](std::int64_t v) { return adj.row(v); };
  const OwnerOf owner_of = [&](std::int64_t u) { return int(owner[std::size_t(u)]); };
  std::vector<std::int64_t> local_of(static_cast<std::size_t>(adj.num_rows));
  std::vector<LocalPartition> out;
  for (int p = 0; p < parts; ++p) out.push_back(build_part(p, parts, nodes[std::size_t(p)], row, owner_of, &local_of));
  return out;
}

PartitionStats partition_stats(const std::vector<PartitionShape>& shapes) {
  PartitionStats s;
  s.parts = int(shapes.size());
  s.halo_rows.assign(std::size_t(s.parts), std::vector<std::int64_t>(std::size_t(s.parts), 0));
  std::int64_t cut_directed = 0, max_inner = 0, max_edges = 0, sum_marginal = 0;
  for (const auto& sh : shapes) {
    const std::int64_t edges = sh.nnz_central + sh.nnz_marginal;
    for (int q = 0; q < s.parts; ++q) s.halo_rows[std::size_t(sh.rank)][std::size_t(q)] = sh.halo_rows[std::size_t(q)];
    cut_directed += sh.nnz_to_halo;
    s.inner.push_back(sh.num_inner());
    s.halo.push_back(sh.num_halo());
    s.marginal.push_back(sh.num_marginal);
    s.local_edges.push_back(edges);
    s.comm_volume_rows += sh.num_halo();
    s.num_nodes += sh.num_inner();
    s.num_directed_edges += edges;
    max_inner = std::max(max_inner, sh.num_inner());
    max_edges = std::max(max_edges, edges);
    sum_marginal += sh.num_marginal;
  }
  s.edge_cut = cut_directed / 2;
  s.marginal_fraction = s.num_nodes ? double(sum_marginal) / double(s.num_nodes) : 0;
  s.node_imbalance = s.num_nodes ? double(max_inner) * s.parts / double(s.num_nodes) : 0;
  s.edge_imbalance = s.num_directed_edges ? double(max_edges) * s.parts / double(s.num_directed_edges) : 0;
  return s;
}

PartitionStats partition_stats(const std::vector<LocalPartition>& parts) {
  std::vector<PartitionShape> shapes;
  for (const auto& lp : parts) shapes.push_back(shape_of(lp));
  return partition_stats(shapes);
}

std::vector<std::int64_t> column_degrees(const LocalPartition& part, const Csr& global_adj) {
  std::vector<std::int64_t> d(std::size_t(part.num_local()));
  for (std::int64_t c = 0; c < part.num_local(); ++c) d[std::size_t(c)] = global_adj.degree(part.global_of_col(c));
  return d;
}

}  // namespace adaqp::graph

namespace adaqp::graph {

std::int64_t PartitionShape::num_halo() const {
  std::int64_t h = 0;
  for (auto r : halo_rows) h += r;
  return h;
}

PartitionShape shape_of(const LocalPartition& part) {
  PartitionShape s;
  s.rank = part.rank;
  s.parts = part.parts;
  s.num_central = part.num_central;
  s.num_marginal = part.num_marginal;
  for (int q = 0; q < part.parts; ++q) {
    s.halo_rows.push_back(part.halo_begin[std::size_t(q) + 1] - part.halo_begin[std::size_t(q)]);
    s.send_rows.push_back(std::int64_t(part.send_rows[std::size_t(q)].size()));
  }
  const std::int64_t n = part.num_inner();
  s.nnz_central = part.adj.offsets[std::size_t(part.num_central)];
  s.nnz_marginal = part.adj.offsets[std::size_t(n)] - s.nnz_central;
  for (std::int64_t k = 0; k < part.adj.nnz(); ++k) s.nnz_to_halo += part.adj.indices[std::size_t(k)] >= n;
  return s;
}

ShapeModel parse_shape_model(const std::string& spec) {
  ShapeModel m;
  std::size_t at = 0;
  bool have_nodes = false, have_edges = false;
  while (at < spec.size()) {
    const auto comma = spec.find(',', at);
    const std::string item = spec.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    at = comma == std::string::npos ? spec.size() : comma + 1;
    const auto eq = item.find('=');
    const std::string key = item.substr(0, eq), value = eq == std::string::npos ? "" : item.substr(eq + 1);
    double v = 0;
    try {
      std::size_t used = 0;
      v = std::stod(value, &used);
      if (used != value.size()) throw std::invalid_argument(value);
    } catch (const std::exception&) {
      throw Error("partition shape '" + spec + "': key '" + key + "' needs a number");
    }
    if (key == "nodes")
      m.nodes = std::int64_t(v), have_nodes = true;
    else if (key == "edges")
      m.directed_edges = std::int64_t(v), have_edges = true;
    else if (key == "halo")
      m.halo = v;
    else if (key == "marginal")
      m.marginal = v;
    else if (key == "remote")
      m.remote = v;
    else if (key == "peers")
      m.peers = int(v);
    else
      throw Error("partition shape '" + spec + "': unknown key '" + key +
                  "' (allowed: nodes, edges, halo, marginal, remote, peers)");
  }
  if (!have_nodes || !have_edges || m.nodes < 1 || m.directed_edges < 0)
    throw Error("partition shape '" + spec + "': needs nodes >= 1 and edges >= 0");
  if (m.halo < 0 || m.marginal < 0 || m.marginal > 1 || m.remote < 0 || m.remote > m.marginal || m.peers < 0)
    throw Error("partition shape '" + spec + "': need halo >= 0, 0 <= remote <= marginal <= 1, peers >= 0");
  return m;
}

std::vector<PartitionShape> model_shapes(const ShapeModel& m, int parts) {
  if (parts < 1) throw Error("partition shape: parts " + std::to_string(parts) + ": must be >= 1");
  const int peers = parts == 1 ? 0 : (m.peers == 0 ? parts - 1 : std::min(m.peers, parts - 1));
  std::vector<PartitionShape> out(static_cast<std::size_t>(parts));
  for (int r = 0; r < parts; ++r) {
    auto& s = out[std::size_t(r)];
    s.rank = r;
    s.parts = parts;
    const std::int64_t n = m.nodes / parts + (r < m.nodes % parts ? 1 : 0);
    s.num_marginal = parts == 1 ? 0 : std::int64_t(double(n) * m.marginal);
    s.num_central = n - s.num_marginal;
    const std::int64_t edges = m.directed_edges / parts;
    s.nnz_marginal = parts == 1 ? 0 : std::int64_t(double(edges) * m.marginal);
    s.nnz_central = edges - s.nnz_marginal;
    s.nnz_to_halo = parts == 1 ? 0 : std::int64_t(double(edges) * m.remote);
    s.halo_rows.assign(std::size_t(parts), 0);
    s.send_rows.assign(std::size_t(parts), 0);
  }
  // Part r receives from r+1..r+peers; the share is computed from the receiver's size, so the
  // sender's send_rows mirror it exactly.
  for (int r = 0; r < parts; ++r) {
    const std::int64_t share = peers ? std::int64_t(double(out[std::size_t(r)].num_inner()) * m.halo / peers) : 0;
    for (int k = 1; k <= peers; ++k) {
      const int q = (r + k) % parts;
      out[std::size_t(r)].halo_rows[std::size_t(q)] = share;
      out[std::size_t(q)].send_rows[std::size_t(r)] = share;
    }
  }
  return out;
}

}  // namespace adaqp::graph
