#include "graph/partition.hpp"

#include <metis.h>

#include <algorithm>
#include <numeric>

#include "graph/error.hpp"
#include "graph/random.hpp"

namespace adaqp::graph {

PartitionMethod parse_partition_method(const std::string& name) {
  if (name == "metis") return PartitionMethod::metis_cut;
  if (name == "metis-vol") return PartitionMethod::metis_volume;
  if (name == "random") return PartitionMethod::random;
  throw Error("--method '" + name + "': unknown partition method (allowed: metis, metis-vol, random)");
}

std::string to_string(PartitionMethod m) {
  switch (m) {
    case PartitionMethod::metis_cut: return "metis";
    case PartitionMethod::metis_volume: return "metis-vol";
    default: return "random";
  }
}

std::vector<std::int32_t> partition_graph(const Csr& adj, int parts, PartitionMethod method, std::uint64_t seed) {
  const std::int64_t n = adj.num_rows;
  if (parts < 1) throw Error("--parts " + std::to_string(parts) + ": must be >= 1");
  if (parts > n) throw Error("--parts " + std::to_string(parts) + ": more parts than nodes (" + std::to_string(n) + ")");
  std::vector<std::int32_t> owner(n, 0);
  if (parts == 1) return owner;
  if (method == PartitionMethod::random) {
    // Balanced random: a seeded permutation dealt round-robin.
    std::vector<std::int64_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0);
    CounterRng rng(hash_key({seed, 0x9a27ULL}));
    for (std::int64_t i = n; i > 1; --i) std::swap(perm[i - 1], perm[rng.below(std::uint64_t(i))]);
    for (std::int64_t i = 0; i < n; ++i) owner[perm[i]] = std::int32_t(i % parts);
    return owner;
  }
  if (adj.nnz() >= (std::int64_t(1) << 31))
    throw Error("METIS: graph has " + std::to_string(adj.nnz()) + " directed edges; this METIS build uses "
                "32-bit indices (limit 2^31)");
  std::vector<idx_t> xadj(adj.offsets.begin(), adj.offsets.end());
  std::vector<idx_t> adjncy(adj.indices.begin(), adj.indices.end());
  std::vector<idx_t> part(n);
  idx_t nvtxs = idx_t(n), ncon = 1, nparts = parts, objval = 0;
  idx_t options[METIS_NOPTIONS];
  METIS_SetDefaultOptions(options);
  options[METIS_OPTION_OBJTYPE] = method == PartitionMethod::metis_volume ? METIS_OBJTYPE_VOL : METIS_OBJTYPE_CUT;
  options[METIS_OPTION_SEED] = idx_t(seed % 1000003);
  options[METIS_OPTION_NUMBERING] = 0;
  const int rc = METIS_PartGraphKway(&nvtxs, &ncon, xadj.data(), adjncy.data(), nullptr, nullptr, nullptr,
                                     &nparts, nullptr, nullptr, options, &objval, part.data());
  if (rc != METIS_OK)
    throw Error("METIS_PartGraphKway failed (code " + std::to_string(rc) + ") for " + std::to_string(parts) + " parts");
  for (std::int64_t v = 0; v < n; ++v) owner[v] = std::int32_t(part[v]);
  return owner;
}

