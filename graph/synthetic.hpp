// Synthetic graphs, deterministic from their spec (same spec -> same graph, features, splits).
//
// "sbm:nodes=N,classes=C,degree=D,seed=S[,intra=0.8,features=64,noise=1.0,train=20,val=30,tail=0]"
//   Stochastic block model: node v is in class hash(seed, v) mod C. Each node draws D/2 edge
//   endpoints: with probability `intra` a uniform node of its own class, else a uniform node of
//   another class; the graph is then symmetrised (mean degree ~ D). tail = a > 1: degree-corrected
//   (heavy-tailed degrees, as real graphs have): node v has a weight w_v = u^(-1/a), u uniform in
//   (0, 1] (Pareto, P(w > x) = x^-a), draws round(D/2 * w_v / mean w) endpoints (at least 1), and
//   endpoints in a class are picked with probability proportional to their weight; degrees then
//   follow the same tail. Features: class mean
//   mu_c ~ N(0, I_F) plus noise * N(0, I_F). Learnable; accuracy falls as intra -> 1/C or noise
//   grows. Split: `train` / `val` nodes per class, rest test.
// "rmat:scale=K,degree=D,seed=S[,a=0.57,b=0.19,c=0.19,features=32,classes=8]"
//   R-MAT (Boost.Graph's rmat_iterator) on 2^K nodes with 2^K * D / 2 generated edges, then
//   symmetrised; features N(0, 1), labels uniform (for scale and timing, not accuracy).
// Unknown keys and impossible values throw adaqp::Error naming the key and the allowed values.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "graph/dataset.hpp"

namespace adaqp::graph {

Dataset make_synthetic(const std::string& spec, const LoadOptions& options);

// The SBM of an "sbm:" spec, by node range: make_synthetic builds all nodes at once, a distributed
// loader one block per process (graph/distributed_partition.hpp). Labels, node weights and how
// many endpoints every node draws are computed for all nodes on construction (O(nodes) memory);
// edges and features only for the range asked.
class SbmGenerator {
 public:
  explicit SbmGenerator(const std::string& spec);  // throws adaqp::Error naming the key
  std::int64_t nodes() const { return nodes_; }
  int classes() const { return classes_; }
  std::int64_t num_features() const { return features_; }
  std::uint64_t seed() const { return seed_; }
  int train_per_class() const { return train_; }
  int val_per_class() const { return val_; }
  const std::vector<std::int32_t>& labels() const { return labels_; }
  // The endpoint draws (v, u) of nodes v in [lo, hi), appended in increasing v (the graph is their
  // symmetrisation without self-loops and duplicates).
  void draws(std::int64_t lo, std::int64_t hi, std::vector<std::int64_t>& src, std::vector<std::int64_t>& dst) const;
  // Features of nodes [lo, hi): (hi - lo) x num_features(), row-major.
  std::vector<float> features(std::int64_t lo, std::int64_t hi) const;

 private:
  std::string spec_;
  std::int64_t nodes_ = 0, features_ = 0;
  int classes_ = 0, train_ = 0, val_ = 0;
  std::uint64_t seed_ = 0;
  double intra_ = 0, noise_ = 0;
  bool weighted_ = false;
  std::vector<std::int32_t> labels_;
  std::vector<std::vector<std::int64_t>> members_;  // [class]: its nodes, increasing
  std::vector<std::int64_t> first_;                 // nodes + 1: node v draws [first_[v], first_[v + 1])
  std::vector<std::vector<double>> cumulative_;     // [class]: cumulative weight of its members (tail only)
};

}  // namespace adaqp::graph
