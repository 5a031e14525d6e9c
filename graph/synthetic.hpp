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
#include <string>

#include "graph/dataset.hpp"

namespace adaqp::graph {

Dataset make_synthetic(const std::string& spec, const LoadOptions& options);

}  // namespace adaqp::graph