std::vector<LocalPartition> build_partitions(const Csr& adj, const std::vector<std::int32_t>& owner, int parts) {
  const std::int64_t n = adj.num_rows;
  std::vector<LocalPartition> out(parts);
  // Classify inner nodes as central / marginal, in increasing global id.
  std::vector<std::vector<std::int64_t>> central(parts), marginal(parts);
  for (std::int64_t v = 0; v < n; ++v) {
    const int p = owner[v];
    bool remote = false;
    for (NodeId u : adj.row(v))
      if (owner[u] != p) {
        remote = true;
        break;
      }
    (remote ? marginal : central)[p].push_back(v);
  }
  // local id of each node inside its own part
  std::vector<std::int64_t> local_id(n);
  for (int p = 0; p < parts; ++p) {
    auto& lp = out[p];
    lp.rank = p;
    lp.parts = parts;
    lp.num_central = std::int64_t(central[p].size());
    lp.num_marginal = std::int64_t(marginal[p].size());
    lp.inner_global = central[p];
    lp.inner_global.insert(lp.inner_global.end(), marginal[p].begin(), marginal[p].end());
    for (std::int64_t i = 0; i < lp.num_inner(); ++i) local_id[lp.inner_global[i]] = i;
  }
  // Halo sets: remote in-neighbours of each part's marginal nodes, grouped by owner, sorted.
  for (int p = 0; p < parts; ++p) {
    auto& lp = out[p];
    std::vector<std::int64_t> halo;
    for (auto v : marginal[p])
      for (NodeId u : adj.row(v))
        if (owner[u] != p) halo.push_back(u);
    std::sort(halo.begin(), halo.end(), [&](std::int64_t a, std::int64_t b) {
      return owner[a] != owner[b] ? owner[a] < owner[b] : a < b;
    });
    halo.erase(std::unique(halo.begin(), halo.end()), halo.end());
    lp.halo_global = std::move(halo);
    lp.halo_begin.assign(parts + 1, 0);
    for (auto u : lp.halo_global) ++lp.halo_begin[owner[u] + 1];
    std::partial_sum(lp.halo_begin.begin(), lp.halo_begin.end(), lp.halo_begin.begin());
    // The owner q of each halo group sends exactly those rows, in this order.
    for (int q = 0; q < parts; ++q) {
      auto& send = out[q].send_rows;
      if (send.empty()) send.resize(parts);
      for (std::int64_t h = lp.halo_begin[q]; h < lp.halo_begin[q + 1]; ++h)
        send[p].push_back(NodeId(local_id[lp.halo_global[h]]));
    }
    // Local adjacency: columns are inner local ids, or num_inner + halo index.
    const std::int64_t ni = lp.num_inner();
    lp.adj.num_rows = ni;
    lp.adj.num_cols = lp.num_local();
    lp.adj.offsets.assign(ni + 1, 0);
    for (std::int64_t i = 0; i < ni; ++i) {
      const auto v = lp.inner_global[i];
      for (NodeId u : adj.row(v)) {
        if (owner[u] == p) {
          lp.adj.indices.push_back(NodeId(local_id[u]));
        } else {
          const auto it = std::lower_bound(lp.halo_global.begin() + lp.halo_begin[owner[u]],
                                           lp.halo_global.begin() + lp.halo_begin[owner[u] + 1], std::int64_t(u));
          lp.adj.indices.push_back(NodeId(ni + (it - lp.halo_global.begin())));
        }
      }
      // Row order = increasing global id, as in the global graph, so a part sums a row's
      // neighbours in the same order as a single process does.
      std::sort(lp.adj.indices.begin() + lp.adj.offsets[i], lp.adj.indices.end(),
                [&](NodeId a, NodeId b) { return lp.global_of_col(a) < lp.global_of_col(b); });
      lp.adj.offsets[i + 1] = std::int64_t(lp.adj.indices.size());
    }
  }
  return out;
}

PartitionStats partition_stats(const Csr& adj, const std::vector<LocalPartition>& parts) {
  PartitionStats s;
  s.parts = int(parts.size());
  s.num_nodes = adj.num_rows;
  s.num_directed_edges = adj.nnz();
  s.halo_rows.assign(s.parts, std::vector<std::int64_t>(s.parts, 0));
  std::int64_t cut_directed = 0, max_inner = 0, max_edges = 0, sum_edges = 0, sum_marginal = 0;
  for (const auto& lp : parts) {
    for (int q = 0; q < s.parts; ++q) s.halo_rows[lp.rank][q] = lp.halo_begin[q + 1] - lp.halo_begin[q];
    for (std::int64_t k = 0; k < lp.adj.nnz(); ++k) cut_directed += lp.adj.indices[k] >= lp.num_inner();
    s.inner.push_back(lp.num_inner());
    s.halo.push_back(lp.num_halo());
    s.marginal.push_back(lp.num_marginal);
    s.local_edges.push_back(lp.adj.nnz());
    s.comm_volume_rows += lp.num_halo();
    max_inner = std::max(max_inner, lp.num_inner());
    max_edges = std::max(max_edges, lp.adj.nnz());
    sum_edges += lp.adj.nnz();
    sum_marginal += lp.num_marginal;
  }
  s.edge_cut = cut_directed / 2;
  s.marginal_fraction = s.num_nodes ? double(sum_marginal) / double(s.num_nodes) : 0;
  s.node_imbalance = s.num_nodes ? double(max_inner) * s.parts / double(s.num_nodes) : 0;
  s.edge_imbalance = sum_edges ? double(max_edges) * s.parts / double(sum_edges) : 0;
  return s;
}

}  // namespace adaqp::graph
