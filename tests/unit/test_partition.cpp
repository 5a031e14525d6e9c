// Partitioning: a hand-made partition checked entry by entry, invariants on real graphs, and
// METIS against the random baseline.
#include <catch2/catch.hpp>
#include <set>

#include "graph/dataset.hpp"
#include "graph/partition.hpp"

using namespace adaqp::graph;

TEST_CASE("hand-made partition: inner order, halo, send lists, local adjacency", "[partition]") {
  // 0-1, 1-2, 2-3, 3-4, 4-5, 1-4. Parts: {0,1,2} -> 0, {3,4,5} -> 1.
  const std::vector<std::int64_t> src = {0, 1, 2, 3, 4, 1}, dst = {1, 2, 3, 4, 5, 4};
  const Csr g = symmetrize(6, src, dst);
  const std::vector<std::int32_t> owner = {0, 0, 0, 1, 1, 1};
  const auto parts = build_partitions(g, owner, 2);
  const auto& p0 = parts[0];
  const auto& p1 = parts[1];
  // Part 0: node 0 central; 1 (neighbour 4) and 2 (neighbour 3) marginal.
  CHECK(p0.num_central == 1);
  CHECK(p0.num_marginal == 2);
  CHECK(p0.inner_global == std::vector<std::int64_t>{0, 1, 2});
  CHECK(p0.halo_global == std::vector<std::int64_t>{3, 4});
  CHECK(p0.halo_begin == std::vector<std::int64_t>{0, 0, 2});
  // Part 1: node 5 central; 3, 4 marginal; halo {1, 2} from part 0.
  CHECK(p1.inner_global == std::vector<std::int64_t>{5, 3, 4});
  CHECK(p1.halo_global == std::vector<std::int64_t>{1, 2});
  // Part 0 sends its local rows of global 1, 2 (local 1, 2) to part 1; part 1 sends 3, 4 (local 1, 2).
  CHECK(p0.send_rows[1] == std::vector<NodeId>{1, 2});
  CHECK(p1.send_rows[0] == std::vector<NodeId>{1, 2});
  CHECK(p0.send_rows[0].empty());
  // Local adjacency of part 0, row of global 1: neighbours 0 (local 0), 2 (local 2), 4 (halo 1 -> col 4).
  const auto r = p0.adj.row(1);
  CHECK(std::vector<NodeId>(r.begin(), r.end()) == std::vector<NodeId>{0, 2, 4});
  // Part 1, row of global 4 (local 2): neighbours 1 (halo 0 -> col 3), 3 (local 1), 5 (local 0), in
  // global order.
  const auto r4 = p1.adj.row(2);
  CHECK(std::vector<NodeId>(r4.begin(), r4.end()) == std::vector<NodeId>{3, 1, 0});
  const auto s = partition_stats(parts);
  CHECK(s.edge_cut == 2);
  CHECK(s.comm_volume_rows == 4);
  CHECK(s.halo_rows[0][1] == 2);
  CHECK(s.halo_rows[1][0] == 2);
  CHECK(s.marginal_fraction == Approx(4.0 / 6.0));
  CHECK(s.node_imbalance == Approx(1.0));
}

TEST_CASE("partitions are consistent: every send row is the peer's expected halo row", "[partition]") {
  LoadOptions opt;
  opt.features = false;
  const Dataset d = load_dataset("cora", opt);
  for (auto method : {PartitionMethod::metis_cut, PartitionMethod::metis_volume, PartitionMethod::metis_edges,
                      PartitionMethod::random}) {
    for (int p : {1, 3, 4}) {
      const auto owner = partition_graph(d.adj, p, method, 1);
      REQUIRE(owner == partition_graph(d.adj, p, method, 1));  // deterministic
      const auto parts = build_partitions(d.adj, owner, p);
      std::int64_t inner_total = 0, edges_total = 0;
      for (const auto& lp : parts) {
        inner_total += lp.num_inner();
        edges_total += lp.adj.nnz();
        for (std::int64_t i = 0; i < lp.num_inner(); ++i) REQUIRE(owner[lp.inner_global[i]] == lp.rank);
        // Central rows reference no halo column; marginal rows reference at least one.
        for (std::int64_t i = 0; i < lp.num_inner(); ++i) {
          bool remote = false;
          for (NodeId c : lp.adj.row(i)) remote |= c >= lp.num_inner();
          REQUIRE(remote == (i >= lp.num_central));
        }
        for (int q = 0; q < p; ++q) {
          const auto& send = lp.send_rows[q];
          const auto& peer = parts[q];
          REQUIRE(std::int64_t(send.size()) == peer.halo_begin[lp.rank + 1] - peer.halo_begin[lp.rank]);
          for (std::size_t k = 0; k < send.size(); ++k)
            REQUIRE(lp.inner_global[send[k]] == peer.halo_global[peer.halo_begin[lp.rank] + std::int64_t(k)]);
        }
      }
      CHECK(inner_total == d.num_nodes);
      CHECK(edges_total == d.num_directed_edges());
    }
  }
}

TEST_CASE("METIS on Coauthor Physics, P=4: cut and volume below a third of random's", "[partition]") {
  LoadOptions opt;
  opt.features = false;
  const Dataset d = load_dataset("coauthor-physics", opt);
  auto stats = [&](PartitionMethod m) {
    return partition_stats(build_partitions(d.adj, partition_graph(d.adj, 4, m, 0), 4));
  };
  const auto metis = stats(PartitionMethod::metis_cut);
  const auto vol = stats(PartitionMethod::metis_volume);
  const auto rnd = stats(PartitionMethod::random);
  INFO("metis cut " << metis.edge_cut << " vol " << metis.comm_volume_rows << "; metis-vol cut " << vol.edge_cut
                    << " vol " << vol.comm_volume_rows << "; random cut " << rnd.edge_cut << " vol "
                    << rnd.comm_volume_rows);
  CHECK(3 * metis.edge_cut < rnd.edge_cut);
  CHECK(3 * metis.comm_volume_rows < rnd.comm_volume_rows);
  CHECK(3 * vol.comm_volume_rows < rnd.comm_volume_rows);
  CHECK(rnd.node_imbalance == Approx(1.0).epsilon(0.001));
  CHECK(metis.node_imbalance < 1.05);
}

TEST_CASE("metis-edges balances edges as well as nodes where node balance alone does not", "[partition]") {
  // Amazon Computers, P = 2: balancing nodes alone leaves one part with 1.25x the mean edges.
  LoadOptions opt;
  opt.features = false;
  const Dataset d = load_dataset("amazon-computers", opt);
  auto stats = [&](PartitionMethod m) {
    return partition_stats(build_partitions(d.adj, partition_graph(d.adj, 2, m, 0), 2));
  };
  const auto nodes = stats(PartitionMethod::metis_cut);
  const auto both = stats(PartitionMethod::metis_edges);
  INFO("metis: nodes " << nodes.node_imbalance << " edges " << nodes.edge_imbalance << " cut " << nodes.edge_cut
                       << "; metis-edges: nodes " << both.node_imbalance << " edges " << both.edge_imbalance << " cut "
                       << both.edge_cut);
  CHECK(nodes.edge_imbalance > 1.15);
  CHECK(both.edge_imbalance <= 1.05);
  CHECK(both.node_imbalance <= 1.05);
  CHECK(parse_partition_method("metis-edges") == PartitionMethod::metis_edges);
  CHECK(to_string(PartitionMethod::metis_edges) == "metis-edges");
}
